"""Integrity probes for lesson 06's model, its evaluation and its training step.

``CharLM`` is built in the sandboxed runner from a configuration made here (RNN, GRU and LSTM,
one to three layers, tied and untied), loaded by parameter name with weights made here, and
run on inputs made here with and without an initial state, whole and in two calls
(``lm_outputs``); the grader judges the logits and states with the lesson's own rule
(``char_lm_problem``), which recomputes them with PyTorch's layers. ``evaluate_lm`` and
``train_window`` run on the lesson's recording probe objects (``run_evaluation`` with a
``CountingLM``, ``run_window`` with a ``TinyLM`` and a recording optimizer) on rows, seeds and
states drawn here; what they recorded comes back as plain data and is judged by the rules the
notebook's tests use (``evaluation_problem``, ``window_problem``), the gradients and losses
recomputed here. ``train_window`` runs with the reference ``detach_state`` swapped in, so that
a bug in the student's own costs only its own test.
"""

import dataclasses

import numpy as np
import torch

from rnncourse.checks import call_student
from rnncourse.checks.lm import (
    EvaluationRun,
    LMConfig,
    TinyLM,
    WindowRun,
    build_student_lm,
    char_lm_problem,
    evaluation_problem,
    expected_parameter_names,
    lm_outputs,
    random_weights,
    run_evaluation,
    run_window,
    window_problem,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    describe,
    fields_of,
    plain_real,
    record_from,
    safely,
    swapped,
)


# ----------------------------------------------------------------------------- shared
def reference_detach_state(state):
    """None, a tensor, or a tuple or list of tensors, cut from the graph."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(reference_detach_state(s) for s in state)


def tensors_of(value) -> list:
    """The tensors of a value, of a tuple or of a list (a state)."""
    if isinstance(value, torch.Tensor):
        return [value]
    return (
        [v for v in value if isinstance(v, torch.Tensor)] if isinstance(value, tuple | list) else []
    )


def _none(case):
    return None  # judged by the lesson's rules on the recorded run, not against one value


# ----------------------------------------------------------------------------- CharLM
LM_CASES = [  # (config, B, T, cut, with an initial state): cut splits the text in two calls
    (LMConfig(7, 4, 5, 1, "rnn"), 3, 5, 2, False),
    (LMConfig(9, 3, 6, 2, "gru"), 1, 4, 1, True),  # B = 1
    (LMConfig(6, 5, 4, 3, "lstm"), 2, 2, 1, True),  # calls of T = 1
    (LMConfig(10, 6, 6, 1, "lstm", True), 1, 3, 2, True),
    (LMConfig(8, 4, 4, 2, "gru", True), 2, 5, 3, False),
    (LMConfig(5, 3, 3, 3, "rnn", True), 3, 4, 1, True),
    (LMConfig(12, 4, 7, 2, "lstm"), 2, 6, 4, False),
]


def _lm_label(c: LMConfig, B: int, T: int, cut: int, with_state: bool) -> str:
    layers = f"{c.num_layers} layer{'s' * (c.num_layers > 1)}"
    return (
        f"{c.cell}, {layers}, V = {c.vocab_size}, e = {c.embed_size}, h = {c.num_hiddens}, "
        f"{'tied' if c.tie_weights else 'untied'}, B = {B}, T = {T} read whole and as "
        f"{cut} + {T - cut}, {'an initial state' if with_state else 'no initial state'}"
    )


def _drawn_lm_case(rng) -> tuple:
    cell, tie = str(rng.choice(["rnn", "gru", "lstm"])), bool(rng.integers(2))
    e = int(rng.integers(1, 7))
    h = e if tie else int(rng.integers(1, 7))
    config = LMConfig(int(rng.integers(3, 13)), e, h, int(rng.integers(1, 4)), cell, tie)
    T = int(rng.integers(2, 7))
    return config, int(rng.integers(1, 5)), T, int(rng.integers(1, T)), bool(rng.integers(2))


def lm_cases(rng):
    cases = []
    for config, B, T, cut, with_state in [*LM_CASES, _drawn_lm_case(rng)]:
        shape = (config.num_layers, B, config.num_hiddens)
        state = rng.standard_normal(shape) if with_state else None
        if with_state and config.cell == "lstm":
            state = [state, rng.standard_normal(shape)]
        with torch.random.fork_rng():  # the layers it builds leave the grader's generator alone
            weights = random_weights(config, seed=int(rng.integers(2**31)))
        cases.append({
            "label": _lm_label(config, B, T, cut, with_state),
            "kind": "forward",
            "config": dataclasses.asdict(config),
            "weights": {k: v.numpy() for k, v in weights.items()},
            "X": rng.integers(config.vocab_size, size=(B, T)).astype(np.int64),
            "state": state,
            "cut": cut,
        })  # fmt: skip
    untieable = LMConfig(int(rng.integers(3, 13)), 4, int(rng.integers(5, 9)), 1, "lstm", True)
    label = f"tie_weights=True with e = 4 != h = {untieable.num_hiddens}"
    cases.append({"label": label, "kind": "untieable", "config": dataclasses.asdict(untieable)})
    return cases


def _as_state(state):
    """A case's state as the layers take it: None, a tensor, or an LSTM's (h, c) tuple."""
    return tuple(state) if isinstance(state, list | tuple) else state


def lm_run(ns, function, case):
    """The student's CharLM with the grader's weights: [its parameter names, whether fc.weight is
    embedding.weight, lm_outputs]; for an untieable configuration, the error it raises."""
    CharLM, config = ns[function], LMConfig(**case["config"])
    if case["kind"] == "untieable":
        try:
            CharLM(**dataclasses.asdict(config))
        except ValueError:
            return "ValueError"
        except Exception as err:
            return type(err).__name__
        return "no error"
    model = build_student_lm(CharLM, config, case["weights"])
    names = sorted(n for n, _ in model.named_parameters(remove_duplicate=False))
    tied = model.fc.weight is model.embedding.weight
    with torch.no_grad():
        outputs = call_student(
            lm_outputs, model, case["X"], _as_state(case["state"]), case["cut"], name="CharLM"
        )
    return [names, tied, list(outputs) if isinstance(outputs, tuple | list) else outputs]


@safely
def lm_compare(got, want, case):
    config = LMConfig(**case["config"])
    if case["kind"] == "untieable":
        if got == "ValueError":
            return None
        return (
            f"CharLM(..., tie_weights=True) with embed_size != num_hiddens gave {got!r}; "
            "expected a ValueError"
        )
    if not isinstance(got, list) or len(got) != 3 or not isinstance(got[0], list):
        return f"CharLM's run came back as {describe(got)}"
    names, tied, outputs = got
    if not all(isinstance(n, str) for n in names):
        return f"CharLM's parameter names came back as {describe(names)}"
    shared = {"fc.weight"} if config.tie_weights and tied is True else set()
    found, layout = set(names) - shared, expected_parameter_names(config)  # tied: counted once
    if found != layout:
        missing, extra = sorted(layout - found)[:3], sorted(found - layout)[:3]
        return (
            f"the parameters do not follow the lesson's layout (embedding, rnn, fc): "
            f"missing {missing}, unexpected {extra}"
        )
    if config.tie_weights and tied is not True:
        return "with tie_weights=True, fc.weight must be embedding.weight itself"
    if not isinstance(outputs, list) or len(outputs) != 3:
        return f"lm_outputs came back as {describe(outputs)}"
    for name, value in zip(("the logits", "the state", "the carried logits"), outputs, strict=True):
        wrong = [t.dtype for t in tensors_of(value) if t.dtype != torch.float64]
        if wrong:  # the rule's allclose would refuse to compare them
            return f"{name} came back as {wrong[0]}; expected float64 like the model's weights"
    weights, X = as_tensor(case["weights"]), as_tensor(case["X"])
    state = _as_state(as_tensor(case["state"]))
    return char_lm_problem(tuple(outputs), config, weights, X, state, case["cut"])


# ----------------------------------------------------------------------------- evaluate_lm
EVALUATION_SIZES = [(3, 23, 5), (1, 10, 3), (4, 9, 8), (2, 12, 1), (2, 6, 11)]  # (B, L, T)


def evaluation_cases(rng):
    """Short last windows, B = 1, T = 1, one window longer than the rows."""
    L = int(rng.integers(2, 40))
    drawn = (int(rng.integers(1, 6)), L, int(rng.integers(1, L + 1)))
    cases = []
    for B, L, T in [*EVALUATION_SIZES, drawn]:
        V = int(rng.integers(3, 13))
        rows = rng.integers(V, size=(B, L)).astype(np.int64)
        label = f"rows {(B, L)} in windows of T = {T}, V = {V}"
        cases.append({"label": label, "rows": rows, "T": T, "V": V})
    return cases


def evaluation_run(ns, function, case):
    run = run_evaluation(ns[function], case["rows"], case["T"], case["V"])
    if isinstance(run.result, tuple | list):
        run.result = [plain_real(v) for v in run.result]
    return fields_of(run)


@safely
def evaluation_compare(got, want, case):
    run = record_from(EvaluationRun, got)
    if run is None or not isinstance(run.modes, list) or not isinstance(run.grad_modes, list):
        return f"evaluate_lm's run came back as {describe(got)}"
    return evaluation_problem(run, as_tensor(case["rows"]), case["V"])


# ----------------------------------------------------------------------------- train_window
WINDOW_CASES = [  # (B, T, V, hidden, max_norm, with a carried state)
    (3, 5, 6, 4, 0.05, True),  # clips
    (2, 4, 7, 3, 1e6, True),  # never clips
    (1, 1, 5, 4, 0.3, False),  # B = 1, T = 1, no state
    (4, 6, 6, 5, 1.0, True),
    (2, 3, 4, 2, 1e6, False),
]


def window_cases(rng):
    drawn = tuple(int(n) for n in rng.integers(1, 7, size=2)) + (int(rng.integers(2, 9)),)
    drawn += (int(rng.integers(1, 6)), float(rng.choice([0.02, 0.5, 1e6])), bool(rng.integers(2)))
    cases = []
    for B, T, V, H, max_norm, with_state in [*WINDOW_CASES, drawn]:
        state = rng.standard_normal((1, B, H)) if with_state else None
        cases.append({
            "label": f"B = {B}, T = {T}, V = {V}, hidden {H}, max_norm {max_norm:g}, "
            + ("a carried state" if with_state else "no state"),
            "X": rng.integers(V, size=(B, T)).astype(np.int64),
            "Y": rng.integers(V, size=(B, T)).astype(np.int64),
            "state": state, "V": V, "H": H, "max_norm": max_norm,
            "seed": int(rng.integers(2**31)),
        })  # fmt: skip
    return cases


def window_run(ns, function, case):
    """One train_window call on a TinyLM, with the reference detach_state swapped in."""
    model = TinyLM(case["V"], case["H"], seed=case["seed"])
    with swapped(ns, "detach_state", reference_detach_state):
        run = run_window(ns[function], model, case["X"], case["Y"], case["state"], case["max_norm"])
    run.loss = plain_real(run.loss)
    return fields_of(run)


def _steps_problem(run: WindowRun, model) -> str | None:
    """The recorded parameters and gradients are the probe model's, or the reply is garbled."""
    shapes = [tuple(p.shape) for p in model.parameters()]

    def fits(step, missing_ok: bool) -> bool:
        return (
            isinstance(step, list)
            and len(step) == len(shapes)
            and all(
                (v is None and missing_ok)
                or (isinstance(v, torch.Tensor) and tuple(v.shape) == shape)
                for v, shape in zip(step, shapes, strict=True)
            )
        )

    if not all(fits(s, False) for s in run.params) or not all(fits(s, True) for s in run.grads):
        return "the optimizer's parameters are not the model's (were they replaced?)"
    return None


@safely
def window_compare(got, want, case):
    run = record_from(WindowRun, got)
    if run is None or not isinstance(run.params, list) or not isinstance(run.grads, list):
        return f"train_window's run came back as {describe(got)}"
    model = TinyLM(case["V"], case["H"], seed=case["seed"])
    problem = _steps_problem(run, model)
    if problem:
        return problem
    X, Y, state = as_tensor(case["X"]), as_tensor(case["Y"]), as_tensor(case["state"])
    return window_problem(run, model, X, Y, state, case["max_norm"])


MODEL_PROBES = {
    "CharLM": Method("lm_run", lm_cases, _none, lm_compare),
    "evaluate_lm": Method("evaluation_run", evaluation_cases, _none, evaluation_compare),
    "train_window": Method("window_run", window_cases, _none, window_compare),
}
