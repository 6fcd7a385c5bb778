"""Integrity probes for lesson 07 (pre-training, transfer, fine-tuning): the same properties as
its tests, checked outside.

Every answer is judged here by the lesson's own rules (``rnncourse.checks.finetune``), applied
to runs made in the sandboxed runner on cases drawn here:

- ``no_test_leak``: ``run_leak`` on corpora and test sets made here (leaks at drawn places,
  one repeated, the first and the last text; near-copies in capitals, in lower case, a
  character short, with a space more), judged by ``leak_problem`` against the count and first
  index worked out here;
- ``lm_batches``: documents of distinct ids (empty ones, streams whose length B divides, so
  that the last ``<eos>`` is kept), judged by ``lm_batches_problem``;
- ``transfer_encoder``: ``run_transfer`` on pairs of models of drawn sizes and seeds, one
  probe per test cell (copying; refusing mismatches), the models' tensors before the call
  rebuilt here; copying also carries the outcome tests, which read the transferred model;
- ``freeze_until``, ``param_groups``: ``run_freeze`` for every k and ``run_param_groups`` on
  drawn rates and decays, one to three layers, bidirectional models (a layer's reverse
  direction belongs to the layer's group);
- ``warmup_decay``, ``frozen_groups``: the whole schedule, u = 0 .. total, of drawn lengths;
- ``fine_tune_step``: ``run_fine_tune_step`` with drawn clipping norms and frozen groups, the
  clipped gradient recomputed here by ``fine_tune_step_problem``.

The lesson's runs build their models from fixed seeds (``small_classifier``,
``RecordingClassifier``): freezing, parameter groups and the step vary in sizes, k, rates and
norms here, not in weights.
"""

import dataclasses

import numpy as np
import torch

from rnncourse.checks.finetune import (
    BATCH_CASES,
    FROZEN_CASES,
    MISMATCHED,
    PARAM_CASES,
    WARMUP_CASES,
    FreezeRun,
    LeakCase,
    LeakRun,
    Pair,
    ParamGroupsRun,
    StepRun,
    TransferRun,
    fine_tune_step_problem,
    freeze_problem,
    frozen_problem,
    leak_problem,
    lm_batches_problem,
    param_groups_problem,
    refusal_problem,
    run_fine_tune_step,
    run_freeze,
    run_leak,
    run_param_groups,
    run_transfer,
    transfer_problem,
    warmup_problem,
)
from rnncourse.checks.finetune.transfer import expected_groups, snapshot
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    describe,
    fields_of,
    plain_real,
    record_from,
    safely,
)


def _none(case):
    return None  # judged by the lesson's rules on the recorded run, not against one value


def _is_list_of(value, kinds) -> bool:
    return isinstance(value, list) and all(isinstance(v, kinds) for v in value)


# ----------------------------------------------------------------------------- no_test_leak
WORDS = (
    "the plot film acting was good bad great dull a waste of time and music ending loved hated "
    "it ! ... <br />"
).split()
NEAR_COPIES = [  # a text that is not a test review, though close to one
    str.upper, str.lower, lambda t: t[:-1], lambda t: t + " ", lambda t: " " + t,
    lambda t: t.replace(" ", "  ", 1),
]  # fmt: skip
LEAK_SPECS = [  # (what, clean texts, near-copies, leaks, where they go, test reviews)
    ("a clean corpus with near-copies of test reviews", 20, 10, 0, "anywhere", 30),
    ("a corpus with one test review", 25, 3, 1, "anywhere", 30),
    ("a corpus with one test review twice and another once", 20, 3, 3, "twice", 30),
    ("a corpus whose last text only is a test review", 15, 3, 1, "last", 30),
    ("a corpus that is one test review", 0, 0, 1, "anywhere", 5),
    ("a corpus of test reviews only", 0, 0, 6, "anywhere", 10),
    ("an empty corpus", 0, 0, 0, "anywhere", 10),
    ("a clean corpus and no test reviews", 10, 0, 0, "anywhere", 0),
]


def _review(rng, number: int) -> str:
    """A made-up review, capitalised (so that case matters), unique by its number."""
    text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12))).tolist())
    return f"{text[0].upper()}{text[1:]} (review {number})"


def _leak_corpus(rng, clean, near, leaks, where, tests) -> list[str]:
    """Clean reviews and near-copies of test reviews, shuffled, then the leaks inserted."""
    corpus = [_review(rng, 10_000 + i) for i in range(clean)]
    copied = rng.choice(tests, size=near).tolist() if tests else []
    corpus += [NEAR_COPIES[int(rng.integers(len(NEAR_COPIES)))](t) for t in copied]
    corpus = [corpus[i] for i in rng.permutation(len(corpus))]
    picked = rng.choice(len(tests), size=leaks, replace=leaks > len(tests)).tolist()
    if where == "twice":
        picked[1] = picked[0]
    for i in picked:
        at = len(corpus) if where == "last" else int(rng.integers(len(corpus) + 1))
        corpus.insert(at, tests[i])
    return corpus


def leak_cases(rng):
    """The lesson's kinds of corpora, then a drawn one; the texts drawn here every time."""
    drawn = ("a corpus of drawn texts", int(rng.integers(0, 60)), int(rng.integers(0, 9)),
             int(rng.integers(0, 7)), "anywhere", int(rng.integers(1, 60)))  # fmt: skip
    cases = []
    for what, clean, near, leaks, where, n_tests in [*LEAK_SPECS, drawn]:
        tests = [_review(rng, i) for i in range(n_tests)]
        corpus = _leak_corpus(rng, clean, near, leaks, where, tests)
        texts = f"{len(corpus)} text{'s' * (len(corpus) != 1)}"
        label = f"{what} ({texts}, {n_tests} test review{'s' * (n_tests != 1)})"
        cases.append({"label": label, "what": what, "corpus": corpus, "tests": tests})
    return cases


def leak_expected(case) -> LeakCase:
    """The case with what the guard must say: how many corpus texts are test reviews, the first."""
    test = set(case["tests"])
    leaked = [i for i, text in enumerate(case["corpus"]) if text in test]
    return LeakCase(case["what"], case["corpus"], len(leaked), leaked[0] if leaked else -1)


MESSAGE_PIECE, MESSAGE_PIECES = 200, 250  # the runner cuts a string at 200 characters


def leak_run(ns, function, case):
    """run_leak on the case; the message in pieces, so that all of it comes back."""
    run = run_leak(ns[function], LeakCase(case["what"], case["corpus"]), case["tests"])
    text = str(run.message)[: MESSAGE_PIECE * MESSAGE_PIECES]
    run.message = [text[i : i + MESSAGE_PIECE] for i in range(0, len(text), MESSAGE_PIECE)]
    return fields_of(run)


@safely
def leak_compare(got, want, case):
    run = record_from(LeakRun, got)
    if run is None or not _is_list_of(run.message, str) or not isinstance(run.raised, str | None):
        return f"no_test_leak's run came back as {describe(got)}"
    run.message = "".join(run.message)
    if run.raised is None and run.message:
        return "no_test_leak's run came back garbled (a message, but nothing raised)"
    return leak_problem(run, want)


# ----------------------------------------------------------------------------- lm_batches
MORE_BATCH_CASES = [  # (document lengths, eos_id, B): B divides the stream: the last <eos> stays
    ((3, 1, 2), 4, 3),
    ((2, 0, 4), 1, 3),  # an empty document in the middle
    ((4, 0, 3, 0), 2, 1),  # B = 1, an empty last document
    ((0, 0, 0, 0), 3, 2),  # nothing but <eos>
    ((5,), 0, 3),
]


def batch_cases(rng):
    """The lesson's sizes, streams B divides (where a missing last <eos> shows), then long and
    drawn ones; distinct ids >= 10, so a misplaced id or <eos> (0 .. 9) shows."""
    long = tuple(int(n) for n in rng.integers(0, 30, size=20))
    drawn = tuple(int(n) for n in rng.integers(0, 8, size=int(rng.integers(1, 9))))
    sizes = [*BATCH_CASES, *MORE_BATCH_CASES, (long, 5, int(rng.integers(1, 9)))]
    sizes.append((drawn, int(rng.integers(10)), int(rng.integers(1, sum(drawn) + len(drawn) + 1))))
    cases = []
    for lengths, eos_id, B in sizes:
        ids = (rng.permutation(2 * sum(lengths) + 1)[: sum(lengths)] + 10).astype(np.int64)
        docs = np.split(ids, np.cumsum(lengths)[:-1])
        label = f"documents of lengths {list(lengths)}, <eos> = {eos_id}, B = {B}"
        cases.append({"label": label, "args": [docs, eos_id, B]})
    return cases


@safely
def batch_compare(got, want, case):
    docs, eos_id, B = case["args"]
    if not isinstance(got, torch.Tensor):
        return f"lm_batches returned {describe(got)}; expected a (B, L) int64 tensor"
    return lm_batches_problem(got, as_tensor(docs), eos_id, B)


# ----------------------------------------------------------------------------- transfer_encoder
MATCHING_SIZES = [(11, 6, 2), (7, 3, 1), (5, 2, 3)]  # (vocabulary, width, layers)


def _pair_label(pair: Pair) -> str:
    return f"vocabulary {pair.vocab}, a {pair.layers}-layer LSTM of {pair.embed} units"


def _drawn_pair(rng) -> Pair:
    return Pair(int(rng.integers(3, 21)), int(rng.integers(1, 9)), int(rng.integers(1, 4)))


def _transfer_case(rng, pair: Pair, what: str = "") -> dict:
    seed = int(rng.integers(2**31))
    label = f"{what} (the LM: {_pair_label(pair)})" if what else _pair_label(pair)
    return {"label": f"{label}, seed {seed}", "pair": dataclasses.asdict(pair), "seed": seed,
            "what": what}  # fmt: skip


def copy_cases(rng):
    """Matching encoders of the lesson's sizes, three layers, and two drawn ones."""
    pairs = [Pair(*s) for s in MATCHING_SIZES] + [_drawn_pair(rng), _drawn_pair(rng)]
    return [_transfer_case(rng, pair) for pair in pairs]


def _mismatch(rng, pair: Pair) -> tuple[str, Pair]:
    """One way in which a classifier's encoder differs from the LM's, drawn."""
    d, wider = int(rng.integers(1, 4)), pair.embed + int(rng.integers(1, 4))
    kinds = [
        (f"a classifier with {d} more words in its vocabulary", {"clf_vocab": pair.vocab + d}),
        ("a classifier with one word fewer", {"clf_vocab": pair.vocab - 1}),
        (f"a classifier with LSTMs of {wider} units", {"clf_embed": wider}),
        ("a classifier with one LSTM layer more", {"clf_layers": pair.layers + 1}),
        ("a bidirectional classifier", {"clf_bidirectional": True}),
    ]
    if pair.layers > 1:
        kinds.append(("a classifier with one LSTM layer fewer", {"clf_layers": pair.layers - 1}))
    what, change = kinds[int(rng.integers(len(kinds)))]
    return what, dataclasses.replace(pair, **change)


def refusal_cases(rng):
    """The lesson's mismatches (other seeds), then two drawn ones on drawn LMs."""
    mismatches = list(MISMATCHED.items())
    mismatches += [_mismatch(rng, _drawn_pair(rng)) for _ in range(2)]
    return [_transfer_case(rng, pair, what) for what, pair in mismatches]


def transfer_run(ns, function, case):
    return fields_of(run_transfer(ns[function], Pair(**case["pair"]), case["seed"]))


def _transfer_record(got, case) -> TransferRun | str:
    """The run, or why it cannot be judged: malformed, or the models' tensors before the call
    are not those the grader builds from the case's sizes and seed."""
    run = record_from(TransferRun, got)
    states = ("lm_before", "clf_before", "lm_after", "clf_after")
    if run is None or not all(isinstance(getattr(run, s), dict) for s in states):
        return f"transfer_encoder's run came back as {describe(got)}"
    if not isinstance(run.raised, str | None) or type(run.shares_storage) is not bool:
        return f"transfer_encoder's run came back garbled ({describe(got)})"
    lm, clf = Pair(**case["pair"]).build(case["seed"])
    for name, built in (("lm_before", snapshot(lm)), ("clf_before", snapshot(clf))):
        sent = getattr(run, name)
        if sent.keys() != built.keys() or not all(torch.equal(sent[k], built[k]) for k in built):
            return "the models before the call are not the ones the grader built (garbled run)"
    return run


@safely
def copy_compare(got, want, case):
    run = _transfer_record(got, case)
    return run if isinstance(run, str) else transfer_problem(run)


@safely
def refusal_compare(got, want, case):
    run = _transfer_record(got, case)
    return run if isinstance(run, str) else refusal_problem(run, case["what"])


# ----------------------------------------------------------------------------- freeze_until
FREEZE_MODELS = [(2, False), (1, True), (2, True), (3, False)]  # (layers, bidirectional)


def _model_label(layers: int, bidirectional: bool) -> str:
    return f"a {layers}-layer {'bidirectional ' * bidirectional}LSTM ({layers + 2} groups)"


def freeze_cases(rng):
    """Every k, 0 .. n, on the lesson's model, bidirectional ones, three layers, a drawn one."""
    models = [*FREEZE_MODELS, (int(rng.integers(1, 4)), bool(rng.integers(2)))]
    return [
        {"label": f"freeze_until(model, {k}), {_model_label(layers, bidirectional)}", "k": k,
         "layers": layers, "bidirectional": bidirectional}
        for layers, bidirectional in models
        for k in range(layers + 3)
    ]  # fmt: skip


def freeze_run(ns, function, case):
    run = run_freeze(ns[function], case["k"], case["layers"], case["bidirectional"])
    return fields_of(run)


@safely
def freeze_compare(got, want, case):
    run = record_from(FreezeRun, got)
    sizes = [len(g) for g in expected_groups(case["layers"], case["bidirectional"])]
    grids = [] if run is None else [run.requires_grad, run.grad_is_none, run.moved]
    fits = [
        isinstance(grid, list) and [len(g) if _is_list_of(g, bool) else -1 for g in grid] == sizes
        for grid in grids
    ]
    if run is None or not all(fits):
        return f"freeze_until's run came back as {describe(got)}"
    return freeze_problem(run, case["k"])


# ----------------------------------------------------------------------------- param_groups
MORE_PARAM_CASES = [(1e-2, 2.6, 2, True), (5e-4, 1.0, 1, True), (0.02, 3.3, 3, True)]


def param_cases(rng):
    """The lesson's rates, bidirectional models, then two drawn (log-uniform rates, decays
    from 1 to 4, one to three layers)."""
    drawn = [
        (float(np.exp(rng.uniform(np.log(1e-4), np.log(0.1)))), float(rng.uniform(1.0, 4.0)),
         int(rng.integers(1, 4)), bool(rng.integers(2)))
        for _ in range(2)
    ]  # fmt: skip
    cases = []
    for base_lr, decay, layers, bidirectional in [
        *((lr, d, n, False) for lr, d, n in PARAM_CASES),
        *MORE_PARAM_CASES,
        *drawn,
    ]:
        label = f"base_lr {base_lr:.3g}, decay {decay:.3g}, {_model_label(layers, bidirectional)}"
        cases.append({"label": label, "base_lr": base_lr, "decay": decay, "layers": layers,
                      "bidirectional": bidirectional})  # fmt: skip
    return cases


def param_run(ns, function, case):
    args = (case["base_lr"], case["decay"], case["layers"], case["bidirectional"])
    return fields_of(run_param_groups(ns[function], *args))


def _groups_run_problem(run) -> bool:
    """Whether a reply is not a ParamGroupsRun an honest run sends."""
    if run is None:
        return True
    groups_ok = run.groups is None or (
        isinstance(run.groups, list) and all(_is_list_of(g, int) for g in run.groups)
    )
    texts_ok = isinstance(run.optimizer_error, str) and isinstance(run.shape, str)
    return not (groups_ok and texts_ok and _is_list_of(run.lrs, float | None))


@safely
def param_compare(got, want, case):
    run = record_from(ParamGroupsRun, got)
    if _groups_run_problem(run):
        return f"param_groups's run came back as {describe(got)}"
    args = (case["base_lr"], case["decay"], case["layers"], case["bidirectional"])
    return param_groups_problem(run, *args)


# ----------------------------------------------------------------------------- the schedules
MORE_WARMUP_CASES = [(7, 6), (2, 1), (1000, 100)]  # (total, warmup): a decay of one update


def warmup_cases(rng):
    """The lesson's schedules, decays of one update, a long one, three drawn (u = 0 .. total)."""
    drawn = []
    for _ in range(3):
        total = int(rng.integers(1, 300))
        drawn.append((total, int(rng.integers(0, total))))
    return [
        {"label": f"total = {total}, warmup = {warmup}, u = 0 .. {total}",
         "args": [total, warmup], "updates": total + 1}
        for total, warmup in [*WARMUP_CASES, *MORE_WARMUP_CASES, *drawn]
    ]  # fmt: skip


def frozen_cases(rng):
    """The lesson's schedules, eight groups unfrozen at every update, three drawn."""
    drawn = [(int(rng.integers(1, 9)), int(rng.integers(1, 13))) for _ in range(3)]
    cases = []
    for num_groups, every in [*FROZEN_CASES, (8, 1), *drawn]:
        updates = (num_groups + 1) * every + 2  # past the last unfreezing, as the notebook
        label = f"num_groups = {num_groups}, every = {every}, u = 0 .. {updates - 1}"
        cases.append({"label": label, "args": [num_groups, every], "updates": updates})
    return cases


def schedule_values(ns, function, case):
    """The function at every update u = 0 .. updates - 1, numbers as Python floats."""
    return [plain_real(ns[function](u, *case["args"])) for u in range(case["updates"])]


def _values_problem(name: str, got, case) -> str | None:
    if not isinstance(got, list) or len(got) != case["updates"]:
        return f"{name}'s values came back as {describe(got)}"
    return None


@safely
def warmup_compare(got, want, case):
    return _values_problem("warmup_decay", got, case) or warmup_problem(got, *case["args"])


@safely
def frozen_compare(got, want, case):
    return _values_problem("frozen_groups", got, case) or frozen_problem(got, *case["args"])


# ----------------------------------------------------------------------------- fine_tune_step
# (max_norm, frozen groups): unclipped first, where stale gradients show as themselves
STEP_CASES = [(1e6, 1), (1e-3, 1), (1e6, 0), (1e-2, 2), (0.5, 0)]


def step_cases(rng):
    """Clipping and not, every number of frozen groups of the lesson's 3-group classifier."""
    drawn = [
        (float(rng.choice([np.exp(rng.uniform(np.log(1e-3), np.log(10.0))), 1e6])),
         int(rng.integers(0, 3)))
        for _ in range(2)
    ]  # fmt: skip
    return [
        {"label": f"max_norm {max_norm:.3g}, {frozen} of 3 groups frozen",
         "max_norm": max_norm, "frozen": frozen}
        for max_norm, frozen in [*STEP_CASES, *drawn]
    ]  # fmt: skip


def step_run(ns, function, case):
    run = run_fine_tune_step(ns[function], case["max_norm"], case["frozen"])
    run.loss = plain_real(run.loss)
    return fields_of(run)


@safely
def step_compare(got, want, case):
    run = record_from(StepRun, got)
    lists = [] if run is None else [run.params, run.grads, run.scheduler_after, run.modes]
    if run is None or not all(isinstance(v, list) for v in lists):
        return f"fine_tune_step's run came back as {describe(got)}"
    if not all(_is_list_of(p, torch.Tensor) for p in run.params):
        return "fine_tune_step's run came back garbled (the parameters are not tensors)"
    return fine_tune_step_problem(run, case["max_norm"], case["frozen"])


# answer -> how to probe it (the tests it carries: lesson.toml)
PROBES = {
    "no_test_leak": Method("leak_run", leak_cases, leak_expected, leak_compare),
    "lm_batches": Method("call", batch_cases, _none, batch_compare),
    # one probe per test cell; copying also carries the outcome tests, which read its result
    "transfer_encoder": (
        Method(
            "transfer_run",
            copy_cases,
            _none,
            copy_compare,
            (
                "test_transfer_encoder_copies_exactly",
                "test_finetuned_model_keeps_the_pretrained_encoder",
                "test_finetuned_checkpoint_reaches_85_percent",
            ),
        ),
        Method(
            "transfer_run",
            refusal_cases,
            _none,
            refusal_compare,
            ("test_transfer_encoder_refuses_mismatches",),
        ),
    ),
    "freeze_until": Method("freeze_run", freeze_cases, _none, freeze_compare),
    "param_groups": Method("param_run", param_cases, _none, param_compare),
    "warmup_decay": Method("schedule_values", warmup_cases, _none, warmup_compare),
    "frozen_groups": Method("schedule_values", frozen_cases, _none, frozen_compare),
    "fine_tune_step": Method("step_run", step_cases, _none, step_compare),
}
