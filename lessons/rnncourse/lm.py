"""Lesson 06's language-model machinery, given from lesson 07 on: the stream layout of
truncated BPTT, a recurrent language model, its training step and its evaluation.

Lesson 06 asks you to write these; lesson 07 reuses them from here instead of a copy.
Lesson 06's grader runs your answers with this module unavailable, so importing it there is
not an answer.
"""

import math
import time

import torch
import torch.nn.functional as F
from torch import nn


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


class RecurrentLM(nn.Module):
    """Embedding -> RNN/GRU/LSTM (batch first) -> dropout -> Linear over the vocabulary.

    Args:
        vocab_size: V.  embed_size: e.  num_hiddens: h.  num_layers: stacked layers.
        cell: "rnn" (tanh), "gru" or "lstm".  dropout: on embeddings, outputs, between layers.
        tie_weights: fc.weight is embedding.weight (a ValueError unless e == h).
    forward(X (B, T) int64, state=None) -> (logits (B, T, V), new state).
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
        self.fc = nn.Linear(num_hiddens, vocab_size)
        if tie_weights:
            if embed_size != num_hiddens:
                raise ValueError(
                    "tie_weights needs embed_size == num_hiddens; "
                    f"got {embed_size} and {num_hiddens}"
                )
            self.fc.weight = self.embedding.weight

    def forward(self, X, state=None):
        E = self.dropout(self.embedding(X))  # (B, T, e)
        H, state = self.rnn(E, state)  # (B, T, h)
        return self.fc(self.dropout(H)), state  # (B, T, V)


@torch.no_grad()
def evaluate_lm(model: nn.Module, windows) -> tuple[float, float]:
    """(nats per token, perplexity) over every target of windows in reading order, the state
    carried from window to window; eval mode, no graph."""
    device = next(model.parameters()).device
    model.eval()
    total_nll, count, state = 0.0, 0, None
    for X, Y in windows:
        logits, state = model(X.to(device), state)  # (B, t, V)
        total_nll += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), Y.to(device).reshape(-1), reduction="sum"
        ).item()
        count += Y.numel()
    nll = total_nll / count
    return nll, math.exp(nll)


def train_window(model, X, Y, state, optimizer, max_norm=1.0):
    """One truncated-BPTT update; returns (the window's mean loss, the new state detached)."""
    optimizer.zero_grad()
    logits, state = model(X, state)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), detach_state(state)


def fit_lm(model, train_rows, valid_windows, *, lr, num_steps, max_norm, seconds, max_updates,
           evaluations=10):  # fmt: skip
    """Adam on stream windows for ``seconds`` of training (evaluation excluded) or
    ``max_updates`` updates, restarting at the top of the rows with no state when they run
    out. Returns the curve [(seconds, updates, validation nats/token)] measured at
    ``evaluations`` points along the way (and at the start)."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    windows, state, updates, trained = iter(()), None, 0, 0.0
    curve = [(0.0, 0, evaluate_lm(model, valid_windows)[0])]
    while not ((seconds and trained >= seconds) or (max_updates and updates >= max_updates)):
        start = time.perf_counter()
        model.train()
        X_Y = next(windows, None)
        if X_Y is None:  # the end of the rows: start again at the top, with no state
            windows, state = iter(stream_windows(train_rows, num_steps)), None
            X_Y = next(windows)
        X, Y = (t.to(device) for t in X_Y)
        _, state = train_window(model, X, Y, state, optimizer, max_norm)
        updates += 1
        trained += time.perf_counter() - start
        if seconds:
            due = trained >= seconds * len(curve) / evaluations
        else:
            due = updates % max(max_updates // evaluations, 1) == 0
        if due:
            curve.append((trained, updates, evaluate_lm(model, valid_windows)[0]))
    return curve
