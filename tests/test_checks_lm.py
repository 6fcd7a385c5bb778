"""Lesson 06's checks: the reference passes every one, each typical bug fails with its hint, and
a correct answer written in another style passes too. (A larger corpus of correct
alternatives is in tests/test_alternatives_lm.py.)"""

import math
import re
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    CheckFailed,
    check_batchify,
    check_char_lm,
    check_detach_state,
    check_evaluate_lm,
    check_lm_beats_unigram,
    check_ngram_log_probs,
    check_sample_seeded_and_primed,
    check_sample_temperature_and_top_k,
    check_stream_windows,
    check_train_window,
)
from tests.course import lesson_functions

LESSON = "06_language_model"
GRADED = (
    "ngram_log_probs",
    "batchify",
    "stream_windows",
    "detach_state",
    "CharLM",
    "evaluate_lm",
    "train_window",
    "sample",
)
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@pytest.fixture(scope="module")
def ref():
    return lesson_functions(LESSON, *GRADED)


def fails(check, *args, match=None):
    """Assert that a check rejects the student's object, with ``match`` in its message."""
    with pytest.raises(CheckFailed, match=match):
        check(*args)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_every_check(ref):
    check_ngram_log_probs(ref["ngram_log_probs"])
    check_batchify(ref["batchify"])
    check_stream_windows(ref["stream_windows"])
    check_detach_state(ref["detach_state"])
    check_char_lm(ref["CharLM"])
    check_evaluate_lm(ref["evaluate_lm"])
    check_train_window(ref["train_window"])
    check_sample_seeded_and_primed(ref["sample"])
    check_sample_temperature_and_top_k(ref["sample"])


@pytest.mark.parametrize(
    "check",
    [
        check_ngram_log_probs,
        check_batchify,
        check_stream_windows,
        check_detach_state,
        check_char_lm,
        check_evaluate_lm,
        check_train_window,
        check_sample_seeded_and_primed,
        check_sample_temperature_and_top_k,
    ],
)
def test_stub_fails_with_a_clear_message(check):
    fails(check, not_implemented, match="not implemented yet")


# ----------------------------------------------------------------------------- batchify
def batchify_column_major(ids, batch_size):
    L = len(ids) // batch_size
    return ids[: batch_size * L].view(L, batch_size).T


def batchify_float(ids, batch_size):
    L = len(ids) // batch_size
    return ids[: batch_size * L].view(batch_size, L).float()


def batchify_keeps_the_tail(ids, batch_size):  # ceil: the last row is padded with its start
    L = -(-len(ids) // batch_size)
    return ids.repeat(2)[: batch_size * L].view(batch_size, L)


def batchify_from_the_end(ids, batch_size):  # drops the head instead of the tail
    L = len(ids) // batch_size
    return ids[len(ids) - batch_size * L :].view(batch_size, L)


BATCHIFY_BUGS = {
    "column major": (batchify_column_major, "the ids run down the columns"),
    "float ids": (batchify_float, "expected torch.int64"),
    "tail kept": (batchify_keeps_the_tail, re.escape("(drop the last N - B * L ids)")),
    "head dropped": (batchify_from_the_end, r"row 0 is .*expected ids\[0:4\]"),
}


@pytest.mark.parametrize("bug", BATCHIFY_BUGS)
def test_batchify_check_catches(bug):
    fn, hint = BATCHIFY_BUGS[bug]
    fails(check_batchify, fn, match=hint)


def test_batchify_check_passes_rows_stacked_by_hand():
    def batchify(ids, batch_size):
        L = len(ids) // batch_size
        return torch.stack([ids[b * L : (b + 1) * L] for b in range(batch_size)])

    check_batchify(batchify)


# ----------------------------------------------------------------------------- stream_windows
def _windows(starts, *, shift=1, length=lambda T, L, i: min(T, L - 1 - i)):
    """stream_windows with the window starts ``starts(L, T)``, targets shifted by ``shift``."""

    def stream_windows(rows, num_steps):
        L = rows.shape[1]
        out = []
        for i in starts(L, num_steps):
            t = length(num_steps, L, i)
            out.append((rows[:, i : i + t], rows[:, i + shift : i + shift + t]))
        return out

    return stream_windows


WINDOW_BUGS = {
    "targets not shifted": (_windows(lambda L, T: range(0, L - 1, T), shift=0), "Y equals X"),
    "last window dropped": (
        _windows(lambda L, T: range(0, L - T, T)),
        r"2 windows; expected 3: columns 9..10 are never a target \(keep the shorter last",
    ),
    "overlapping windows (stride 1)": (
        _windows(lambda L, T: range(0, L - T)),
        re.escape("window 1: X should be rows[:, 3:6]"),
    ),
    "an empty window at the end": (
        _windows(lambda L, T: range(0, L, T)),
        re.escape("3 windows; expected 2 (no column twice)"),
    ),
    "every window full length": (
        _windows(lambda L, T: range(0, L - 1, T), length=lambda T, L, i: T),
        r"expected \(B, t\) = \(3, 2\) \(the last window is shorter\)",
    ),
    "inputs only": (
        lambda rows, T: [rows[:, i : i + T] for i in range(0, rows.shape[1] - 1, T)],
        r"window 0 is not an \(X, Y\) pair",
    ),
}


@pytest.mark.parametrize("bug", WINDOW_BUGS)
def test_stream_windows_check_catches(bug):
    fn, hint = WINDOW_BUGS[bug]
    fails(check_stream_windows, fn, match=hint)


def test_stream_windows_check_passes_a_generator_of_splits():
    def stream_windows(rows, num_steps):
        X, Y = rows[:, :-1].split(num_steps, 1), rows[:, 1:].split(num_steps, 1)
        yield from zip(X, Y, strict=True)

    check_stream_windows(stream_windows)


# ----------------------------------------------------------------------------- detach_state
def detach_keeps_h_only(state):
    if isinstance(state, tuple):
        return state[0].detach()
    return None if state is None else state.detach()


def detach_forgets_c(state):
    if isinstance(state, tuple):
        return state[0].detach(), state[1]
    return None if state is None else state.detach()


def detach_rebuilds_a_graph(state):
    if state is None:
        return None
    return state.detach().requires_grad_() if isinstance(state, torch.Tensor) else state


DETACH_BUGS = {
    "returns the state itself": (lambda state: state, "still has a graph"),
    "drops c": (detach_keeps_h_only, r"returned Tensor; .*\(h, c\): detach both"),
    "c not detached": (detach_forgets_c, "part 1: the tensor still has a graph"),
    "detached then requires_grad again": (detach_rebuilds_a_graph, "still has a graph"),
    "zeros": (lambda state: state if state is None else torch.zeros(state.shape), "values changed"),
}


@pytest.mark.parametrize("bug", DETACH_BUGS)
def test_detach_state_check_catches(bug):
    fn, hint = DETACH_BUGS[bug]
    fails(check_detach_state, fn, match=hint)


def test_detach_state_check_passes_a_list_of_data():
    def detach_state(state):
        if isinstance(state, tuple | list):
            return [s.data for s in state]  # a list for a tuple is fine
        return state if state is None else state.data

    check_detach_state(detach_state)


# ----------------------------------------------------------------------------- CharLM
def _char_lm(*, batch_first=True, pass_state=True, tie=True, checks_sizes=True, logits=True):
    """The lesson's CharLM, with one thing done wrong when a flag says so."""

    class CharLM(nn.Module):
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
            self.rnn = CELLS[cell](embed_size, num_hiddens, num_layers, batch_first=batch_first)
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(num_hiddens, vocab_size)
            if tie_weights and tie and (checks_sizes or embed_size == num_hiddens):
                if embed_size != num_hiddens:
                    raise ValueError("tie_weights needs embed_size == num_hiddens")
                self.fc.weight = self.embedding.weight

        def forward(self, X, state=None):
            H, state = self.rnn(self.dropout(self.embedding(X)), state if pass_state else None)
            return (self.fc(self.dropout(H)) if logits else H), state

    return CharLM


class CharLMStateAsList(_char_lm()):
    def forward(self, X, state=None):
        logits, state = super().forward(X, state)
        return logits, list(state) if isinstance(state, tuple) else state


def test_the_bug_free_char_lm_passes():
    check_char_lm(_char_lm())


CHAR_LM_BUGS = {
    # The time axis is read as the batch, so the carried state has the wrong batch size. The
    # check does not name batch_first (yet): it fails on PyTorch's error about that size.
    "not batch first": (_char_lm(batch_first=False), r"batch_first|Expected hidden\[0\] size"),
    "given state ignored": (
        _char_lm(pass_state=False),
        "reading the text in two calls, the state carried, gives other logits",
    ),
    "weights not tied": (_char_lm(tie=False), r"\['fc.weight'\].*fc.weight IS embedding.weight"),
    "no ValueError for e != h": (_char_lm(checks_sizes=False), "should raise ValueError"),
    "hidden states for logits": (_char_lm(logits=False), r"logits have shape \(3, 6, 7\)"),
}


@pytest.mark.parametrize("bug", CHAR_LM_BUGS)
def test_char_lm_check_catches(bug):
    cls, hint = CHAR_LM_BUGS[bug]
    fails(check_char_lm, cls, match=hint)


def test_char_lm_check_catches_weights_copied_instead_of_tied():
    class CharLM(_char_lm(tie=False)):
        def __init__(self, vocab_size, embed_size, num_hiddens, tie_weights=False, **kwargs):
            super().__init__(vocab_size, embed_size, num_hiddens, tie_weights=False, **kwargs)
            if tie_weights:
                if embed_size != num_hiddens:
                    raise ValueError("e != h")
                self.fc.weight = nn.Parameter(self.embedding.weight.detach().clone())

    fails(check_char_lm, CharLM, match="fc.weight IS embedding.weight")


def test_char_lm_check_passes_another_style():
    """getattr(nn, ...) for the cell, F.linear in forward, tied from the other side (the
    embedding takes fc's matrix), the state of an LSTM handed back as it came."""

    class CharLM(nn.Module):
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
            if tie_weights and embed_size != num_hiddens:
                raise ValueError(f"cannot tie: {embed_size} != {num_hiddens}")
            self.embedding = nn.Embedding(vocab_size, embed_size)
            self.rnn = getattr(nn, cell.upper())(
                input_size=embed_size,
                hidden_size=num_hiddens,
                num_layers=num_layers,
                batch_first=True,
            )
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(num_hiddens, vocab_size)
            if tie_weights:
                self.embedding.weight = self.fc.weight

        def forward(self, X, state=None):
            out, new_state = self.rnn(self.dropout(self.embedding(X)), state)
            return F.linear(self.dropout(out), self.fc.weight, self.fc.bias), new_state

    check_char_lm(CharLM)


def test_char_lm_check_passes_layers_defined_in_another_order():
    """fc defined before the embedding: with tied weights, named_parameters() lists the shared
    matrix once, under the name it was first met with (fc.weight)."""

    class CharLM(nn.Module):
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
            self.fc = nn.Linear(num_hiddens, vocab_size)
            self.dropout = nn.Dropout(dropout)
            self.rnn = CELLS[cell](embed_size, num_hiddens, num_layers, batch_first=True)
            self.embedding = nn.Embedding(vocab_size, embed_size)
            if tie_weights:
                if embed_size != num_hiddens:
                    raise ValueError("e != h")
                self.fc.weight = self.embedding.weight

        def forward(self, X, state=None):
            H, state = self.rnn(self.dropout(self.embedding(X)), state)
            return self.fc(self.dropout(H)), state

    check_char_lm(CharLM)


def test_char_lm_check_passes_a_state_returned_as_a_list():
    check_char_lm(CharLMStateAsList)


# ----------------------------------------------------------------------------- evaluate_lm
def _evaluate(
    *, eval_mode=True, no_grad=True, carry=True, window_means=False, nats=False, floats=True
):
    """evaluate_lm, with one thing done wrong when a flag says so."""

    def evaluate_lm(model, windows):
        if eval_mode:
            model.eval()
        total, count, state, means = 0.0, 0, None, []
        with torch.set_grad_enabled(not no_grad):
            for X, Y in windows:
                logits, new_state = model(X, state)
                state = new_state if carry else None
                nll = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum"
                )
                total, count = total + nll.item(), count + Y.numel()
                means.append(nll.item() / Y.numel())
        nll = sum(means) / len(means) if window_means else total / count
        result = (nll if nats else nll / math.log(2)), math.exp(nll)
        return result if floats else tuple(torch.tensor(v) for v in result)

    return evaluate_lm


def test_the_bug_free_evaluate_lm_passes():
    check_evaluate_lm(_evaluate())


def evaluate_exp_of_bits(model, windows):
    bits, _ = _evaluate()(model, windows)
    return bits, math.exp(bits)


EVALUATE_BUGS = {
    "mean of window means": (_evaluate(window_means=True), "not a mean of window means"),
    "train mode": (_evaluate(eval_mode=False), r"training mode: call model.eval\(\)"),
    "autograd on": (_evaluate(no_grad=False), "autograd was on"),
    "state not carried": (_evaluate(carry=False), "carry the state from window to window"),
    "nats": (_evaluate(nats=True), "in nats: divide by ln 2"),
    "tensors": (_evaluate(floats=False), "Python floats"),
    "perplexity from the bits": (evaluate_exp_of_bits, r"perplexity is .*2 \*\* bits"),
}


@pytest.mark.parametrize("bug", EVALUATE_BUGS)
def test_evaluate_lm_check_catches(bug):
    fn, hint = EVALUATE_BUGS[bug]
    fails(check_evaluate_lm, fn, match=hint)


def test_evaluate_lm_check_passes_one_cross_entropy_over_all_windows():
    @torch.inference_mode()
    def evaluate_lm(model, windows):
        model.train(False)
        state, logits, targets = None, [], []
        for X, Y in windows:
            out, state = model(X, state)
            logits.append(out.reshape(-1, out.shape[-1]))
            targets.append(Y.flatten())
        nll = F.cross_entropy(torch.cat(logits), torch.cat(targets)).item()
        bits = nll / math.log(2)
        return bits, 2.0**bits

    check_evaluate_lm(evaluate_lm)


# ----------------------------------------------------------------------------- train_window
def _train_window(
    *, zero=True, clip=True, use_state=True, detach=True, item=True, reduction="mean"
):
    """train_window, with one thing done wrong when a flag says so."""

    def train_window(model, X, Y, state, optimizer, max_norm=1.0):
        if zero:
            optimizer.zero_grad()
        logits, state = model(X, state if use_state else None)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction=reduction
        )
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        return (loss.item() if item else loss), (state.detach() if detach else state)

    return train_window


def test_the_bug_free_train_window_passes():
    check_train_window(_train_window())


TRAIN_WINDOW_BUGS = {
    "state not detached": (_train_window(detach=False), "still has its graph"),
    "no zero_grad": (_train_window(zero=False), r"optimizer.zero_grad\(\)"),
    "no clipping": (_train_window(clip=False), "not clipped to max_norm = 0.05"),
    "state ignored": (_train_window(use_state=False), "started from zero: pass `state`"),
    "loss as a tensor": (_train_window(item=False), r"expected a float \(loss.item\(\)\)"),
    "summed loss": (_train_window(reduction="sum"), "expected the mean cross-entropy"),
}


@pytest.mark.parametrize("bug", TRAIN_WINDOW_BUGS)
def test_train_window_check_catches(bug):
    fn, hint = TRAIN_WINDOW_BUGS[bug]
    fails(check_train_window, fn, match=hint)


def test_train_window_check_catches_the_clip_after_the_step():
    def train_window(model, X, Y, state, optimizer, max_norm=1.0):
        optimizer.zero_grad()
        logits, state = model(X, state)
        loss = F.cross_entropy(logits.flatten(0, 1), Y.flatten())
        loss.backward()
        optimizer.step()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # too late
        return loss.item(), state.detach()

    fails(check_train_window, train_window, match="not clipped to max_norm = 0.05")


def test_train_window_check_catches_two_steps():
    def train_window(model, X, Y, state, optimizer, max_norm=1.0):
        loss, new_state = _train_window()(model, X, Y, state, optimizer, max_norm)
        optimizer.step()  # again, with the same gradient
        return loss, new_state

    fails(check_train_window, train_window, match="called 2 times; expected once")


def test_train_window_check_passes_another_style():
    """(B, V, T) logits for cross_entropy, model.zero_grad(), the clip written out by hand
    (with lesson 02's factor min(max_norm / (norm + 1e-6), 1))."""

    def train_window(model, X, Y, state, optimizer, max_norm=1.0):
        model.zero_grad(set_to_none=True)
        logits, new_state = model(X, state)
        loss = F.cross_entropy(logits.transpose(1, 2), Y)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm = torch.sqrt(sum((g**2).sum() for g in grads)).item()
        for g in grads:
            g.mul_(min(max_norm / (norm + 1e-6), 1.0))
        optimizer.step()
        return float(loss.detach()), new_state.detach()

    check_train_window(train_window)


# ----------------------------------------------------------------------------- sample
def _sample(
    *,
    temperature_on="logits",
    extra_k=0,
    fill=-math.inf,
    whole_prompt=True,
    own_generator=True,
    carry=True,
):
    """sample, with one thing done wrong when a flag says so."""

    def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):
        model.eval()
        out = []
        with torch.no_grad():
            logits, state = model((prompt_ids if whole_prompt else prompt_ids[-1:])[None], None)
            for _ in range(num_chars):
                last = logits[0, -1].double()
                if temperature_on == "logits":
                    last = last / temperature
                if top_k is not None:
                    last = last.masked_fill(last < last.topk(top_k + extra_k).values[-1], fill)
                probs = last.softmax(-1)
                if temperature_on == "probabilities":
                    probs = probs / temperature
                elif temperature_on == "power":
                    probs = probs ** (1 / temperature)
                probs = probs / probs.sum()
                next_id = torch.multinomial(
                    probs, 1, generator=generator if own_generator else None
                )
                out.append(int(next_id))
                logits, state = model(next_id[None], state if carry else None)
        return out

    return sample


def test_the_bug_free_sample_passes():
    check_sample_seeded_and_primed(_sample())
    check_sample_temperature_and_top_k(_sample())


SAMPLE_BUGS = {
    "prompt ignored": (
        check_sample_seeded_and_primed,
        _sample(whole_prompt=False),
        "continues from the last prompt id alone",
    ),
    "state not fed back": (
        check_sample_seeded_and_primed,
        _sample(carry=False),
        "feed each drawn id back in with the state",
    ),
    "global RNG": (
        check_sample_seeded_and_primed,
        _sample(own_generator=False),
        "the same seeded generator gave two different texts",
    ),
    "temperature divides the probabilities": (
        check_sample_temperature_and_top_k,
        _sample(temperature_on="probabilities"),
        "at temperature 0.5: id .* is the temperature dividing the logits",
    ),
    # p ** (1 / T) underflows to 0 at T = 1e-6: torch.multinomial refuses the NaNs, before
    # the check's own hint ("divide the logits, not the probabilities") can be reached.
    "probabilities to the power 1 / T": (
        check_sample_temperature_and_top_k,
        _sample(temperature_on="power"),
        "sample raised RuntimeError: probability tensor contains either `inf`, `nan`",
    ),
    "top k + 1 kept": (
        check_sample_temperature_and_top_k,
        _sample(extra_k=1),
        r"top_k = 3: ids \[\d\] were drawn but are not among the top 3",
    ),
    "top k - 1 kept": (
        check_sample_temperature_and_top_k,
        _sample(extra_k=-1),
        "only 2 different ids were drawn; top_k = 3 keeps 3",
    ),
    "top-k fills 0, not -inf": (
        check_sample_temperature_and_top_k,
        _sample(fill=0.0),
        "not among the top 3",
    ),
}


@pytest.mark.parametrize("bug", SAMPLE_BUGS)
def test_sample_checks_catch(bug):
    check, fn, hint = SAMPLE_BUGS[bug]
    fails(check, fn, match=hint)


def test_sample_with_the_global_rng_follows_the_right_distribution():
    """Only the seeding check can tell: the draws themselves are right."""
    check_sample_temperature_and_top_k(_sample(own_generator=False))


def test_sample_checks_pass_topk_scatter_and_an_inverse_cdf():
    """The prompt read one id at a time, top-k by scatter, each draw by one uniform number from
    the generator and the cumulative sum; a tensor of ids is returned."""

    def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):
        model.eval()
        state, drawn = None, []
        with torch.no_grad():
            for i in prompt_ids.tolist():
                logits, state = model(torch.tensor([[i]]), state)
            for _ in range(num_chars):
                z = logits[0, -1].double() / temperature
                if top_k:
                    values, where = torch.topk(z, top_k)
                    z = torch.full_like(z, -math.inf).scatter(0, where, values)
                cdf = torch.softmax(z, 0).cumsum(0)
                u = torch.rand((), generator=generator, dtype=torch.float64)
                drawn.append(min(int(torch.searchsorted(cdf, u, right=True)), len(z) - 1))
                logits, state = model(torch.tensor([[drawn[-1]]]), state)
        return torch.tensor(drawn, dtype=torch.long)

    check_sample_seeded_and_primed(sample)
    check_sample_temperature_and_top_k(sample)


# ----------------------------------------------------------------------------- ngram
def _ngram(
    *, context_at_end=False, denominator="kV", log=math.log, context_shift=0, probabilities=False
):
    """ngram_log_probs with Counters, with one thing done wrong when a flag says so."""

    def ngram_log_probs(train_ids, eval_ids, order, k, vocab_size):
        train, ev = train_ids.tolist(), eval_ids.tolist()
        grams = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
        n_contexts = len(train) - order + 1 + (1 if context_at_end else 0)
        contexts = Counter(tuple(train[i : i + order - 1]) for i in range(max(n_contexts, 0)))
        out = []
        for t in range(order - 1, len(ev)):
            h = tuple(ev[t - order + 1 + context_shift : t + context_shift])
            extra = k * vocab_size if denominator == "kV" else k
            p = (grams[(*h, ev[t])] + k) / (contexts[h] + extra)
            out.append(p if probabilities else log(p))
        return torch.tensor(out, dtype=torch.float64)

    return ngram_log_probs


def test_ngram_check_passes_counters():
    check_ngram_log_probs(_ngram())


NGRAM_BUGS = {
    "N(h) counts the context at the end": (
        _ngram(context_at_end=True),
        r"target 5 has probability 0.2500; expected 0.3333. .*where a character follows",
    ),
    "denominator N(h) + k": (_ngram(denominator="k"), r"N\(h\) \+ k V"),
    "log2": (_ngram(log=math.log2), "these are log2 probabilities"),
    "probabilities": (_ngram(probabilities=True), "these are probabilities"),
    "context shifted by one": (_ngram(context_shift=1), r"the targets are eval_ids\[1:\]"),
    "targets start one late": (
        lambda tr, ev, order, k, V: _ngram()(tr, ev[1:], order, k, V),
        re.escape("expected a tensor of shape (6,)"),
    ),
    "float32": (lambda *args: _ngram()(*args).float(), "expected float64"),
}


@pytest.mark.parametrize("bug", NGRAM_BUGS)
def test_ngram_check_catches(bug):
    fn, hint = NGRAM_BUGS[bug]
    fails(check_ngram_log_probs, fn, match=hint)


# ----------------------------------------------------------------------------- the outcome
def markov_stream(n: int, vocab_size: int, seed: int) -> torch.Tensor:
    """A stream where each id is followed by (id + 1) mod V nine times in ten, else by any id."""
    g = torch.Generator().manual_seed(seed)
    jumps = torch.where(
        torch.rand(n, generator=g) < 0.9,
        torch.ones(n, dtype=torch.long),
        torch.randint(vocab_size, (n,), generator=g),  # id + uniform = uniform (mod V)
    )
    return jumps.cumsum(0) % vocab_size


V_FAKE = 8


@pytest.fixture(scope="module")
def fake_corpus():
    stream = markov_stream(45_000, V_FAKE, seed=0)
    return SimpleNamespace(train=stream[:25_000], valid=stream[25_000:], vocab=[None] * V_FAKE)


class BigramLM(nn.Module):
    """Logits are the log bigram frequencies of a training stream: what a model learns."""

    def __init__(self, train: torch.Tensor, vocab_size: int):
        super().__init__()
        counts = torch.ones(vocab_size, vocab_size)
        counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
        self.log_p = nn.Parameter(counts.log() - counts.sum(1, keepdim=True).log())

    def forward(self, X, state=None):
        return self.log_p[X], state


class UniformLM(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, X, state=None):
        return self.logits.expand(*X.shape, -1), state


def test_a_model_that_learned_beats_unigram(fake_corpus):
    model = BigramLM(fake_corpus.train, V_FAKE).train()
    check_lm_beats_unigram(model, fake_corpus)
    assert model.training, "the check must leave the model's mode as it was"


def test_uniform_logits_do_not_beat_unigram(fake_corpus):
    fails(check_lm_beats_unigram, UniformLM(V_FAKE), fake_corpus, match="Did the training loop run")


def test_an_untrained_char_lm_does_not_beat_unigram(ref, fake_corpus):
    torch.manual_seed(0)
    model = ref["CharLM"](V_FAKE, 8, 16, cell="gru")
    fails(check_lm_beats_unigram, model, fake_corpus, match="expected at most")


def test_a_model_that_cannot_run_is_reported(fake_corpus):
    class LogitsOnly(BigramLM):
        def forward(self, X, state=None):
            return self.log_p[X]

    fails(
        check_lm_beats_unigram,
        LogitsOnly(fake_corpus.train, V_FAKE),
        fake_corpus,
        match="could not be evaluated: ValueError",
    )
