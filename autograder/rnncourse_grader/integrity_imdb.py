"""Integrity probes for lesson 05 (IMDB): the same properties as its tests, checked outside.

The data functions (tokenize, build_vocab, encode, collate) and the pooling functions
(masked_mean, masked_max) run in the sandboxed runner on inputs made here; their expected
values are the grader's own references (``hidden.imdb``). The model, the training loop,
evaluation, checkpoints and prediction have no probes yet: their tests stand on the
in-kernel checks (and the checkpoint on the handed-in file's hash).
"""

import numpy as np
import torch

from rnncourse_grader.hidden.imdb import (
    PAD,
    UNK,
    UNK_ID,
    random_text,
    reference_build_vocab,
    reference_tokenize,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    compare_tensor,
    describe,
)


def _seeded(rng) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


# ----------------------------------------------------------------------------- student side


def call_with_options(ns, function, case):
    return ns[function](*case["args"], **case["kwargs"])


# ----------------------------------------------------------------------------- text
def tokenize_cases(rng):
    g = _seeded(rng)
    texts = [random_text(g) for _ in range(40)]
    return [{"args": [text]} for text in texts + ["Bye.<BR />See", "one<br />two", ""]]


def tokenize_expected(case):
    return reference_tokenize(case["args"][0])


def tokenize_compare(got, want, case):
    if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
        return f"tokenize returned {describe(got)}; expected a list of str"
    return None if got == want else f"tokenize({case['args'][0]!r}) = {got}; expected {want}"


def vocab_cases(rng):
    cases = []
    for min_freq, max_size in ((1, None), (2, 6), (1, 3), (3, None)):
        words = [f"t{i}" for i in range(int(rng.integers(3, 15)))] + [PAD, UNK]
        lists = [list(rng.choice(words, size=int(rng.integers(0, 9)))) for _ in range(10)]
        lists = [[str(w) for w in tokens] for tokens in lists]
        cases.append({"args": [lists], "kwargs": {"min_freq": min_freq, "max_size": max_size}})
    return cases


def vocab_expected(case):
    return reference_build_vocab(case["args"][0], **case["kwargs"])


def vocab_compare(got, want, case):
    if not isinstance(got, dict):
        return f"build_vocab returned {describe(got)}; expected a dict"
    return None if got == want else f"build_vocab({case['kwargs']}) differs from the expected ids"


def encode_cases(rng):
    vocab = {PAD: 0, UNK: 1} | {f"w{i}": i + 2 for i in range(30)}
    return [
        {"args": [[f"w{i}" for i in rng.integers(0, 50, size=int(n))], vocab]}
        for n in rng.integers(0, 20, size=4)
    ]


def encode_expected(case):
    tokens, vocab = case["args"]
    return torch.tensor([vocab.get(t, UNK_ID) for t in tokens], dtype=torch.long)


def encode_compare(got, want, case):
    return compare_tensor("ids", got, want)


def collate_cases(rng):
    cases = []
    for _ in range(3):
        lengths = rng.integers(1, 9, size=int(rng.integers(1, 6)))
        batch = [
            [rng.integers(2, 50, size=int(n)).astype(np.int64), int(rng.integers(2))]
            for n in lengths
        ]
        cases.append({"args": [batch]})
    return cases


def collate_expected(case):
    batch = case["args"][0]
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    X = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    for b, (ids, _) in enumerate(batch):
        X[b, : len(ids)] = as_tensor(ids)
    return X, lengths, torch.tensor([label for _, label in batch], dtype=torch.long)


def collate_compare(got, want, case):
    if not isinstance(got, tuple | list) or len(got) != 3:
        return f"collate returned {describe(got)}; expected (X, lengths, y)"
    for name, g, w in zip(("X", "lengths", "y"), got, want, strict=True):
        problem = compare_tensor(name, g, w)
        if problem:
            return problem
    return None


# ----------------------------------------------------------------------------- pooling
def pooling_cases(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float32):
        B, T, D = int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1, 5))
        lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
        H = rng.standard_normal((B, T, D))
        H[np.arange(T)[None, :] >= lengths[:, None]] = 1e3  # padding that must not count
        cases.append({"args": [H.astype(dtype), lengths]})
    return cases


def mean_expected(case):
    H, lengths = map(as_tensor, case["args"])
    return torch.stack([H[b, : int(n)].mean(0) for b, n in enumerate(lengths)])


def max_expected(case):
    H, lengths = map(as_tensor, case["args"])
    return torch.stack([H[b, : int(n)].amax(0) for b, n in enumerate(lengths)])


def pooling_compare(got, want, case):
    return compare_tensor("the pooled states", got, want)


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "tokenize": Method("call", tokenize_cases, tokenize_expected, tokenize_compare),
    "build_vocab": Method("call_with_options", vocab_cases, vocab_expected, vocab_compare),
    "encode": Method("call", encode_cases, encode_expected, encode_compare),
    "collate": Method("call", collate_cases, collate_expected, collate_compare),
    "masked_mean": Method("call", pooling_cases, mean_expected, pooling_compare),
    "masked_max": Method("call", pooling_cases, max_expected, pooling_compare),
}
