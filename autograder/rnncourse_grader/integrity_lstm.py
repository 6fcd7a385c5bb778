"""Integrity probes for lesson 03 (LSTM): the same properties as its tests, checked outside.

The student's functions run in the sandboxed runner on inputs made here; the expected values
come from ``nn.LSTM`` and autograd in the grader. ``init_forget_bias`` changes a module in
place, so its recipe builds the ``nn.LSTM`` in the runner and sends its biases back;
``state_gradient_norms`` takes a step function, so its recipe builds one from an
``nn.LSTMCell`` there. The recall model (a training outcome) has no probe: its test stands
on the in-kernel check.
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
    compare_all,
    compare_tensor,
    describe,
    gated_params,
    sizes,
)


def _cell_params(rng, D, H, dtype=np.float64):
    return gated_params(rng, 4, D, H, hh_scale=0.4, dtype=dtype)


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


def lstm_cell_step(ns, function, case):
    """The student's norms for a recurrence built here from an nn.LSTMCell."""
    cell = nn.LSTMCell(case["H"], case["H"]).double()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(case["params"][name])

    def step(x_t, state):
        return cell(x_t, state)

    return ns[function](step, case["X"], tuple(case["state0"]))


# ----------------------------------------------------------------------------- lstm_gates / cell
def gates_cases(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float32):
        B, D, H = sizes(rng, 3)
        x, h = (
            rng.standard_normal((B, D)).astype(dtype),
            np.tanh(rng.standard_normal((B, H))).astype(dtype),
        )
        cases.append({"args": [x, h, _cell_params(rng, D, H, dtype)]})
    return cases


def gates_expected(case):
    return reference_lstm_gates(*as_tensor(case["args"]))


def gates_compare(got, want, case):
    return compare_all("lstm_gates", ("i", "f", "g", "o"), got, want)


def cell_cases(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float32):
        B, D, H = sizes(rng, 3)
        x = rng.standard_normal((B, D)).astype(dtype)
        cases.append({"args": [x, _state(rng, (B, H), dtype), _cell_params(rng, D, H, dtype)]})
    return cases


def cell_expected(case):
    x, state, params = as_tensor(case["args"])
    return reference_lstm_cell(x, tuple(state), params)


def cell_compare(got, want, case):
    return compare_all("lstm_cell_forward", ("h_t", "c_t"), got, want)


# ----------------------------------------------------------------------------- layers
def forward_cases(rng):
    cases = []
    for zero_state in (False, True, False):
        B, T, D, H = sizes(rng, 4)
        X = rng.standard_normal((B, T, D))
        state0 = None if zero_state else _state(rng, (B, H))
        cases.append({"args": [X, state0, _cell_params(rng, D, H)]})
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
    for zero_state in (False, True):
        B, T, D, H = sizes(rng, 4)
        fwd, bwd = _cell_params(rng, D, H), _cell_params(rng, D, H)
        state0 = None if zero_state else _state(rng, (2, B, H))
        cases.append({"args": [rng.standard_normal((B, T, D)), state0, fwd, bwd]})
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
    for num_layers, bidirectional, zero_state in (
        (2, True, False),
        (3, False, True),
        (1, True, False),
    ):
        B, T, D, H = sizes(rng, 4)
        dirs = 2 if bidirectional else 1
        per = {}
        for layer in range(num_layers):
            for reverse in (False, True)[:dirs]:
                per[(layer, reverse)] = _cell_params(rng, D if layer == 0 else dirs * H, H)
        state0 = None if zero_state else _state(rng, (num_layers * dirs, B, H))
        X = rng.standard_normal((B, T, D))
        cases.append({"args": [X, state0, _suffixed(per), num_layers, bidirectional]})
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
    for L, value in ((2, 1.0), (1, 2.5)):
        D, H = sizes(rng, 2)
        lstm = nn.LSTM(D, H, num_layers=L, bidirectional=True).double()
        params = {name: rng.standard_normal(tuple(p.shape)) for name, p in lstm.named_parameters()}
        cases.append({"D": D, "H": H, "L": L, "value": value, "params": params})
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
def norms_cases(rng):
    cases = []
    for _ in range(2):
        B, T, H = sizes(rng, 3, high=7)
        cases.append(
            {
                "H": H,
                "params": _cell_params(rng, H, H),
                "X": rng.standard_normal((B, T, H)),
                "state0": _state(rng, (B, H)),
            }
        )
    return cases


def norms_expected(case):
    cell = nn.LSTMCell(case["H"], case["H"]).double()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(as_tensor(case["params"][name]))
    X, state = as_tensor(case["X"]), tuple(as_tensor(case["state0"]))
    hs = []
    for t in range(X.shape[1]):
        state = cell(X[:, t], state)
        hs.append(state[0])
    grads = torch.autograd.grad(hs[-1].sum(), hs)
    return torch.stack([g.norm() for g in grads]).detach()


def norms_compare(got, want, case):
    return compare_tensor("norms", got, want, rtol=1e-8, atol=1e-12)  # the test's tolerance


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
    "state_gradient_norms": Method("lstm_cell_step", norms_cases, norms_expected, norms_compare),
}
