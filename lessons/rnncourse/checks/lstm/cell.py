"""Lesson 03's checks, one LSTM step: the references (torch.nn.LSTM), lstm_gates, the cell."""

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    first_failing_probe,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.gated import PARAM_NAMES, SATURATED, random_cell_params, zero_but

GATE_NAMES = ("i", "f", "g", "o")


GATE_ROLES = {
    "i": "input gate",
    "f": "forget gate",
    "g": "cell candidate",
    "o": "output gate",
}


def random_lstm_params(input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random LSTM parameters in PyTorch's layout, large enough that no gate is linear."""
    return random_cell_params(
        "lstm", input_size, num_hiddens, dtype=dtype, device=device, seed=seed
    )


def torch_lstm_from_params(params, *, num_layers=1, bidirectional=False) -> nn.LSTM:
    """A batch-first ``nn.LSTM`` holding ``params``.

    ``params`` uses nn.LSTM's names (``weight_ih_l0``, ...) or, for one layer and one
    direction, nn.LSTMCell's (``weight_ih``, ...).
    """
    if "weight_ih" in params:
        params = {f"{name}_l0": params[name] for name in PARAM_NAMES}
    weight = params["weight_ih_l0"]
    with torch.random.fork_rng(devices=[]):  # its random init must not move the notebook's RNG
        lstm = nn.LSTM(
            weight.shape[1],
            weight.shape[0] // 4,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
        ).to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(params[name])
    return lstm


def torch_lstm_params(lstm: nn.LSTM) -> dict:
    """``{name: tensor}`` of an ``nn.LSTM``, detached (the layout the stacked exercise takes)."""
    return {name: p.detach() for name, p in lstm.named_parameters()}


@torch.no_grad()
def reference_lstm_forward(X, state0, params):
    """One-layer ``nn.LSTM`` on X (B, T, D) from (h0, c0) (B, H) or None.

    Returns (H_all (B, T, H), (h_T (B, H), c_T (B, H))).
    """
    lstm = torch_lstm_from_params(params)
    state = None if state0 is None else (state0[0].unsqueeze(0), state0[1].unsqueeze(0))
    H_all, (h_n, c_n) = lstm(X, state)  # h_n, c_n: (1, B, H)
    return H_all, (h_n[0], c_n[0])


def reference_lstm_cell(x_t, state, params):
    """One step of ``nn.LSTM``: x_t (B, D), (h_prev, c_prev) (B, H) -> (h_t, c_t)."""
    return reference_lstm_forward(x_t.unsqueeze(1), state, params)[1]


@torch.no_grad()
def reference_deep_lstm(X, state0, params, *, num_layers, bidirectional):
    """``nn.LSTM(num_layers, bidirectional)``: returns (out (B, T, dirs H), (h_n, c_n))."""
    lstm = torch_lstm_from_params(params, num_layers=num_layers, bidirectional=bidirectional)
    return lstm(X, state0)


def _select_chunks(params, order):
    """Parameters whose four gate blocks are blocks ``order`` of ``params`` (repeats allowed)."""
    out = {}
    for name in PARAM_NAMES:
        chunks = params[name].chunk(4, dim=0)
        out[name] = torch.cat([chunks[k] for k in order], dim=0)
    return out


def _fix_gates(params, **preactivations):
    """Parameters where the named gates have a constant pre-activation (weights zero)."""
    out = {name: p.clone() for name, p in params.items()}
    H = params["weight_hh"].shape[1]
    for gate, value in preactivations.items():
        rows = slice(GATE_NAMES.index(gate) * H, (GATE_NAMES.index(gate) + 1) * H)
        out["weight_ih"][rows] = 0
        out["weight_hh"][rows] = 0
        out["bias_ih"][rows] = value
        out["bias_hh"][rows] = 0
    return out


@torch.no_grad()
def reference_lstm_gates(x_t, h_prev, params):
    """(i, f, g, o), each (B, H), read back from ``nn.LSTM`` without writing its equations.

    With c_prev = 0 and then 1 the difference of the two new cell states is the forget gate;
    saturating one gate to exactly 1 isolates another in c_t or h_t.
    """
    zeros, ones = torch.zeros_like(h_prev), torch.ones_like(h_prev)
    _, c_at_0 = reference_lstm_cell(x_t, (h_prev, zeros), params)
    _, c_at_1 = reference_lstm_cell(x_t, (h_prev, ones), params)
    f = c_at_1 - c_at_0
    _, i = reference_lstm_cell(x_t, (h_prev, zeros), _fix_gates(params, g=SATURATED))
    _, g = reference_lstm_cell(x_t, (h_prev, zeros), _fix_gates(params, i=SATURATED))
    both = _fix_gates(params, i=SATURATED, g=SATURATED)  # c_t = 1, so h_t = o tanh(1)
    h, _ = reference_lstm_cell(x_t, (h_prev, zeros), both)
    o = h / torch.tanh(torch.ones((), dtype=h.dtype, device=h.device))
    return i, f, g, o


def _is_pair(value):
    return isinstance(value, tuple | list) and len(value) == 2


def _expect_state(name, state, shape, dims):
    """Fail unless ``state`` is a pair (h, c) of tensors of the given shape."""
    if not _is_pair(state):
        raise CheckFailed(f"{name} should be a pair (h, c); got {type(state).__name__}.")
    expect_tensor(f"{name}[0] (h)", state[0], shape, dims)
    expect_tensor(f"{name}[1] (c)", state[1], shape, dims)


def _outputs_match(got, want, tol):
    """Tuples of tensors (nested one level, as (out, (h, c))) agree entry by entry."""
    flat_got, flat_want = _flatten(got), _flatten(want)
    return len(flat_got) == len(flat_want) and all(
        matches(g, w, **tol) for g, w in zip(flat_got, flat_want, strict=True)
    )


def _first_failing_nested_probe(student, reference, probes, *, name, tol):
    """``first_failing_probe`` for results nested like (outputs, (h, c))."""
    for hint, args in probes:
        if not _outputs_match(call_student(student, *args, name=name), reference(*args), tol):
            return hint
    return ""


def _flatten(value):
    if isinstance(value, tuple | list):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def _setup_step(B, D, H, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 1)
    x = _randn(B, D, dtype=dtype, device=device, g=g)
    h = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    c = _randn(B, H, dtype=dtype, device=device, g=g) * 1.5
    params = random_lstm_params(D, H, dtype=dtype, device=device, seed=seed)
    return x, h, c, params


def _gate_mixup(gates, x, h, params, tol):
    """Name a gate computed from the wrong block of rows or with the wrong nonlinearity."""
    candidates = []
    for k in range(4):  # sigmoid(block k) sits in the i slot, tanh(block k) in the g slot
        i_k, _, g_k, _ = reference_lstm_gates(x, h, _select_chunks(params, (k, k, k, k)))
        candidates += [(f"sigmoid(block {k})", i_k), (f"tanh(block {k})", g_k)]
    want = reference_lstm_gates(x, h, params)
    for k, (name, got) in enumerate(zip(GATE_NAMES, gates, strict=True)):
        if matches(got, want[k], **tol):
            continue
        expected = f"{'tanh' if name == 'g' else 'sigmoid'}(block {k})"
        for label, value in candidates:
            if matches(got, value, **tol):
                return (
                    f"your {name} ({GATE_ROLES[name]}) is {label}; expected {expected}. The 4H "
                    "pre-activations are four blocks of H in the order i, f, g, o "
                    "(torch.chunk(z, 4, dim=1)); g uses tanh, the three gates sigmoid."
                )
    return ""


def check_lstm_gates(
    lstm_gates,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """lstm_gates(x_t, h_prev, params) must return the (i, f, g, o) of torch.nn.LSTM's step."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, _, params = _setup_step(B, D, H, dtype, device, seed)
    tol = tolerances(dtype)

    gates = call_student(lstm_gates, x, h, params)
    if not (isinstance(gates, tuple | list) and len(gates) == 4):
        raise CheckFailed(
            f"lstm_gates should return four tensors (i, f, g, o); got {type(gates).__name__}"
            + (f" of length {len(gates)}." if isinstance(gates, tuple | list) else ".")
        )
    for name, value in zip(GATE_NAMES, gates, strict=True):
        expect_tensor(name, value, (B, H), "(B, H)")
    want = reference_lstm_gates(x, h, params)
    if all(matches(got, w, **tol) for got, w in zip(gates, want, strict=True)):
        print(f"lstm_gates matches torch.nn.LSTM's gates (B={B}, D={D}, H={H}, {dtype}).")
        return
    hint = _gate_mixup(gates, x, h, params, tol)
    if not hint:
        probes = [
            (
                "With the weights zero only bias_ih and bias_hh act and your gates differ: add "
                "bias_ih, and split the 4H pre-activations into four consecutive blocks of H "
                "(torch.chunk(z, 4, dim=1)), in the order i, f, g, o.",
                (x, h, zero_but(params, "bias_ih")),
            ),
            (
                "bias_hh is missing: PyTorch keeps two biases and adds both.",
                (x, h, zero_but(params, "bias_hh")),
            ),
            (
                "With only weight_ih alive the gates differ: the input term is x_t @ weight_ih.T "
                "(weight_ih is (4H, D)).",
                (x, h, zero_but(params, "weight_ih")),
            ),
            (
                "With only weight_hh alive the gates differ: the recurrent term is "
                "h_prev @ weight_hh.T (weight_hh is (4H, H)), and h_prev must be used.",
                (x, h, zero_but(params, "weight_hh")),
            ),
        ]
        hint = first_failing_probe(
            lstm_gates, reference_lstm_gates, probes, name="lstm_gates", **tol
        ) or (
            "Each term alone is right but together they are not: add all four terms "
            "(two products, two biases) before the nonlinearities."
        )
    for name, got, w in zip(GATE_NAMES, gates, want, strict=True):
        if not matches(got, w, **tol):
            expect_close(name, got, w, hint=hint, **tol)


def check_lstm_cell_forward(
    lstm_cell_forward,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """lstm_cell_forward(x_t, (h_prev, c_prev), params) must return torch.nn.LSTM's (h_t, c_t)."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, c, params = _setup_step(B, D, H, dtype, device, seed)
    tol = tolerances(dtype)

    state = call_student(lstm_cell_forward, x, (h, c), params)
    _expect_state("lstm_cell_forward's result", state, (B, H), "(B, H)")
    want = reference_lstm_cell(x, (h, c), params)
    if _outputs_match(state, want, tol):
        print(f"lstm_cell_forward matches torch.nn.LSTM (B={B}, D={D}, H={H}, {dtype}).")
        return

    if matches(state[0], want[1], **tol) and matches(state[1], want[0], **tol):
        raise CheckFailed("lstm_cell_forward returns (c_t, h_t): return (h_t, c_t), h first.")
    # Only the memory alive: every gate is sigmoid(0) = 1/2 and g = tanh(0) = 0.
    quiet = zero_but(params)
    got_h, got_c = call_student(lstm_cell_forward, x, (h, c), quiet)
    want_h, want_c = reference_lstm_cell(x, (h, c), quiet)
    if not matches(got_c, want_c, **tol):
        hint = (
            "With every weight and bias zero each gate is sigmoid(0) = 1/2 and g = tanh(0) = 0, "
            "so c_t must be c_prev / 2: c_t = f * c_prev + i * g (the forget gate multiplies "
            "c_prev, not h_prev)."
        )
    elif not matches(got_h, want_h, **tol):
        hint = (
            "With every weight and bias zero c_t is right but h_t is not: h_t = o * tanh(c_t), "
            "with tanh of the new cell state."
        )
    else:
        new_content = zero_but(params)  # only the i and g blocks of bias_ih alive
        new_content["bias_ih"] = params["bias_ih"].clone()
        new_content["bias_ih"][H : 2 * H] = 0  # the f block
        new_content["bias_ih"][3 * H :] = 0  # the o block
        probes = [
            (
                "With only the i and g blocks of bias_ih alive the result differs: c_t = "
                "f * c_prev + i * g, where the candidate g = tanh(block 2) enters scaled by the "
                "input gate i = sigmoid(block 0) (blocks of H in the order i, f, g, o).",
                (x, (h, c), new_content),
            ),
            (
                "With the weights zero only the biases act: add bias_ih, and split the 4H "
                "pre-activations into blocks of H in the order i, f, g, o "
                "(torch.chunk(z, 4, dim=1)); sigmoid for i, f, o and tanh for g.",
                (x, (h, c), zero_but(params, "bias_ih")),
            ),
            (
                "bias_hh is missing: PyTorch keeps two biases and adds both.",
                (x, (h, c), zero_but(params, "bias_hh")),
            ),
            (
                "With only weight_ih alive the result differs: the input term is "
                "x_t @ weight_ih.T, split in the order i, f, g, o.",
                (x, (h, c), zero_but(params, "weight_ih")),
            ),
            (
                "With only weight_hh alive the result differs: the recurrent term is "
                "h_prev @ weight_hh.T, and h_prev must be used.",
                (x, (h, c), zero_but(params, "weight_hh")),
            ),
        ]
        hint = first_failing_probe(
            lstm_cell_forward, reference_lstm_cell, probes, name="lstm_cell_forward", **tol
        ) or (
            "Each term alone is right but together they are not: add all four terms before "
            "the nonlinearities."
        )
    expect_close("c_t", state[1], want[1], hint=hint, **tol)
    expect_close("h_t", state[0], want[0], hint=hint, **tol)
