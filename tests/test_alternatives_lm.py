"""Lesson 06: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution, each checked
by the notebook's test and by the grader's integrity probe. A false failure here means a
check that rejects a right answer for how it is written.
"""

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    check_batchify,
    check_char_lm,
    check_detach_state,
    check_evaluate_lm,
    check_ngram_log_probs,
    check_sample_seeded_and_primed,
    check_sample_temperature_and_top_k,
    check_stream_windows,
    check_train_window,
)
from tests.course import by_name
from tests.integrity_support import passes_probe

LESSON = "06_language_model"


# ----------------------------------------------------------------------------- ngram_log_probs
def ngram_counter(train_ids, eval_ids, order, k, vocab_size):
    """Counters of tuples; N(h) summed from the n-gram counts."""
    train, stream = train_ids.tolist(), eval_ids.tolist()
    grams = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
    contexts = Counter()
    for gram, n in grams.items():
        contexts[gram[:-1]] += n
    log_probs = []
    for t in range(order - 1, len(stream)):
        gram = tuple(stream[t - order + 1 : t + 1])
        log_probs.append(math.log(grams[gram] + k) - math.log(contexts[gram[:-1]] + k * vocab_size))
    return torch.tensor(log_probs, dtype=torch.float64)


def ngram_dict_codes(train_ids, eval_ids, order, k, vocab_size):
    """Plain dicts keyed by the n-gram as a number in base V, one position at a time."""

    def code(ids, t):  # the n-gram ending at position t
        c = 0
        for i in ids[t - order + 1 : t + 1]:
            c = c * vocab_size + i
        return c

    train, stream = [int(i) for i in train_ids], [int(i) for i in eval_ids]
    full, context = {}, {}
    for t in range(order - 1, len(train)):
        c = code(train, t)
        full[c] = full.get(c, 0) + 1
        context[c // vocab_size] = context.get(c // vocab_size, 0) + 1
    out = torch.empty(max(len(stream) - order + 1, 0), dtype=torch.float64)
    for j, t in enumerate(range(order - 1, len(stream))):
        c = code(stream, t)
        out[j] = math.log((full.get(c, 0) + k) / (context.get(c // vocab_size, 0) + k * vocab_size))
    return out


def ngram_numpy_unique(train_ids, eval_ids, order, k, vocab_size):
    """Sliding windows times powers of V, np.unique for the counts, dicts to look them up."""
    powers = vocab_size ** np.arange(order - 1, -1, -1, dtype=np.int64)  # (order,)

    def codes(ids):
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < order:
            return np.zeros(0, dtype=np.int64)
        return np.lib.stride_tricks.sliding_window_view(ids, order) @ powers

    train, targets = codes(train_ids), codes(eval_ids)
    grams, gram_counts = np.unique(train, return_counts=True)
    contexts, context_counts = np.unique(train // vocab_size, return_counts=True)
    n_hc = dict(zip(grams.tolist(), gram_counts.tolist(), strict=True))
    n_h = dict(zip(contexts.tolist(), context_counts.tolist(), strict=True))
    num = np.array([n_hc.get(c, 0) for c in targets.tolist()], dtype=np.float64) + k
    den = np.array([n_h.get(c // vocab_size, 0) for c in targets.tolist()], dtype=np.float64)
    return torch.from_numpy(np.log(num) - np.log(den + k * vocab_size))


def ngram_torch_unique(train_ids, eval_ids, order, k, vocab_size):
    """torch.unique for the counts, searchsorted to look them up."""

    def codes(ids):
        ids = torch.as_tensor(ids, dtype=torch.long)
        n = ids.numel() - order + 1
        out = torch.zeros(max(n, 0), dtype=torch.long)
        for j in range(order if n > 0 else 0):
            out = out * vocab_size + ids[j : j + n]
        return out

    def lookup(table, values, keys):
        if len(table) == 0:
            return torch.zeros(len(keys), dtype=torch.float64)
        at = torch.searchsorted(table, keys).clamp(max=len(table) - 1)
        return torch.where(table[at] == keys, values[at], 0).double()

    grams, counts = torch.unique(codes(train_ids), return_counts=True)
    contexts, inverse = torch.unique(grams // vocab_size, return_inverse=True)
    context_counts = torch.zeros(len(contexts), dtype=torch.long).index_add_(0, inverse, counts)
    targets = codes(eval_ids)
    n_hc, n_h = (
        lookup(grams, counts, targets),
        lookup(contexts, context_counts, targets // vocab_size),
    )
    return torch.log((n_hc + k) / (n_h + k * vocab_size))


NGRAMS = [ngram_counter, ngram_dict_codes, ngram_numpy_unique, ngram_torch_unique]


# ----------------------------------------------------------------------------- batchify
def batchify_reshape(ids, batch_size):
    L = ids.numel() // batch_size
    return ids[: L * batch_size].reshape(batch_size, L)


def batchify_stacked_slices(ids, batch_size):
    L = len(ids) // batch_size
    return torch.stack([ids[b * L : (b + 1) * L] for b in range(batch_size)])


def batchify_narrow(ids, batch_size):
    return ids.narrow(0, 0, batch_size * (ids.size(0) // batch_size)).view(batch_size, -1)


def batchify_split(ids, batch_size):
    L = len(ids) // batch_size
    return torch.stack(ids[: batch_size * L].split(L))


BATCHIFIES = [batchify_reshape, batchify_stacked_slices, batchify_narrow, batchify_split]


# ----------------------------------------------------------------------------- stream_windows
def windows_generator(rows, num_steps):
    """A generator; X cut to the length of Y at the end."""
    L = rows.size(1)
    for i in range(0, L - 1, num_steps):
        X, Y = rows[:, i : i + num_steps], rows[:, i + 1 : i + 1 + num_steps]
        yield X[:, : Y.shape[1]], Y


def windows_split(rows, num_steps):
    """Inputs and targets split separately, zipped."""
    X, Y = rows[:, :-1].split(num_steps, dim=1), rows[:, 1:].split(num_steps, dim=1)
    return list(zip(X, Y, strict=True))


def windows_while(rows, num_steps):
    """Index arithmetic in a while loop."""
    windows, start, L = [], 0, rows.shape[1]
    while start + 1 < L:
        stop = min(start + num_steps, L - 1)
        windows.append((rows[:, start:stop], rows[:, start + 1 : stop + 1]))
        start = stop
    return windows


def windows_counted(rows, num_steps):
    """The number of windows first, with math.ceil."""
    L = rows.shape[1]
    count = math.ceil((L - 1) / num_steps)
    return [
        (rows[:, w * num_steps : min((w + 1) * num_steps, L - 1)],
         rows[:, w * num_steps + 1 : min((w + 1) * num_steps, L - 1) + 1])
        for w in range(count)
    ]  # fmt: skip


WINDOWS = [windows_generator, windows_split, windows_while, windows_counted]


# ----------------------------------------------------------------------------- detach_state
def detach_isinstance(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    if isinstance(state, list):
        return [s.detach() for s in state]
    return state.detach()


def detach_comprehension(state):
    if isinstance(state, tuple | list):
        return type(state)([s.detach() for s in state])
    return None if state is None else state.detach()


def detach_recursive(state):
    if torch.is_tensor(state):
        return state.detach()
    if isinstance(state, tuple | list):
        return type(state)(map(detach_recursive, state))
    return state


def detach_clone_in_place(state):
    """clone() (still on the graph), then detach_() cuts the copy in place."""
    if state is None:
        return state
    parts = [state] if isinstance(state, torch.Tensor) else list(state)
    out = [p.clone().detach_() for p in parts]
    if isinstance(state, torch.Tensor):
        return out[0]
    return tuple(out) if isinstance(state, tuple) else out


DETACHES = [detach_isinstance, detach_comprehension, detach_recursive, detach_clone_in_place]
detach_state = detach_recursive  # what the train_window alternatives below call


# ----------------------------------------------------------------------------- CharLM
class CharLMIfElse(nn.Module):
    """The cell chosen by if/elif; dropout on the embeddings and the outputs."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm",
                 dropout=0.0, tie_weights=False):  # fmt: skip
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        if cell == "rnn":
            rnn_class = nn.RNN
        elif cell == "gru":
            rnn_class = nn.GRU
        else:
            rnn_class = nn.LSTM
        between = dropout if num_layers > 1 else 0.0
        self.rnn = rnn_class(embed_size, num_hiddens, num_layers, batch_first=True, dropout=between)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_hiddens, vocab_size)
        if tie_weights:
            if embed_size != num_hiddens:
                raise ValueError("weight tying needs embed_size == num_hiddens")
            self.fc.weight = self.embedding.weight

    def forward(self, X, state=None):
        H, state = self.rnn(self.dropout(self.embedding(X)), state)
        return self.fc(self.dropout(H)), state


class CharLMGetattr(nn.Module):
    """getattr(nn, cell.upper()); F.dropout with the training flag, on the outputs only."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm",
                 dropout=0.0, tie_weights=False):  # fmt: skip
        super().__init__()
        if tie_weights and embed_size != num_hiddens:
            raise ValueError(f"cannot tie {embed_size} and {num_hiddens}")
        self.p = dropout
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = getattr(nn, cell.upper())(
            input_size=embed_size, hidden_size=num_hiddens, num_layers=num_layers,
            batch_first=True,
        )  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_hiddens, vocab_size)
        if tie_weights:
            self.fc.weight = self.embedding.weight

    def forward(self, X, state=None):
        outputs, new_state = self.rnn(self.embedding(X), state)
        return self.fc(F.dropout(outputs, self.p, training=self.training)), new_state


class CharLMTiedFromFc(nn.Module):
    """Tied the other way round (the embedding takes fc's matrix); F.linear in forward; the
    state passed as hx only when there is one."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm",
                 dropout=0.0, tie_weights=False):  # fmt: skip
        super().__init__()
        cells = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = cells[cell](embed_size, num_hiddens, num_layers=num_layers, batch_first=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(num_hiddens, vocab_size)
        if tie_weights:
            if self.embedding.weight.shape != self.fc.weight.shape:
                raise ValueError("tie_weights: embed_size must equal num_hiddens")
            self.embedding.weight = self.fc.weight

    def forward(self, X, state=None):
        E = self.dropout(self.embedding(X))
        H, new_state = self.rnn(E) if state is None else self.rnn(E, state)
        return F.linear(self.dropout(H), self.fc.weight, self.fc.bias), new_state


CHAR_LMS = [CharLMIfElse, CharLMGetattr, CharLMTiedFromFc]


# ----------------------------------------------------------------------------- evaluate_lm
def evaluate_inference_mode(model, windows):
    model.eval()
    nll, n, state = 0.0, 0, None
    with torch.inference_mode():
        for X, Y in windows:
            logits, state = model(X, state)
            nll += F.cross_entropy(logits.flatten(0, 1), Y.flatten(), reduction="sum").item()
            n += Y.numel()
    nll /= n
    return nll / math.log(2), math.exp(nll)


def evaluate_nll_loss(model, windows):
    """log_softmax then nll_loss; perplexity as 2 ** bits."""
    model.train(False)
    total, count, state = torch.zeros((), dtype=torch.float64), 0, None
    with torch.no_grad():
        for X, Y in windows:
            logits, state = model(X, state)
            log_p = F.log_softmax(logits, dim=-1).reshape(-1, logits.size(-1))
            total += F.nll_loss(log_p, Y.reshape(-1), reduction="sum").double()
            count += Y.numel()
    bits = (total / count).item() / math.log(2)
    return bits, 2**bits


def evaluate_window_means_weighted(model, windows):
    """Each window's mean times its number of targets; numpy floats back (numbers all the
    same)."""
    model.eval()
    sums, sizes, state = [], [], None
    with torch.set_grad_enabled(False):
        for X, Y in windows:
            logits, state = model(X, state)
            mean = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
            sums.append(mean.item() * Y.numel())
            sizes.append(Y.numel())
    nll = np.sum(sums) / np.sum(sizes)
    return nll / np.log(2), np.exp(nll)


EVALUATES = [evaluate_inference_mode, evaluate_nll_loss, evaluate_window_means_weighted]


# ----------------------------------------------------------------------------- train_window
def train_set_to_none(model, X, Y, state, optimizer, max_norm=1.0):
    optimizer.zero_grad(set_to_none=True)
    logits, state = model(X, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), Y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), detach_state(state)


def train_clip_a_list(model, X, Y, state, optimizer, max_norm=1.0):
    """model.zero_grad(); the optimizer's own parameter list clipped."""
    model.zero_grad()
    logits, new_state = model(X, state)
    loss = F.cross_entropy(logits.transpose(1, 2), Y)  # (B, V, T) against (B, T)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    nn.utils.clip_grad_norm_(params, max_norm=max_norm)
    optimizer.step()
    return float(loss.detach()), detach_state(new_state)


def train_mean_of_losses(model, X, Y, state, optimizer, max_norm=1.0):
    """Per-target losses, then their mean; the clip written out."""
    optimizer.zero_grad()
    logits, state = model(X, state)
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="none")
    loss = losses.mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    factor = max_norm / (norm + 1e-6)
    if factor < 1:
        for g in grads:
            g.mul_(factor)
    optimizer.step()
    return loss.detach().item(), detach_state(state)


TRAIN_WINDOWS = [train_set_to_none, train_clip_a_list, train_mean_of_losses]


# ----------------------------------------------------------------------------- sample
def sample_topk_scatter(model, prompt_ids, num_chars, temperature=1.0, top_k=None,
                        generator=None):  # fmt: skip
    """torch.topk's values scattered into a row of -inf."""
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(prompt_ids.view(1, -1), None)
        for _ in range(num_chars):
            z = logits[0, -1].double() / temperature
            if top_k is not None:
                values, indices = torch.topk(z, top_k)
                z = torch.full_like(z, -math.inf).scatter(0, indices, values)
            next_id = torch.multinomial(torch.softmax(z, -1), 1, generator=generator)
            out.append(next_id.item())
            logits, state = model(next_id.view(1, 1), state)
    return out


def sample_sorted_mask(model, prompt_ids, num_chars, temperature=1.0, top_k=None,
                       generator=None):  # fmt: skip
    """Sorted logits, a mask on the ranks, the draw made among the sorted ids; the ids come
    back as a tensor."""
    model.eval()
    drawn = []
    with torch.no_grad():
        logits, state = model(prompt_ids[None, :], None)
        for _ in range(num_chars):
            z, order = torch.sort(logits[0, -1] / temperature, descending=True)
            if top_k is not None:
                z = z.masked_fill(torch.arange(len(z)) >= top_k, float("-inf"))
            rank = torch.multinomial(F.softmax(z, dim=0), 1, generator=generator)
            next_id = order[rank]  # (1,)
            drawn.append(int(next_id))
            logits, state = model(next_id[None], state)
    return torch.tensor(drawn, dtype=torch.long)


def sample_inverse_cdf(model, prompt_ids, num_chars, temperature=1.0, top_k=None,
                       generator=None):  # fmt: skip
    """Inverse-CDF sampling: a uniform number from the generator, searchsorted in the
    cumulative probabilities."""
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(prompt_ids.unsqueeze(0), None)
        for _ in range(num_chars):
            z = logits[0, -1].double() / temperature
            if top_k:
                z[z < z.topk(top_k).values.min()] = -math.inf
            cdf = torch.softmax(z, dim=-1).cumsum(0)
            u = torch.rand(1, generator=generator, dtype=cdf.dtype) * cdf[-1]
            next_id = torch.searchsorted(cdf, u, right=True)  # (1,)
            out.append(int(next_id))
            logits, state = model(next_id.view(1, 1), state)
    return out


def sample_one_char_at_a_time(model, prompt_ids, num_chars, temperature=1.0, top_k=None,
                              generator=None):  # fmt: skip
    """The prompt fed as (1, 1) inputs one id at a time, like the drawn ids."""
    model.eval()
    state, out = None, []
    with torch.no_grad():
        for i in prompt_ids.tolist():
            logits, state = model(torch.tensor([[i]]), state)
        for _ in range(num_chars):
            z = logits[0, 0] / temperature
            if top_k is not None:
                kth = torch.topk(z, top_k).values[-1]
                z = torch.where(z >= kth, z, torch.tensor(-math.inf, dtype=z.dtype))
            i = int(torch.multinomial(z.softmax(-1), num_samples=1, generator=generator))
            out.append(i)
            logits, state = model(torch.tensor([[i]]), state)
    return out


SAMPLES = [sample_topk_scatter, sample_sorted_mask, sample_inverse_cdf, sample_one_char_at_a_time]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", NGRAMS, ids=by_name)
def test_ngram_log_probs_alternatives_pass(answer):
    check_ngram_log_probs(answer)
    passes_probe(LESSON, "ngram_log_probs", answer)


@pytest.mark.parametrize("answer", BATCHIFIES, ids=by_name)
def test_batchify_alternatives_pass(answer):
    check_batchify(answer)
    passes_probe(LESSON, "batchify", answer)


@pytest.mark.parametrize("answer", WINDOWS, ids=by_name)
def test_stream_windows_alternatives_pass(answer):
    check_stream_windows(answer)
    passes_probe(LESSON, "stream_windows", answer)


@pytest.mark.parametrize("answer", DETACHES, ids=by_name)
def test_detach_state_alternatives_pass(answer):
    check_detach_state(answer)
    passes_probe(LESSON, "detach_state", answer)


@pytest.mark.parametrize("answer", CHAR_LMS, ids=by_name)
def test_char_lm_alternatives_pass(answer):
    check_char_lm(answer)
    passes_probe(LESSON, "CharLM", answer)


@pytest.mark.parametrize("answer", EVALUATES, ids=by_name)
def test_evaluate_lm_alternatives_pass(answer):
    check_evaluate_lm(answer)
    passes_probe(LESSON, "evaluate_lm", answer)


@pytest.mark.parametrize("answer", TRAIN_WINDOWS, ids=by_name)
def test_train_window_alternatives_pass(answer):
    check_train_window(answer)
    passes_probe(LESSON, "train_window", answer)


@pytest.mark.parametrize("answer", SAMPLES, ids=by_name)
def test_sample_alternatives_pass(answer):
    check_sample_seeded_and_primed(answer)
    check_sample_temperature_and_top_k(answer)
    passes_probe(LESSON, "sample", answer)
