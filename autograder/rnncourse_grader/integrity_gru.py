"""Integrity probes for lesson 04 (GRU): the same properties as its tests, checked outside.

The student's functions run in the sandboxed runner on inputs made here; the expected values
come from ``nn.GRU`` in the grader. ``gru_convention`` takes a cell: its recipe builds the
grader's set of cells in the runner (``graders_cells``) and sends the answers back,
which are compared here with the labels of the same cells built here. The memory task (a
training outcome) has no probe: its test stands on the in-kernel check.
"""

import math

import numpy as np
import torch
from torch import nn

from rnncourse.checks.gru import (
    black_box,
    cho_gru_cell,
    convention_cells,
    pinned,
    reference_gru_cell,
    reference_gru_forward,
    reversed_update,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    case_sizes,
    compare_tensor,
    describe,
    gated_params,
    sizes,
)

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _params(rng, D, H, dtype=np.float64):
    return gated_params(rng, "gru", D, H, dtype)


# ----------------------------------------------------------------------------- student side


def graders_cells():
    """The lesson's cells and three more that are neither convention: (answer, what, cell)."""
    return convention_cells() + [
        (
            "neither",
            "a GRU with the interpolation reversed, z * n + (1 - z) * h_prev",
            black_box(lambda x, h, p: reference_gru_cell(x, h, reversed_update(p))),
        ),
        (
            "neither",
            "a GRU without a reset gate (r = 1 always)",
            black_box(lambda x, h, p: reference_gru_cell(x, h, pinned(p, r=1))),
        ),
        (
            "neither",
            "Cho et al.'s GRU with the interpolation reversed",
            black_box(lambda x, h, p: cho_gru_cell(x, h, reversed_update(p))),
        ),
    ]


def classify(ns, function, case):
    """The student's answer for each of the grader's cells, built in the runner."""
    return [ns[function](cell) for _, _, cell in graders_cells()]


# ----------------------------------------------------------------------------- cell and layer
F32 = np.float32
# The grader's cases: sizes that catch known bugs (B = 1, T = 1, D != H both ways, D = H = 1,
# float32, no initial state), then random ones. A failure's message names the case.
CELL_SIZES = [
    {"B": 1, "D": 7, "H": 2},
    {"B": 9, "D": 2, "H": 6},
    {"B": 5, "D": 4, "H": 4, "dtype": F32},
    {"B": 3, "D": 1, "H": 1},
]
FORWARD_SIZES = [
    {"B": 2, "T": 1, "D": 3, "H": 4},
    {"B": 1, "T": 9, "D": 6, "H": 2},
    {"B": 4, "T": 5, "D": 3, "H": 3, "dtype": F32},
    {"B": 3, "T": 4, "D": 2, "H": 5, "zero_state": True},
]


def cell_cases(rng):
    cases = []
    for s in case_sizes(rng, CELL_SIZES):
        B, D, H, dt = s["B"], s["D"], s["H"], s["dtype"]
        x = rng.standard_normal((B, D)).astype(dt)
        h = np.tanh(rng.standard_normal((B, H))).astype(dt)
        cases.append({"label": s["label"], "args": [x, h, _params(rng, D, H, dt)]})
    return cases


def cell_expected(case):
    return reference_gru_cell(*as_tensor(case["args"]))


def cell_compare(got, want, case):
    return compare_tensor("h_t", got, want)


def forward_cases(rng):
    cases = []
    for s in case_sizes(rng, FORWARD_SIZES):
        B, T, D, H, dt = s["B"], s["T"], s["D"], s["H"], s["dtype"]
        h0 = None if s["zero_state"] else np.tanh(rng.standard_normal((B, H))).astype(dt)
        X = rng.standard_normal((B, T, D)).astype(dt)
        cases.append({"label": s["label"], "args": [X, h0, _params(rng, D, H, dt)]})
    return cases


def forward_expected(case):
    return reference_gru_forward(*as_tensor(case["args"]))


def forward_compare(got, want, case):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"gru_forward returned {describe(got)}; expected a pair (H_all, h_T)"
    return compare_tensor("H_all", got[0], want[0]) or compare_tensor("h_T", got[1], want[1])


# ----------------------------------------------------------------------------- gru_convention
def convention_cases(rng):
    return [{}]  # the cells are the lesson's, built where they are used


def convention_expected(case):
    return [label for label, _, _ in graders_cells()]


def convention_compare(got, want, case):
    if not isinstance(got, list) or len(got) != len(want):
        return f"gru_convention gave {describe(got)}"
    for (label, description, _), answer in zip(graders_cells(), got, strict=True):
        if answer != label:
            return f"gru_convention said {answer!r} for {description}; expected {label!r}"
    return None


# ----------------------------------------------------------------------------- counting
def count_cases(rng):
    """The lesson's sizes and depths (D = H = 1, deep GRUs, wide LSTMs), then random ones."""
    fixed = [("gru", 1, 1, 1), ("lstm", 300, 64, 1), ("gru", 50, 128, 3), ("rnn", 2, 9, 4)]
    fixed.append(("lstm", 8, 8, 2))
    kinds = list(MODULES)
    drawn = [
        (kinds[int(rng.integers(3))], *sizes(rng, 2, high=40), int(rng.integers(1, 4)))
        for _ in range(3)
    ]
    return [{"args": list(args)} for args in fixed + drawn]


def count_expected(case):
    kind, D, H, L = case["args"]
    return sum(p.numel() for p in MODULES[kind](D, H, num_layers=L).parameters())


def count_compare(got, want, case):
    if type(got) is not int:
        return f"recurrent_num_params returned {describe(got)}; expected an int"
    return (
        None
        if got == want
        else f"recurrent_num_params{tuple(case['args'])} = {got}; expected {want}"
    )


def baseline_cases(rng):
    return [{"args": []}]


def baseline_expected(case):
    return 2 / 12  # Var(u1 + u2) for two independent uniforms on [0, 1)


def baseline_compare(got, want, case):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, int | float) or isinstance(got, bool):
        return f"adding_baseline_mse returned {describe(got)}; expected a number"
    # the test allows 2 % around its simulation, whose own error is about 0.3 %: never stricter
    return None if math.isclose(got, want, rel_tol=0.025) else f"adding_baseline_mse() = {got:.4g}"


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "gru_cell_forward": Method("call", cell_cases, cell_expected, cell_compare),
    "gru_forward": Method("call", forward_cases, forward_expected, forward_compare),
    "gru_convention": Method("classify", convention_cases, convention_expected, convention_compare),
    "recurrent_num_params": Method("call", count_cases, count_expected, count_compare),
    "adding_baseline_mse": Method("call", baseline_cases, baseline_expected, baseline_compare),
}
