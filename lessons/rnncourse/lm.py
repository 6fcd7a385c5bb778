"""Lesson 06's language-model machinery, given from lesson 07 on: the stream layout of
truncated BPTT, a recurrent language model, its training step and its evaluation; and the
tied adaptive softmax that lesson 07's word-level model uses on a CPU.

Lesson 06 asks you to write these; lesson 07 reuses them from here instead of a copy.
Lesson 06's grader runs your answers with this module unavailable, so importing it there is
not an answer.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.stream_training import fit_stream_lm


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(B, L) rows of a stream ids (N,), L = N // B: row b is ids[b * L : (b + 1) * L]."""
    L = len(ids) // batch_size
    return ids[: batch_size * L].view(batch_size, L)


def stream_windows(rows: torch.Tensor, num_steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Windows (X, Y) of rows (B, L) in reading order: X = rows[:, i : i + t], Y shifted by
    one, t = num_steps except perhaps the last; the Y cover columns 1 .. L - 1 once each."""
    L = rows.shape[1]
    windows = []
    for i in range(0, L - 1, num_steps):
        t = min(num_steps, L - 1 - i)
        windows.append((rows[:, i : i + t], rows[:, i + 1 : i + 1 + t]))  # (B, t) each
    return windows


def detach_state(state):
    """The same state (None, a tensor, or a tuple/list of them) with its graph cut."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


class TiedAdaptiveSoftmax(nn.Module):
    """An exact softmax over a large vocabulary that costs far less than the full one (the
    adaptive softmax of Grave et al., 2017), with tied weights: word w's output vector is
    row w of the embedding, passed in as ``weight``.

    The vocabulary is sorted by count (``build_vocab``), so ids [0, c_1) are the frequent
    words. A **head** softmax scores them and one entry per **cluster** of rarer words,
    cluster k = ids [c_k, c_{k+1}); a second softmax inside cluster k scores its words:
    p(w) = p_head(w) in the head, p_head(k) * p_k(w) in cluster k. Training needs the head
    for every target but a cluster's softmax only for the targets in it, and most targets
    are frequent words.

    Args:
        num_hiddens: h (= the embedding size: the weights are tied).  vocab_size: V.
        cutoffs: increasing ids 0 < c_1 < ... < V.
    Parameters: ``bias`` (V,) per word, ``cluster`` a Linear(h, number of clusters).
    """

    def __init__(self, num_hiddens: int, vocab_size: int, cutoffs):
        super().__init__()
        cutoffs = list(cutoffs)
        increasing = cutoffs == sorted(set(cutoffs))
        if not (cutoffs and increasing and 0 < cutoffs[0] and cutoffs[-1] < vocab_size):
            raise ValueError(
                f"cutoffs must increase strictly within (0, {vocab_size}); got {cutoffs}"
            )
        self.bounds = [0, *cutoffs, vocab_size]  # cluster k = ids [bounds[k], bounds[k + 1])
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.cluster = nn.Linear(num_hiddens, len(cutoffs))

    def _head(self, H, weight):
        """(N, c_1 + K) log-probabilities of the head's words and of the K clusters."""
        words = F.linear(H, weight[: self.bounds[1]], self.bias[: self.bounds[1]])
        return F.log_softmax(torch.cat([words, self.cluster(H)], dim=-1), dim=-1)

    def _within(self, H, weight, k):
        """(N, size of cluster k) log-probabilities of its words given the cluster."""
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return F.log_softmax(F.linear(H, weight[lo:hi], self.bias[lo:hi]), dim=-1)

    def log_prob(self, H, weight):
        """H (..., h), weight (V, h) -> (..., V) log-probabilities of every word (the full cost:
        for evaluation and generation)."""
        head, c1 = self._head(H, weight), self.bounds[1]
        parts = [head[..., :c1]]
        for k in range(1, len(self.bounds) - 1):
            parts.append(head[..., c1 + k - 1 : c1 + k] + self._within(H, weight, k))
        return torch.cat(parts, dim=-1)

    def nll(self, H, Y, weight):
        """H (N, h), Y (N,) int64, weight (V, h) -> the mean of -log p(Y) (a scalar)."""
        c1 = self.bounds[1]
        k = torch.bucketize(Y, torch.tensor(self.bounds[1:-1], device=Y.device), right=True)
        head_entry = torch.where(k == 0, Y, c1 + k - 1)  # the word itself, or its cluster
        total = -self._head(H, weight).gather(1, head_entry[:, None]).sum()
        for cluster in range(1, len(self.bounds) - 1):
            rows = (k == cluster).nonzero().squeeze(1)  # only the targets in this cluster
            if len(rows):
                within = self._within(H[rows], weight, cluster)
                total = total - within.gather(1, (Y[rows] - self.bounds[cluster])[:, None]).sum()
        return total / len(Y)


class RecurrentLM(nn.Module):
    """Embedding -> RNN/GRU/LSTM (batch first) -> dropout -> Linear over the vocabulary.

    Args:
        vocab_size: V.  embed_size: e.  num_hiddens: h.  num_layers: stacked layers.
        cell: "rnn" (tanh), "gru" or "lstm".  dropout: on embeddings, outputs, between layers.
        tie_weights: fc.weight is embedding.weight (a ValueError unless e == h).
        cutoffs: None for the full softmax; increasing ids for a ``TiedAdaptiveSoftmax`` as
            ``fc`` (needs tie_weights: its word vectors are the embedding's rows).
    forward(X (B, T) int64, state=None) -> (logits (B, T, V), new state); with cutoffs the
    "logits" are log-probabilities, which cross-entropy treats the same way.
    nll(X, Y, state=None) -> (mean NLL of Y (B, T), new state): what training minimises,
    without building the (B, T, V) logits when the softmax is adaptive.
    Parameter names: ``embedding.*``, ``rnn.*``, ``fc.*``, as lesson 06's ``CharLM``.
    """

    def __init__(
        self,
        vocab_size,
        embed_size,
        num_hiddens,
        num_layers=1,
        cell="lstm",
        dropout=0.0,
        tie_weights=False,
        cutoffs=None,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](
            embed_size,
            num_hiddens,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        if tie_weights and embed_size != num_hiddens:
            raise ValueError(
                f"tie_weights needs embed_size == num_hiddens; got {embed_size} and {num_hiddens}"
            )
        self.adaptive = cutoffs is not None
        if self.adaptive:
            if not tie_weights:
                raise ValueError(
                    "an adaptive softmax (cutoffs) here is tied: pass tie_weights=True"
                )
            self.fc = TiedAdaptiveSoftmax(num_hiddens, vocab_size, cutoffs)
        else:
            self.fc = nn.Linear(num_hiddens, vocab_size)
            if tie_weights:
                self.fc.weight = self.embedding.weight

    def features(self, X, state=None):
        """(H (B, T, h) after dropout: what the output layer reads, new state)."""
        H, state = self.rnn(self.dropout(self.embedding(X)), state)
        return self.dropout(H), state

    def forward(self, X, state=None):
        H, state = self.features(X, state)
        if self.adaptive:
            return self.fc.log_prob(H, self.embedding.weight), state  # (B, T, V)
        return self.fc(H), state  # (B, T, V)

    def nll(self, X, Y, state=None):
        """(the mean negative log-likelihood of the targets Y (B, T), new state)."""
        H, state = self.features(X, state)
        H, Y = H.reshape(-1, H.shape[-1]), Y.reshape(-1)
        if self.adaptive:
            return self.fc.nll(H, Y, self.embedding.weight), state
        return F.cross_entropy(self.fc(H), Y), state


@torch.no_grad()
def evaluate_lm(model: nn.Module, windows) -> tuple[float, float]:
    """(nats per token, perplexity) over every target of windows in reading order, the state
    carried from window to window; eval mode, no graph. model: a ``RecurrentLM`` (its nll)."""
    device = next(model.parameters()).device
    model.eval()
    total_nll, count, state = 0.0, 0, None
    for X, Y in windows:
        nll, state = model.nll(X.to(device), Y.to(device), state)
        total_nll += nll.item() * Y.numel()
        count += Y.numel()
    nll = total_nll / count
    return nll, math.exp(nll)


def train_window(model, X, Y, state, optimizer, max_norm=1.0):
    """One truncated-BPTT update of a ``RecurrentLM``; returns (the window's mean loss, the new
    state detached)."""
    optimizer.zero_grad()
    loss, state = model.nll(X, Y, state)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), detach_state(state)


def fit_lm(model, train_rows, valid_windows, **budget):
    """Lesson 06's loop, ``fit_stream_lm``, with this module's windows, update and
    evaluation. budget: lr, num_steps, max_norm, seconds, max_updates (and evaluations).
    Returns the curve [(seconds, updates, validation nats/token)]."""
    return fit_stream_lm(
        model, train_rows, valid_windows, stream_windows=stream_windows,
        train_window=train_window, evaluate_lm=evaluate_lm, **budget,
    )  # fmt: skip
