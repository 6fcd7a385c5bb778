"""Integrity probes for lesson 03 (LSTM): the same properties as its tests, checked outside.

The student's functions run in the sandboxed runner on inputs made here; the expected values
come from ``nn.LSTM`` and autograd in the grader. ``init_forget_bias`` changes a module in
place, so its recipe builds the ``nn.LSTM`` in the runner and sends its biases back;
``state_gradient_norms`` takes a step function, so its recipe builds one from an
``nn.LSTMCell`` or an ``nn.GRUCell`` there. The recall model (a training outcome) has no
probe: its test stands on the in-kernel check.
"""

import numpy as np
import torch
from torch import nn

from rnncourse.checks.lstm import (
    PARAM_NAMES,
    reference_deep_lstm,
    reference_lstm_cell,
    reference_lstm_forward,
    reference_lstm_gates,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    case_sizes,
    compare_all,
    compare_tensor,
    describe,
    gated_params,
    sizes,
)


def _cell_params(rng, D, H, dtype=np.float64):
    return gated_params(rng, "lstm", D, H, dtype)


def _state(rng, shape, dtype=np.float64):
    return [
        np.tanh(rng.standard_normal(shape)).astype(dtype),
        rng.standard_normal(shape).astype(dtype),
    ]


def _outputs_and_state(function, got, want):
    if not isinstance(got, tuple | list) or len(got) != 2 or not isinstance(got[1], tuple | list):
        return f"{function} returned {describe(got)}; expected (outputs, (h, c))"
    return compare_all(function, ("outputs", "h", "c"), [got[0], *got[1]], [want[0], *want[1]])


# ----------------------------------------------------------------------------- student side


def set_biases(ns, function, case):
    """An nn.LSTM with the case's parameters, changed by the student's function: its biases."""
    lstm = nn.LSTM(case["D"], case["H"], num_layers=case["L"], bidirectional=True).double()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(case["params"][name])
    ns[function](lstm, case["value"])
    return {name: p.detach() for name, p in lstm.named_parameters()}


def recurrence(case):
    """The case's step function: an nn.LSTMCell (state (h, c)) or an nn.GRUCell (state (h,)),
    with the case's parameters and dtype. Built in the runner and, for the reference, here."""
    cls = nn.LSTMCell if case["cell"] == "lstm" else nn.GRUCell
    cell = cls(case["H"], case["H"]).to(case["X"].dtype)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(case["params"][name])
    if case["cell"] == "lstm":
        return lambda x_t, state: cell(x_t, state)
    return lambda x_t, state: (cell(x_t, state[0]),)


def cell_step(ns, function, case):
    """The student's norms for a recurrence built here from one of PyTorch's cells, and
    whether the call left X requiring gradients (the docstring says: X is left as it was)."""
    norms = ns[function](recurrence(case), case["X"], tuple(case["state0"]))
    return [norms, bool(case["X"].requires_grad)]


# ----------------------------------------------------------------------------- lstm_gates / cell
F32 = np.float32
# The grader's cases: sizes that catch known bugs (B = 1, T = 1, D != H both ways, float32,
# no initial state), then random ones. A failure's message names the case.
GATES_SIZES = [
    {"B": 1, "D": 7, "H": 2},
    {"B": 6, "D": 2, "H": 9},
    {"B": 5, "D": 4, "H": 4, "dtype": F32},
]
CELL_SIZES = [
    {"B": 1, "D": 6, "H": 3},
    {"B": 7, "D": 2, "H": 8},
    {"B": 4, "D": 5, "H": 5, "dtype": F32},
]
FORWARD_SIZES = [
    {"B": 2, "T": 1, "D": 3, "H": 4},
    {"B": 1, "T": 9, "D": 6, "H": 2},
    {"B": 4, "T": 5, "D": 3, "H": 3, "dtype": F32},
    {"B": 3, "T": 4, "D": 2, "H": 5, "zero_state": True},
]
BIDIRECTIONAL_SIZES = [
    {"B": 2, "T": 1, "D": 3, "H": 4},
    {"B": 1, "T": 7, "D": 5, "H": 2},
    {"B": 3, "T": 4, "D": 2, "H": 3, "dtype": F32},
    {"B": 2, "T": 6, "D": 4, "H": 5, "zero_state": True},
]
STACKED_SIZES = [  # L layers, dirs = 2: bidirectional
    {"L": 3, "dirs": 2, "B": 2, "T": 4, "D": 5, "H": 3},
    {"L": 1, "dirs": 1, "B": 1, "T": 1, "D": 2, "H": 4},
    {"L": 2, "dirs": 2, "B": 1, "T": 1, "D": 3, "H": 2},
    {"L": 3, "dirs": 1, "B": 3, "T": 3, "D": 4, "H": 4, "dtype": F32, "zero_state": True},
    {"L": 2, "dirs": 1, "B": 2, "T": 5, "D": 2, "H": 3, "zero_state": True},
]


def gates_cases(rng):
    cases = []
    for s in case_sizes(rng, GATES_SIZES):
        B, D, H, dt = s["B"], s["D"], s["H"], s["dtype"]
        x = rng.standard_normal((B, D)).astype(dt)
        h = np.tanh(rng.standard_normal((B, H))).astype(dt)
        cases.append({"label": s["label"], "args": [x, h, _cell_params(rng, D, H, dt)]})
    return cases


def gates_expected(case):
    return reference_lstm_gates(*as_tensor(case["args"]))


def gates_compare(got, want, case):
    return compare_all("lstm_gates", ("i", "f", "g", "o"), got, want)


def cell_cases(rng):
    cases = []
    for s in case_sizes(rng, CELL_SIZES):
        B, D, H, dt = s["B"], s["D"], s["H"], s["dtype"]
        x = rng.standard_normal((B, D)).astype(dt)
        args = [x, _state(rng, (B, H), dt), _cell_params(rng, D, H, dt)]
        cases.append({"label": s["label"], "args": args})
    return cases


def cell_expected(case):
    x, state, params = as_tensor(case["args"])
    return reference_lstm_cell(x, tuple(state), params)


def cell_compare(got, want, case):
    return compare_all("lstm_cell_forward", ("h_t", "c_t"), got, want)


# ----------------------------------------------------------------------------- layers
def forward_cases(rng):
    cases = []
    for s in case_sizes(rng, FORWARD_SIZES):
        B, T, D, H, dt = s["B"], s["T"], s["D"], s["H"], s["dtype"]
        X = rng.standard_normal((B, T, D)).astype(dt)
        state0 = None if s["zero_state"] else _state(rng, (B, H), dt)
        cases.append({"label": s["label"], "args": [X, state0, _cell_params(rng, D, H, dt)]})
    return cases


def forward_expected(case):
    X, state0, params = as_tensor(case["args"])
    return reference_lstm_forward(X, None if state0 is None else tuple(state0), params)


def forward_compare(got, want, case):
    return _outputs_and_state("lstm_forward", got, want)


def _suffixed(params_by_direction):
    """nn.LSTM's names from one dict per (layer, direction): weight_ih_l0, ..._l0_reverse."""
    return {
        f"{name}_l{layer}{'_reverse' if reverse else ''}": p[name]
        for (layer, reverse), p in params_by_direction.items()
        for name in PARAM_NAMES
    }


def bidirectional_cases(rng):
    cases = []
    for s in case_sizes(rng, BIDIRECTIONAL_SIZES):
        B, T, D, H, dt = s["B"], s["T"], s["D"], s["H"], s["dtype"]
        fwd, bwd = _cell_params(rng, D, H, dt), _cell_params(rng, D, H, dt)
        state0 = None if s["zero_state"] else _state(rng, (2, B, H), dt)
        X = rng.standard_normal((B, T, D)).astype(dt)
        cases.append({"label": s["label"], "args": [X, state0, fwd, bwd]})
    return cases


def bidirectional_expected(case):
    X, state0, fwd, bwd = as_tensor(case["args"])
    params = _suffixed({(0, False): fwd, (0, True): bwd})
    state = None if state0 is None else tuple(state0)
    return reference_deep_lstm(X, state, params, num_layers=1, bidirectional=True)


def bidirectional_compare(got, want, case):
    return _outputs_and_state("lstm_bidirectional_forward", got, want)


def stacked_cases(rng):
    cases = []
    for s in case_sizes(rng, STACKED_SIZES, drawn=0):
        L, dirs, B, T, D, H, dt = (s[k] for k in ("L", "dirs", "B", "T", "D", "H", "dtype"))
        per = {}
        for layer in range(L):
            for reverse in (False, True)[:dirs]:
                per[(layer, reverse)] = _cell_params(rng, D if layer == 0 else dirs * H, H, dt)
        state0 = None if s["zero_state"] else _state(rng, (L * dirs, B, H), dt)
        X = rng.standard_normal((B, T, D)).astype(dt)
        cases.append({"label": s["label"], "args": [X, state0, _suffixed(per), L, dirs == 2]})
    return cases


def stacked_expected(case):
    X, state0, params, num_layers, bidirectional = case["args"]
    X, state0, params = as_tensor([X, state0, params])
    state = None if state0 is None else tuple(state0)
    return reference_deep_lstm(X, state, params, num_layers=num_layers, bidirectional=bidirectional)


def stacked_compare(got, want, case):
    return _outputs_and_state("lstm_stacked_forward", got, want)


# ----------------------------------------------------------------------------- init_forget_bias
def forget_cases(rng):
    cases = []
    for L, value in ((2, 1.0), (1, 2.5), (3, 2.5)):
        D, H = sizes(rng, 2)
        lstm = nn.LSTM(D, H, num_layers=L, bidirectional=True).double()
        params = {name: rng.standard_normal(tuple(p.shape)) for name, p in lstm.named_parameters()}
        label = f"{L} bidirectional layers, D = {D}, H = {H}, value = {value}"
        cases.append({"label": label, "D": D, "H": H, "L": L, "value": value, "params": params})
    return cases


def forget_expected(case):
    return {
        name: as_tensor(p) for name, p in case["params"].items()
    }  # before; compare checks the rest


def forget_compare(got, want, case):
    if not isinstance(got, dict) or set(got) != set(want):
        return f"init_forget_bias left the module with {describe(got)}"
    H, f = case["H"], slice(case["H"], 2 * case["H"])
    for name, before in want.items():
        after = got[name]
        if name.startswith("weight") and compare_tensor(name, after, before):
            return f"init_forget_bias changed {name}: only biases should change"
        if name.startswith("bias"):
            others = torch.ones(4 * H, dtype=torch.bool)
            others[f] = False
            if compare_tensor(name, after[others], before[others]):
                return f"init_forget_bias changed a gate other than the forget gate in {name}"
        if name.startswith("bias_ih"):
            total = after[f] + got[name.replace("bias_ih", "bias_hh")][f]
            if compare_tensor(
                f"the forget-gate bias of {name[8:]}", total, torch.full_like(total, case["value"])
            ):
                return f"in {name[8:]}, bias_ih + bias_hh of the forget gate is not {case['value']}"
    return None


# ----------------------------------------------------------------------------- state_gradient_norms
NORMS_SIZES = [  # an LSTM cell's state is (h, c), a GRU cell's (h,)
    {"B": 1, "T": 1, "H": 3, "cell": "lstm"},
    {"B": 5, "T": 20, "H": 2, "cell": "gru"},
    {"B": 2, "T": 9, "H": 6, "cell": "lstm", "dtype": F32},
]


def norms_cases(rng):
    cases = []
    for s in case_sizes(rng, NORMS_SIZES):
        B, T, H, dt = s["B"], s["T"], s["H"], s["dtype"]
        cell = s.get("cell", "lstm")  # the drawn case: an LSTM cell
        params = gated_params(rng, cell, H, H, dt)
        h0 = np.tanh(rng.standard_normal((B, H))).astype(dt)
        state0 = [h0] if cell == "gru" else [h0, rng.standard_normal((B, H)).astype(dt)]
        X = rng.standard_normal((B, T, H)).astype(dt)
        cases.append(
            {"label": s["label"], "cell": cell, "H": H, "params": params, "X": X, "state0": state0}
        )
    return cases


def norms_expected(case):
    case = case | as_tensor({k: case[k] for k in ("params", "X", "state0")})
    step, state = recurrence(case), tuple(case["state0"])
    hs = []
    for t in range(case["X"].shape[1]):
        state = step(case["X"][:, t], state)
        hs.append(state[0])
    grads = torch.autograd.grad(hs[-1].sum(), hs)
    return torch.stack([g.norm() for g in grads]).detach()


def norms_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"state_gradient_norms gave {describe(got)}"
    norms, x_requires_grad = got
    if x_requires_grad is not False:
        return "state_gradient_norms changed X: the caller's X now requires gradients"
    tol = (1e-8, 1e-12) if want.dtype == torch.float64 else (1e-4, 1e-7)  # the test's
    return compare_tensor("norms", norms, want, rtol=tol[0], atol=tol[1])


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "lstm_gates": Method("call", gates_cases, gates_expected, gates_compare),
    "lstm_cell_forward": Method("call", cell_cases, cell_expected, cell_compare),
    "lstm_forward": Method("call", forward_cases, forward_expected, forward_compare),
    "lstm_bidirectional_forward": Method(
        "call", bidirectional_cases, bidirectional_expected, bidirectional_compare
    ),
    "lstm_stacked_forward": Method("call", stacked_cases, stacked_expected, stacked_compare),
    "init_forget_bias": Method("set_biases", forget_cases, forget_expected, forget_compare),
    "state_gradient_norms": Method("cell_step", norms_cases, norms_expected, norms_compare),
}

WITHHELD = ("rnncourse.gradient_flow",)  # state_gradient_norms, given to lesson 04
