"""Integrity probes for lesson 06 (a character-level language model): the same properties as
its tests, checked outside.

``ngram_log_probs`` runs in the sandboxed runner on streams made here (unigrams to 6-grams,
contexts never seen, a stream shorter than the order) and is compared with a counting
reference written here. ``batchify`` and ``stream_windows`` run on streams of distinct ids
and are judged by the lesson's own rules (``batchify_problem``, ``windows_problem``).
``detach_state`` gets states built in the runner, with a graph, from arrays made here; what it
returns comes back with, for each tensor, whether it still had a graph, and is judged by
``detach_problem``. ``sample`` runs the lesson's recording runs (``run_priming`` with a model
sure of every step, ``run_seeding``, ``run_draws`` from fixed logits) on prompts, seeds, logits,
temperatures and top-k values drawn here, judged by the lesson's rules. The model, evaluation
and the training step: ``integrity_lm_model``.
"""

import math
from collections import Counter

import numpy as np
import torch

from rnncourse.checks.lm import (
    SEED_LOGITS,
    DrawCase,
    PrimingCase,
    batchify_problem,
    detach_problem,
    draws_problem,
    priming_problem,
    run_draws,
    run_priming,
    run_seeding,
    seeding_problem,
    windows_problem,
)
from rnncourse.checks.lm.sampling import sum_lm_text
from rnncourse_grader.integrity import Method, as_tensor, compare_tensor, describe, safely
from rnncourse_grader.integrity_lm_model import (  # the recipes the runner looks up here
    MODEL_PROBES,
    evaluation_run,
    lm_run,
    window_run,
)

RECIPES = (lm_run, evaluation_run, window_run)


# ----------------------------------------------------------------------------- n-grams
def reference_ngram_log_probs(train_ids, eval_ids, order: int, k: float, V: int):
    """ln p(c | h) = ln((N(h c) + k) / (N(h) + k V)) for every target of ``eval_ids``,
    counted with Counters of tuples."""
    train, stream = [int(i) for i in train_ids], [int(i) for i in eval_ids]
    grams = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
    contexts = Counter()
    for gram, n in grams.items():
        contexts[gram[:-1]] += n  # N(h): h counted only where a character follows it
    out = [
        math.log((grams[tuple(stream[t - order + 1 : t + 1])] + k)
                 / (contexts[tuple(stream[t - order + 1 : t])] + k * V))
        for t in range(order - 1, len(stream))
    ]  # fmt: skip
    return torch.tensor(out, dtype=torch.float64)  # (N_eval - order + 1,)


NGRAM_SIZES = [  # (V, order, training ids, eval ids)
    (2, 1, 50, 20),  # the unigram model
    (5, 2, 400, 60),
    (3, 6, 800, 100),
    (12, 4, 1500, 200),
    (97, 6, 2000, 150),  # n-grams as numbers in base V pass 2**32 and float32's integers
    (6, 3, 300, 2),  # an eval stream shorter than the order: nothing to score
    (4, 5, 100, 5),  # exactly one target
]


def ngram_cases(rng):
    """Random streams; the last id never occurs in training (unseen contexts), and half of
    each eval stream is copied from the training stream (seen ones)."""
    V = int(rng.integers(2, 21))
    drawn = (V, int(rng.integers(1, 7)), int(rng.integers(20, 1000)), int(rng.integers(0, 80)))
    cases = []
    for V, order, n_train, n_eval in [*NGRAM_SIZES, drawn]:
        k = float(np.exp(rng.uniform(np.log(0.01), np.log(2.0))))
        train = rng.integers(max(V - 1, 1), size=n_train)
        half = min(n_eval // 2, n_train)
        start = int(rng.integers(0, n_train - half + 1))
        copied = train[start : start + half]
        eval_ids = np.concatenate([copied, rng.integers(V, size=n_eval - len(copied))])
        label = f"V = {V}, order {order}, k = {k:.3g}, {n_train} training ids, {n_eval} eval ids"
        args = [train.astype(np.int64), eval_ids.astype(np.int64), order, k, V]
        cases.append({"label": label, "args": args})
    return cases


def ngram_expected(case):
    return reference_ngram_log_probs(*case["args"])


def ngram_compare(got, want, case):
    # the notebook's test compares with rtol 1e-9, atol 1e-12: never stricter here
    return compare_tensor("the log-probabilities", got, want, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- the stream
BATCHIFY_SIZES = [(12, 3), (14, 3), (1, 1), (9, 1), (7, 7), (301, 8), (256, 16)]  # (N, B)


def batchify_cases(rng):
    """N divisible by B and not, B = 1, B = N; distinct ids, so a misplaced one shows."""
    n = int(rng.integers(1, 400))
    cases = []
    for N, B in [*BATCHIFY_SIZES, (n, int(rng.integers(1, n + 1)))]:
        ids = rng.choice(10 * N, size=N, replace=False).astype(np.int64) + 100
        cases.append({"label": f"N = {N}, B = {B}", "args": [ids, B]})
    return cases


@safely
def batchify_compare(got, want, case):
    ids, B = case["args"]
    return batchify_problem(got, as_tensor(ids), B)


WINDOW_SIZES = [(2, 7, 3), (3, 11, 4), (1, 5, 1), (2, 4, 9), (2, 6, 5), (1, 2, 1), (4, 50, 7)]


def windows_cases(rng):
    """(B, L, T): L - 1 a multiple of T and not, T = 1, T >= L, B = 1; distinct ids (the rule
    tells a target from its input by value)."""
    L = int(rng.integers(2, 60))
    drawn = (int(rng.integers(1, 6)), L, int(rng.integers(1, L + 3)))
    cases = []
    for B, L, T in [*WINDOW_SIZES, drawn]:
        rows = rng.permutation(B * L).reshape(B, L).astype(np.int64) + 1000
        cases.append({"label": f"rows {(B, L)}, T = {T}", "rows": rows, "T": T})
    return cases


def windows_listed(ns, function, case):
    """The windows as a list (stream_windows may be a generator), as the rule reads them."""
    got = ns[function](case["rows"], case["T"])
    try:
        return list(got)
    except TypeError:
        return got


@safely
def windows_compare(got, want, case):
    return windows_problem(got, as_tensor(case["rows"]), case["T"])


# ----------------------------------------------------------------------------- detach_state
DETACH_CASES = [  # (structure, num_layers, B, H)
    ("none", 0, 0, 0),
    ("tensor", 1, 1, 3),  # a GRU's or RNN's state
    ("tuple", 2, 4, 3),  # an LSTM's (h, c)
    ("list", 3, 2, 5),  # the same as a list [h, c]
    ("tensor", 3, 2, 2),
]
STRUCTURES = {"tensor": "a tensor", "tuple": "an LSTM tuple (h, c)", "list": "a list [h, c]"}


def detach_cases(rng):
    kind = str(rng.choice(list(STRUCTURES)))
    drawn = (kind, *(int(n) for n in rng.integers(1, [4, 6, 7])))
    cases = []
    for kind, layers, B, H in [*DETACH_CASES, drawn]:
        if kind == "none":
            cases.append({"label": "None (before the first window)", "kind": kind})
            continue
        parts = [rng.standard_normal((layers, B, H)) for _ in range(1 if kind == "tensor" else 2)]
        label = f"{STRUCTURES[kind]}, {layers} layer{'s' * (layers > 1)}, B = {B}, H = {H}"
        cases.append({"label": label, "kind": kind, "parts": parts, "w": rng.standard_normal(H)})
    return cases


def graph_state(case):
    """The case's state as the layers leave it: each tensor on the graph of a weight."""
    if case["kind"] == "none":
        return None
    w = torch.as_tensor(case["w"]).clone().requires_grad_(True)
    parts = [torch.as_tensor(p) * w for p in case["parts"]]  # (layers, B, H) each
    return (
        parts[0]
        if case["kind"] == "tensor"
        else {"tuple": tuple, "list": list}[case["kind"]](parts)
    )


def tensors_in(value, depth: int = 0) -> list:
    """The tensors of a (nested) tuple or list, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list) and depth < 6:
        return [t for v in value for t in tensors_in(v, depth + 1)]
    return []


def detach_run(ns, function, case):
    """[what detach_state returned, whether each of its tensors still has a graph]."""
    got = ns[function](graph_state(case))
    return [got, [bool(t.requires_grad or t.grad_fn is not None) for t in tensors_in(got)]]


def _marked(value, flags: list):
    """The reply's structure again, its tensors requiring grad where the runner saw a graph."""
    if isinstance(value, torch.Tensor):
        graph = flags.pop(0) and value.is_floating_point()
        return value.requires_grad_(True) if graph else value
    if isinstance(value, tuple | list):
        return type(value)(_marked(v, flags) for v in value)
    return value


@safely
def detach_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2 or not isinstance(got[1], list):
        return f"detach_state's run came back as {describe(got)}"
    value, flags = got
    if len(flags) != len(tensors_in(value)) or not all(type(f) is bool for f in flags):
        return "detach_state's run came back garbled"
    return detach_problem(_marked(value, list(flags)), graph_state(case))


# ----------------------------------------------------------------------------- sample
def _spread_logits(rng, V: int, scale: float = 1.0) -> list[float]:
    """V logits at least 0.1 * scale apart: no ties, so top-k and the argmax are well defined."""
    while True:
        logits = rng.standard_normal(V) * 1.2
        if np.diff(np.sort(logits)).min() >= 0.1:
            return [float(v) * scale for v in logits]


def telling_prompt(rng, P: int, num_chars: int, V: int) -> list[int]:
    """P ids drawn from V; when P > 1 and there is text to write, redrawn until the text after
    the whole prompt differs from the text after its last id alone. (A SumLM's text depends on
    the prompt's sum mod V only: a draw whose other ids sum to 0 mod V would let a sampler
    that forgets the prompt pass by the luck of the draw.)"""
    while True:
        prompt = [int(i) for i in rng.integers(V, size=P)]
        if P == 1 or num_chars == 0:
            return prompt
        if sum_lm_text(prompt, num_chars, V) != sum_lm_text(prompt[-1:], num_chars, V):
            return prompt


def priming_cases(rng):
    """Prompts of one id and several, no chars to write, two ids in the vocabulary."""
    cases = []
    for P, n, V in [(1, 15, 0), (6, 12, 0), (3, 0, 0), (int(rng.integers(2, 9)), 20, 2)]:
        V = V or int(rng.integers(3, 16))
        prompt = telling_prompt(rng, P, n, V)
        label = f"priming on {prompt}, num_chars {n}, V = {V}"
        cases.append({"label": label, "kind": "priming", "prompt": prompt, "num_chars": n, "V": V})
    return cases


DRAW_FIELDS = ("logits", "temperature", "top_k", "num_chars", "seed")
DRAW_SPECS = [  # (temperature: "low", "high" are drawn; top_k: "k" is drawn; logits scale)
    (1.0, None, 1.0), ("low", None, 1.0), ("high", None, 1.0), (1.0, "k", 1.0),
    (0.7, 1, 1.0), (1e-4, None, 1.0), (1e-6, "k", 15.0),  # tiny ones: the argmax
]  # fmt: skip


def draw_cases(rng):
    """Temperatures 1, below and above, tiny ones (the argmax) and top-k values incl. 1."""
    cases = []
    for temperature, top_k, scale in DRAW_SPECS:
        V = int(rng.integers(4, 11))
        temperature = {"low": rng.uniform(0.3, 0.8), "high": rng.uniform(1.5, 3.0)}.get(
            temperature, temperature
        )
        top_k = int(rng.integers(2, V)) if top_k == "k" else top_k
        n = 50 if temperature < 1e-2 else 2000
        logits, seed = _spread_logits(rng, V, scale), int(rng.integers(2**31))
        case = DrawCase(logits, float(temperature), top_k, n, seed)
        label = f"{V} fixed logits, {case.label}, {n} draws"
        cases.append({"label": label, "kind": "draws"} | {f: getattr(case, f) for f in DRAW_FIELDS})
    return cases


def seeded_and_primed_cases(rng):
    """Priming on SumLMs, then one seeding case (test_sample_is_seeded_and_primed)."""
    seed, n = int(rng.integers(2**31 - 1)), int(rng.integers(30, 61))
    label = f"generators seeded {seed}, {seed} (another global seed) and {seed + 1}, {n} chars"
    seeding = {"label": label, "kind": "seeding", "seed": seed, "num_chars": n}
    return [*priming_cases(rng), seeding]


def _draw_case(case) -> DrawCase:
    return DrawCase(*(case[f] for f in DRAW_FIELDS))


def _ids(result):
    """A 1-D integer tensor as the list of ints the rules read it as (it can then come back)."""
    if isinstance(result, torch.Tensor) and result.dim() == 1 and not result.is_floating_point():
        return result.tolist()
    return result


def sample_run(ns, function, case):
    sample = ns[function]
    if case["kind"] == "priming":
        return _ids(run_priming(sample, PrimingCase(case["prompt"], case["num_chars"], case["V"])))
    if case["kind"] == "seeding":
        return [_ids(r) for r in run_seeding(sample, case["seed"], case["num_chars"])]
    return _ids(run_draws(sample, _draw_case(case)))


@safely
def sample_compare(got, want, case):
    if case["kind"] == "priming":
        return priming_problem(got, PrimingCase(case["prompt"], case["num_chars"], case["V"]))
    if case["kind"] == "draws":
        return draws_problem(got, _draw_case(case))
    if not isinstance(got, list) or len(got) != 3:
        return f"sample's three seeded runs came back as {describe(got)}"
    problem = seeding_problem(got, case["num_chars"])
    V = len(SEED_LOGITS)
    if problem is None and any(not 0 <= i < V for ids in got for i in ids):
        return f"ids outside 0..{V - 1}"
    return problem


def _none(case):
    return None  # judged by the lesson's rules, not against one value


# answer -> how to probe it (the tests it carries: lesson.toml)
PROBES = {
    "ngram_log_probs": Method("call", ngram_cases, ngram_expected, ngram_compare),
    "batchify": Method("call", batchify_cases, _none, batchify_compare),
    "stream_windows": Method("windows_listed", windows_cases, _none, windows_compare),
    "detach_state": Method("detach_run", detach_cases, _none, detach_compare),
    **MODEL_PROBES,
    # one probe per test cell, each for its own property: a wrong temperature costs that test
    "sample": (
        Method(
            "sample_run",
            seeded_and_primed_cases,
            _none,
            sample_compare,
            ("test_sample_is_seeded_and_primed",),
        ),
        Method(
            "sample_run", draw_cases, _none, sample_compare, ("test_sample_temperature_and_top_k",)
        ),
    ),
}

# rnncourse's copy of this lesson's answers (given from lesson 07 on): unusable in the runner,
# so that importing it is not an answer (integrity_runner.withhold)
WITHHELD = ("rnncourse.lm",)
