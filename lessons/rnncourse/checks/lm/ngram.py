"""Lesson 06's check of the n-gram baseline, from properties and a hand-worked example.

The check does not recompute the answer: it asks for what an add-k n-gram model must satisfy.
Over every possible next id the probabilities of one context sum to one; with order 1 they
are the smoothed character frequencies; an unseen context gives the uniform 1/V; and on a
stream small enough to count by hand the numbers are the fractions worked out below.
"""

import math

import torch

from rnncourse.checks._core import CheckFailed, call_student

# train = 0 1 0 1 0 2, order 2, k = 1, V = 3: 0 is followed by 1, 1, 2 and 1 by 0, 0; 2 is
# never followed by anything, so N(2) = 0 and p(0 | 2) = 1 / 3. Eval = train + [0].
HAND_STREAM = [0, 1, 0, 1, 0, 2]
HAND_ORDER2 = [3 / 6, 3 / 5, 3 / 6, 3 / 5, 2 / 6, 1 / 3]
# order 3 on the same stream, k = 0.5: contexts 01 (followed by 0, 0), 10 (by 1, 2).
HAND_ORDER3 = [
    (2 + 0.5) / (2 + 1.5),
    (1 + 0.5) / (2 + 1.5),
    (2 + 0.5) / (2 + 1.5),
    (1 + 0.5) / (2 + 1.5),
]


def _call(fn, train, eval_ids, order, k, V):
    got = call_student(
        fn, torch.tensor(train), torch.tensor(eval_ids), order, k, V, name="ngram_log_probs"
    )
    n = max(len(eval_ids) - order + 1, 0)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (n,):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise CheckFailed(
            f"ngram_log_probs (order {order}, {len(eval_ids)} eval ids) returned {shape}; expected "
            f"a tensor of shape ({n},): one log-probability per target eval_ids[order - 1:]."
        )
    if got.dtype != torch.float64:
        raise CheckFailed(f"ngram_log_probs returned {got.dtype}; expected float64.")
    return got


def _compare(what: str, got: torch.Tensor, want, hint: str) -> None:
    want = torch.tensor(want, dtype=torch.float64).log()
    if torch.allclose(got, want, rtol=1e-9, atol=1e-12):
        return
    if torch.allclose(got, want / math.log(2), rtol=1e-9, atol=1e-12):
        raise CheckFailed(f"{what}: these are log2 probabilities; return natural logs (np.log).")
    if torch.allclose(got, want.exp(), rtol=1e-9, atol=1e-12):
        raise CheckFailed(f"{what}: these are probabilities; return their natural logs.")
    i = int((got - want).abs().argmax())
    raise CheckFailed(
        f"{what}: target {i} has probability {got[i].exp().item():.4f}; expected "
        f"{want[i].exp().item():.4f}. {hint}"
    )


def check_ngram_log_probs(ngram_log_probs) -> None:
    """ngram_log_probs: hand-worked fractions, normalised contexts, unigrams, unseen contexts."""
    got = _call(ngram_log_probs, HAND_STREAM, HAND_STREAM + [0], 2, 1.0, 3)
    _compare(
        "order 2, k = 1, train 0 1 0 1 0 2, eval 0 1 0 1 0 2 0",
        got,
        HAND_ORDER2,
        "p(c | h) = (N(h c) + k) / (N(h) + k V), N(h) counting h only where a character follows; "
        "the targets are eval_ids[1:].",
    )
    got = _call(ngram_log_probs, HAND_STREAM, HAND_STREAM, 3, 0.5, 3)
    _compare(
        "order 3, k = 0.5, train = eval = 0 1 0 1 0 2",
        got,
        HAND_ORDER3,
        "The context is the 2 ids before.",
    )
    g = torch.Generator().manual_seed(0)
    train = torch.randint(4, (300,), generator=g).tolist()
    counts = torch.bincount(torch.tensor(train), minlength=6).double()
    got = _call(ngram_log_probs, train, [5, 0, 3, 4], 1, 0.3, 6)
    unigram = ((counts + 0.3) / (300 + 0.3 * 6))[[5, 0, 3, 4]]
    _compare(
        "order 1 (the unigram model), k = 0.3", got, unigram.tolist(), "Order 1 has no context."
    )
    for order in (2, 4):
        context = train[10 : 10 + order - 1]
        streams = [context + [c] for c in range(6)]
        total = sum(
            _call(ngram_log_probs, train, s, order, 0.1, 6)[-1].exp().item() for s in streams
        )
        if not math.isclose(total, 1.0, rel_tol=1e-9):
            raise CheckFailed(
                f"order {order}: the probabilities of the 6 possible next ids after the context "
                f"{context} sum to {total:.6f}, not 1: the denominator is N(h) + k V."
            )
    got = _call(ngram_log_probs, train, [5, 5, 5, 1], 3, 0.2, 6)  # id 5 never occurs in train
    _compare("an unseen context", got, [1 / 6, 1 / 6], "An unseen context gives k / (k V) = 1 / V.")
    _call(ngram_log_probs, train, [1, 2], 3, 0.2, 6)  # shorter than the order: nothing to score
    print("ngram_log_probs counts, smooths and normalises like an add-k n-gram model.")
