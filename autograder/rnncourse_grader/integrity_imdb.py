"""Integrity probes for lesson 05 (IMDB): the same properties as its tests, checked outside.

The data functions (tokenize, build_vocab, encode, collate), the pooling functions
(masked_mean, masked_max) and predict run in the sandboxed runner on inputs made here;
their expected values are the grader's own references (``hidden.imdb`` grades the
checkpoint with the same tokenizer and clip). Pooling is also differentiated there: padded
states get no gradient. Batching is judged by the lesson's own rules
(``bucket_batches_problem``, run here on the batches the runner sends back). The model,
the training loop, evaluation and checkpoints: ``integrity_imdb_model``.
"""

import math
import re
import string
from collections import Counter

import numpy as np
import torch

from rnncourse.checks.imdb import (
    CLASS_NAMES,
    KEYWORD_VOCAB,
    PAD,
    PAD_ID,
    UNK,
    UNK_ID,
    PredictionRun,
    bucket_batches_problem,
    bucket_batches_runs,
    bucket_lengths,
    prediction_problem,
    run_prediction,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    compare_tensor,
    describe,
    fields_of,
    record_from,
    swapped,
)
from rnncourse_grader.integrity_imdb_model import (  # the recipes the runner looks up here
    MODEL_PROBES,
    evaluate_run,
    model_logits,
    reference_masked_max,
    reference_masked_mean,
    save_run,
    train_epoch,
)

RECIPES = (model_logits, train_epoch, evaluate_run, save_run)

# ----------------------------------------------------------------------------- references
TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def reference_tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower().replace("<br />", " "))


def reference_build_vocab(token_lists, min_freq=1, max_size=None) -> dict[str, int]:
    counts = Counter(t for tokens in token_lists for t in tokens if t not in (PAD, UNK))
    kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max(max_size - 2, 0)]
    return {PAD: PAD_ID, UNK: UNK_ID} | {t: i + 2 for i, t in enumerate(kept)}


def reference_encode(tokens: list[str], vocab: dict[str, int]) -> torch.Tensor:
    return torch.tensor([vocab.get(t, UNK_ID) for t in tokens], dtype=torch.long)  # (L,)


def reference_clip_ids(ids: torch.Tensor, max_len: int) -> torch.Tensor:
    """The first and last halves of ``ids`` when it is longer than ``max_len``."""
    if len(ids) <= max_len:
        return ids
    return torch.cat([ids[: max_len // 2], ids[len(ids) - (max_len - max_len // 2) :]])


def random_text(g: torch.Generator) -> str:
    """A review-like text of random pieces: words, apostrophes, line breaks, punctuation."""
    pieces = [
        "good", "Bad", "DON'T", "o'brien's", "'quoted'", "it's", "na\u00efve", "\u00fcber",
        "10/10", "3.5", "<BR />", "!!!", "?!", ":)", ";-)", "<br />", "<br /><br />", "--", "...",
        "(great)", "\"film\"", "snake_case", "x'", "'y", "a'b'c", "\t", "\n", "  ", "$5",
        "word<br />word", "Fin<BR />next",  # a line break between two words separates them
    ] + list(string.punctuation)  # fmt: skip
    count = int(torch.randint(0, 25, (1,), generator=g))
    chosen = torch.randint(len(pieces), (count,), generator=g).tolist()
    glue = torch.randint(0, 3, (count,), generator=g).tolist()
    return "".join(pieces[i] + ("", " ", "  ")[j] for i, j in zip(chosen, glue, strict=True))


def _seeded(rng) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


# ----------------------------------------------------------------------------- student side


def call_with_options(ns, function, case):
    return ns[function](*case["args"], **case["kwargs"])


def bucket_runs(ns, function, case):
    """The batches of the four runs the rules look at, then one with the global generator."""
    fn, lengths = ns[function], case["lengths"]
    runs = bucket_batches_runs(fn, lengths, case["bs"], case["pools"])
    return [*runs, fn(lengths[:64], 8)]


def pool_and_grad(ns, function, case):
    """The pooled states, and the gradient of their sum with respect to every state."""
    H, lengths = case["args"]
    H = H.requires_grad_(True)
    out = ns[function](H, lengths)
    (grad,) = torch.autograd.grad(out.sum(), H)
    return [out, grad]


# ----------------------------------------------------------------------------- text
def tokenize_cases(rng):
    g = _seeded(rng)
    texts = [random_text(g) for _ in range(300)]
    return [{"args": [text]} for text in texts + ["Bye.<BR />See", "one<br />two", ""]]


def tokenize_expected(case):
    return reference_tokenize(case["args"][0])


def tokenize_compare(got, want, case):
    if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
        return f"tokenize returned {describe(got)}; expected a list of str"
    return None if got == want else f"tokenize({case['args'][0]!r}) = {got}; expected {want}"


VOCAB_OPTIONS = [(1, None), (2, 5), (3, 2), (1, 3), (2, 6), (3, None)]  # (min_freq, max_size)


def vocab_cases(rng):
    """Ties broken alphabetically, limits that count the specials, <pad> and <unk> in the
    text (never counted twice)."""
    cases = []
    for min_freq, max_size in VOCAB_OPTIONS:
        words = [f"{c}{i}" for i, c in enumerate(string.ascii_lowercase[: rng.integers(3, 26)])]
        words += [PAD, UNK]
        lists = [[str(w) for w in rng.choice(words, size=int(n))] for n in rng.integers(0, 9, 12)]
        options = {"min_freq": min_freq, "max_size": max_size}
        cases.append({"label": f"{options}", "args": [lists], "kwargs": options})
    specials = [["<unk>", "a", "<pad>", "a"]]
    cases.append({"label": f"lists {specials}", "args": [specials], "kwargs": {}})
    return cases


def vocab_expected(case):
    return reference_build_vocab(case["args"][0], **case["kwargs"])


def vocab_compare(got, want, case):
    if not isinstance(got, dict):
        return f"build_vocab returned {describe(got)}; expected a dict"
    if got == want:
        return None
    wrong = sorted(t for t in set(got) | set(want) if got.get(t) != want.get(t))[:3]
    return f"build_vocab gives the wrong ids for {wrong} (ties sort alphabetically)"


def encode_cases(rng):
    """Known and unknown tokens, one token and none."""
    vocab = {PAD: 0, UNK: 1} | {f"w{i}": i + 2 for i in range(50)}
    counts = [0, 1, *rng.integers(2, 40, size=5)]
    return [{"args": [[f"w{i}" for i in rng.integers(0, 80, size=int(n))], vocab]} for n in counts]


def encode_expected(case):
    return reference_encode(*case["args"])


def encode_compare(got, want, case):
    return compare_tensor("ids", got, want)


def collate_cases(rng):
    """One review, reviews of one length (no padding), then random lengths."""
    fixed = [(1,), (4, 4, 4), (1, 9, 2, 2, 5)]
    drawn = [tuple(rng.integers(1, 9, size=int(rng.integers(1, 6)))) for _ in range(2)]
    cases = []
    for lengths in fixed + drawn:
        batch = [
            [rng.integers(2, 50, size=int(n)).astype(np.int64), int(rng.integers(2))]
            for n in lengths
        ]
        cases.append({"label": f"lengths {tuple(int(n) for n in lengths)}", "args": [batch]})
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


# ----------------------------------------------------------------------------- batching
BUCKETS = [(2000, 16, 50), (1001, 7, 3), (500, 1, 50), (3000, 64, 5)]  # (N, batch, pool)


def bucket_cases(rng):
    cases = []
    for n, bs, pools in BUCKETS:
        lengths = bucket_lengths(n, int(rng.integers(2**31))).numpy()
        label = f"N = {n}, batch_size = {bs}, pool_batches = {pools}"
        cases.append({"label": label, "lengths": lengths, "bs": bs, "pools": pools})
    return cases


def bucket_expected(case):
    return None  # the rules, not one right answer: any shuffle the generator drives is right


def bucket_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 5:
        return f"bucket_batches gave {describe(got)}"
    lengths = as_tensor(case["lengths"])
    problem = bucket_batches_problem(lengths, case["bs"], case["pools"], got[:4])
    if problem:
        return problem
    default = got[4]
    if not isinstance(default, list) or not all(isinstance(b, torch.Tensor) for b in default):
        return "with generator=None, bucket_batches should still return a list of index tensors"
    if sorted(torch.cat(default).tolist()) != list(range(64)):
        return "with generator=None (the global generator), the batches must cover every index once"
    return None


# ----------------------------------------------------------------------------- pooling
POOLING_CASES = [  # (lengths, D, dtype, the value in the padding)
    ((1,), 1, np.float64, 1e3),
    ((3, 3), 2, np.float64, 1e3),  # no padding at all
    ((2, 9, 1, 5, 9), 4, np.float32, -1e3),
]


def pooling_cases(rng):
    drawn = []
    for _ in range(2):
        T = int(rng.integers(1, 9))
        lengths = tuple(int(n) for n in rng.integers(1, T + 1, size=int(rng.integers(1, 6))))
        drawn.append((lengths, int(rng.integers(1, 5)), np.float64, 1e3))
    cases = []
    for lengths, D, dtype, fill in POOLING_CASES + drawn:
        T, lengths = max(lengths), np.array(lengths, dtype=np.int64)
        H = rng.standard_normal((len(lengths), T, D))
        H[np.arange(T)[None, :] >= lengths[:, None]] = fill  # padding that must not count
        label = f"lengths {tuple(int(n) for n in lengths)}, D = {D}, {np.dtype(dtype).name}"
        cases.append({"label": label, "args": [H.astype(dtype), lengths]})
    return cases


def mean_expected(case):
    return reference_masked_mean(*map(as_tensor, case["args"]))


def max_expected(case):
    return reference_masked_max(*map(as_tensor, case["args"]))


def pooling_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"pooling gave {describe(got)}"
    out, grad = got
    problem = compare_tensor("the pooled states", out, want)
    if problem:
        return problem
    H, lengths = map(as_tensor, case["args"])
    padded = torch.arange(H.shape[1])[None, :] >= lengths[:, None]  # (B, T)
    if not isinstance(grad, torch.Tensor) or grad.shape != H.shape:
        return "no gradient reaches the states through the pooling"
    if grad[padded].abs().sum() > 0:
        return "the padded states get a gradient: mask them before pooling, not after"
    return None


# ----------------------------------------------------------------------------- predict
KEYWORDS = ["great", "GREAT", "Great.", "awful", "Awful!", "film", "a", "plot", "zzz,", "<br />"]


def predict_run(ns, function, case):
    """predict with the reference tokenize and encode swapped in: a bug in the student's own
    costs the points of their tests, not predict's too."""
    with swapped(ns, "tokenize", reference_tokenize), swapped(ns, "encode", reference_encode):
        run = run_prediction(ns[function], case["text"], case["vocab"], case["max_len"])
    return fields_of(run)


def keyword_score(text: str, vocab: dict, max_len: int) -> float:
    """The KeywordModel's logit of "positive" for a text, through the reference pipeline."""
    ids = reference_clip_ids(reference_encode(reference_tokenize(text), vocab), max_len)
    return 2.0 * int((ids == vocab["great"]).sum()) - 2.0 * int((ids == vocab["awful"]).sum())


def predict_cases(rng):
    """Texts of keywords, unknown words and line breaks, some clipped; never a tie."""
    fixed = [("Great. GREAT plot", 50), ("zzz, qqq awful.", 50), ("great " * 6 + "awful " * 9, 7)]
    drawn = []
    while len(drawn) < 6:
        words = rng.choice(KEYWORDS, size=int(rng.integers(1, 30))).tolist()
        text, max_len = " ".join(words), int(rng.choice([2, 5, 9, 100]))
        if keyword_score(text, KEYWORD_VOCAB, max_len) != 0:
            drawn.append((text, max_len))
    return [
        {"label": f"{text[:30]!r}, max_len {max_len}", "text": text, "vocab": KEYWORD_VOCAB,
         "max_len": max_len}
        for text, max_len in fixed + drawn
    ]  # fmt: skip


def predict_expected(case):
    score = keyword_score(case["text"], case["vocab"], case["max_len"])
    label = CLASS_NAMES[int(score > 0)]
    return label, 1 / (1 + math.exp(-abs(score)))


def predict_compare(got, want, case):
    run = record_from(PredictionRun, got)
    if run is None:
        return f"predict's run came back as {describe(got)}"
    about = "tokenize -> encode -> clip(ids, max_len) -> the model"
    return prediction_problem(run, case["text"], *want, about)


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "tokenize": Method("call", tokenize_cases, tokenize_expected, tokenize_compare),
    "build_vocab": Method("call_with_options", vocab_cases, vocab_expected, vocab_compare),
    "encode": Method("call", encode_cases, encode_expected, encode_compare),
    "collate": Method("call", collate_cases, collate_expected, collate_compare),
    "bucket_batches": Method("bucket_runs", bucket_cases, bucket_expected, bucket_compare),
    "masked_mean": Method("pool_and_grad", pooling_cases, mean_expected, pooling_compare),
    "masked_max": Method("pool_and_grad", pooling_cases, max_expected, pooling_compare),
    **MODEL_PROBES,
    "predict": Method("predict_run", predict_cases, predict_expected, predict_compare),
}

# rnncourse's copies of this lesson's answers (given from lesson 07 on): unusable in the runner,
# so that importing them is not an answer (integrity_runner.withhold)
WITHHELD = ("rnncourse.text", "rnncourse.classify")
