"""Checks for lesson 03 (LSTM), with ``torch.nn.LSTM`` and ``torch.nn.LSTMCell`` as the reference.

Parameters use PyTorch's layout: a dict with ``weight_ih`` (4H, D), ``weight_hh`` (4H, H),
``bias_ih`` (4H,) and ``bias_hh`` (4H,), whose 4H rows are four blocks of H in the gate order
i, f, g, o (the names of ``nn.LSTMCell``'s parameters; ``nn.LSTM`` adds a suffix per layer and
direction: ``weight_ih_l0``, ``weight_ih_l0_reverse``, ``weight_ih_l1``, ...). Batch first:
X is (B, T, D), states h and c are (B, H).

No check here contains the LSTM's equations: expected values come from PyTorch's modules
(gates are read back from ``nn.LSTMCell`` by saturating the other gates), or, for gradients,
from a linear recurrence whose gradients have a closed form.
"""

import math

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    first_failing_probe,
    matches,
    random_gated_params,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GATE_NAMES = ("i", "f", "g", "o")
GATE_ROLES = {
    "i": "input gate",
    "f": "forget gate",
    "g": "cell candidate",
    "o": "output gate",
}
SATURATED = 40.0  # sigmoid(40) and tanh(40) round to exactly 1.0 in float32 and float64


# ----------------------------------------------------------------------------- references
def random_lstm_params(input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random LSTM parameters in PyTorch's layout, large enough that no gate is linear."""
    return random_gated_params(
        4, input_size, num_hiddens, hh_scale=0.4, dtype=dtype, device=device, seed=seed
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


def _zero_but(params, *alive):
    """A copy of ``params`` where every tensor except those named in ``alive`` is zero."""
    return {k: (p if k in alive else torch.zeros_like(p)) for k, p in params.items()}


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


# ----------------------------------------------------------------------------- gates
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
                (x, h, _zero_but(params, "bias_ih")),
            ),
            (
                "bias_hh is missing: PyTorch keeps two biases and adds both.",
                (x, h, _zero_but(params, "bias_hh")),
            ),
            (
                "With only weight_ih alive the gates differ: the input term is x_t @ weight_ih.T "
                "(weight_ih is (4H, D)).",
                (x, h, _zero_but(params, "weight_ih")),
            ),
            (
                "With only weight_hh alive the gates differ: the recurrent term is "
                "h_prev @ weight_hh.T (weight_hh is (4H, H)), and h_prev must be used.",
                (x, h, _zero_but(params, "weight_hh")),
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


# ----------------------------------------------------------------------------- cell
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
    quiet = _zero_but(params)
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
        new_content = _zero_but(params)  # only the i and g blocks of bias_ih alive
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
                (x, (h, c), _zero_but(params, "bias_ih")),
            ),
            (
                "bias_hh is missing: PyTorch keeps two biases and adds both.",
                (x, (h, c), _zero_but(params, "bias_hh")),
            ),
            (
                "With only weight_ih alive the result differs: the input term is "
                "x_t @ weight_ih.T, split in the order i, f, g, o.",
                (x, (h, c), _zero_but(params, "weight_ih")),
            ),
            (
                "With only weight_hh alive the result differs: the recurrent term is "
                "h_prev @ weight_hh.T, and h_prev must be used.",
                (x, (h, c), _zero_but(params, "weight_hh")),
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


# ----------------------------------------------------------------------------- layer
def _setup_sequence(B, T, D, H, dtype, device, seed, rows=None, zero_state=False):
    g = torch.Generator().manual_seed(seed + 2)
    X = _randn(B, T, D, dtype=dtype, device=device, g=g)
    if zero_state:
        return X, None
    shape = (B, H) if rows is None else (rows, B, H)
    h0 = _randn(*shape, dtype=dtype, device=device, g=g).tanh()
    c0 = _randn(*shape, dtype=dtype, device=device, g=g)
    return X, (h0, c0)


def _expect_layer_result(name, result, out_shape, state_shape, out_dims, state_dims):
    if not (_is_pair(result) and _is_pair(result[1])):
        raise CheckFailed(
            f"{name} should return (outputs, (h, c)), like nn.LSTM; got {type(result).__name__}."
        )
    expect_tensor("outputs", result[0], out_shape, out_dims)
    _expect_state("the final state", result[1], state_shape, state_dims)


def check_lstm_forward(
    lstm_forward,
    *,
    batch_size=3,
    num_steps=6,
    input_size=4,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
    zero_state=False,
):
    """lstm_forward(X, state0, params) must return nn.LSTM's (H_all, (h_T, c_T))."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, state0 = _setup_sequence(B, T, D, H, dtype, device, seed, zero_state=zero_state)
    params = random_lstm_params(D, H, dtype=dtype, device=device, seed=seed)
    tol = tolerances(dtype)

    result = call_student(lstm_forward, X, state0, params)
    _expect_layer_result("lstm_forward", result, (B, T, H), (B, H), "(B, T, H)", "(B, H)")
    H_all, (h_T, c_T) = result
    want_all, (want_h, want_c) = reference_lstm_forward(X, state0, params)
    if _outputs_match(result, (want_all, (want_h, want_c)), tol):
        print(
            f"lstm_forward matches torch.nn.LSTM (B={B}, T={T}, D={D}, H={H}, {dtype}, "
            f"state0={'None' if state0 is None else 'given'})."
        )
        return
    cell_states = torch.stack(
        [reference_lstm_forward(X[:, : t + 1], state0, params)[1][1] for t in range(T)], dim=1
    )  # (B, T, H): c_1 .. c_T
    if matches(H_all, cell_states, **tol):
        raise CheckFailed(
            "H_all holds the cell states c_t: the layer's outputs are the hidden states h_t."
        )
    probes = [
        (
            "With a single time step the layer is one cell step from (h0, c0): check the first "
            "step (are h0 and c0 used, and zeros when state0 is None?).",
            (X[:, :1], state0, params),
        ),
        (
            "With weight_hh = 0 only the cell state links the steps, and the result differs: "
            "c_t must be carried from step to step (and does step t read X[:, t]?).",
            (X, state0, {**params, "weight_hh": torch.zeros_like(params["weight_hh"])}),
        ),
        (
            "Steps do not chain: the (h_t, c_t) computed at step t is the state of step t + 1, "
            "h as well as c.",
            (X, state0, params),
        ),
    ]
    hint = _first_failing_nested_probe(
        lstm_forward, reference_lstm_forward, probes, name="lstm_forward", tol=tol
    )
    if not matches(H_all, want_all, **tol):
        expect_close("H_all", H_all, want_all, hint=hint, **tol)
    expect_close(
        "h_T",
        h_T,
        want_h,
        hint="h_T must be the hidden state after the last step, H_all[:, -1].",
        **tol,
    )
    expect_close("c_T", c_T, want_c, hint="c_T must be the cell state after the last step.", **tol)


# ----------------------------------------------------------------------------- bidirectional
def _layer_params(params, layer, reverse):
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {name: params[name + suffix] for name in PARAM_NAMES}


def check_lstm_bidirectional_forward(
    lstm_bidirectional_forward,
    *,
    batch_size=3,
    num_steps=5,
    input_size=4,
    num_hiddens=3,
    dtype=torch.float64,
    device="cpu",
    seed=0,
    zero_state=False,
):
    """lstm_bidirectional_forward(X, state0, params_fwd, params_bwd) must match
    nn.LSTM(bidirectional=True): outputs (B, T, 2H) and (h_n, c_n), each (2, B, H)."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, state0 = _setup_sequence(B, T, D, H, dtype, device, seed, rows=2, zero_state=zero_state)
    params = {}
    for reverse, offset in ((False, 0), (True, 100)):
        p = random_lstm_params(D, H, dtype=dtype, device=device, seed=seed + offset)
        params.update({f"{k}_l0{'_reverse' if reverse else ''}": v for k, v in p.items()})
    p_fwd, p_bwd = _layer_params(params, 0, False), _layer_params(params, 0, True)
    tol = tolerances(dtype)

    result = call_student(lstm_bidirectional_forward, X, state0, p_fwd, p_bwd)
    _expect_layer_result(
        "lstm_bidirectional_forward", result, (B, T, 2 * H), (2, B, H), "(B, T, 2H)", "(2, B, H)"
    )
    out, (h_n, c_n) = result
    want_out, (want_h, want_c) = reference_deep_lstm(
        X, state0, params, num_layers=1, bidirectional=True
    )
    if _outputs_match(result, (want_out, (want_h, want_c)), tol):
        print(
            f"lstm_bidirectional_forward matches nn.LSTM(bidirectional=True) (B={B}, T={T}, "
            f"D={D}, H={H}, {dtype}, state0={'None' if state0 is None else 'given'})."
        )
        return
    fwd, bwd = out[..., :H], out[..., H:]
    want_fwd, want_bwd = want_out[..., :H], want_out[..., H:]
    if matches(fwd, want_bwd, **tol) and matches(bwd, want_fwd, **tol):
        hint = (
            "the halves are swapped: the forward direction comes first, torch.cat([fwd, bwd], -1)."
        )
    elif not matches(fwd, want_fwd, **tol):
        hint = (
            "The forward half, outputs[..., :H], is wrong: it is your lstm_forward on X with "
            "params_fwd, starting from (h0[0], c0[0])."
        )
    elif not matches(bwd, want_bwd, **tol):
        start = None if state0 is None else (state0[0][1], state0[1][1])
        not_reversed, _ = reference_lstm_forward(X, start, p_bwd)
        if matches(bwd, not_reversed, **tol):
            hint = (
                "The backward direction reads X in the original order: it must read "
                "x_T, ..., x_1 (flip X along time, dim 1)."
            )
        elif matches(bwd, want_bwd.flip(1), **tol):
            hint = (
                "The backward outputs are in reversed time order: flip them back, so that "
                "outputs[:, t] holds both directions' states for the same x_t."
            )
        else:
            hint = (
                "The backward half, outputs[..., H:], is wrong: run the layer with params_bwd "
                "from (h0[1], c0[1]) on X reversed in time, and flip its outputs back."
            )
    elif matches(h_n[1], want_bwd[:, -1], **tol):
        hint = (
            "The backward direction ends at t = 1: its final state is at outputs[:, 0, H:], "
            "not outputs[:, -1, H:]."
        )
    else:
        hint = (
            "h_n and c_n stack the final states of the forward and the backward direction (dim 0)."
        )
    for name, got, want in (("outputs", out, want_out), ("h_n", h_n, want_h), ("c_n", c_n, want_c)):
        expect_close(name, got, want, hint=hint, **tol)


# ----------------------------------------------------------------------------- stacked
def check_lstm_stacked_forward(
    lstm_stacked_forward,
    *,
    num_layers=2,
    bidirectional=True,
    batch_size=3,
    num_steps=5,
    input_size=4,
    num_hiddens=3,
    dtype=torch.float64,
    device="cpu",
    seed=0,
    zero_state=False,
):
    """lstm_stacked_forward(X, state0, params, num_layers, bidirectional) must match
    nn.LSTM(num_layers, bidirectional, batch_first=True) with the same named parameters."""
    L, dirs = num_layers, 2 if bidirectional else 1
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, state0 = _setup_sequence(
        B, T, D, H, dtype, device, seed, rows=L * dirs, zero_state=zero_state
    )
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random stream alone
        torch.manual_seed(seed)
        lstm = nn.LSTM(D, H, num_layers=L, bidirectional=bidirectional, batch_first=True)
        lstm = lstm.to(dtype=dtype, device=device)
        with torch.no_grad():
            for p in lstm.parameters():
                p.uniform_(-0.7, 0.7)
    params = torch_lstm_params(lstm)
    tol = tolerances(dtype)
    config = f"num_layers={L}, bidirectional={bidirectional}"

    result = call_student(lstm_stacked_forward, X, state0, params, L, bidirectional)
    _expect_layer_result(
        "lstm_stacked_forward",
        result,
        (B, T, dirs * H),
        (L * dirs, B, H),
        f"(B, T, {'2H' if dirs == 2 else 'H'})",
        f"(num_layers * {dirs}, B, H)",
    )
    out, (h_n, c_n) = result
    with torch.no_grad():
        want_out, (want_h, want_c) = lstm(X, state0)
    if _outputs_match(result, (want_out, (want_h, want_c)), tol):
        print(
            f"lstm_stacked_forward matches nn.LSTM({config}) (B={B}, T={T}, D={D}, H={H}, "
            f"{dtype}, state0={'None' if state0 is None else 'given'})."
        )
        return
    # Layer 0 alone, as nn.LSTM computes it: are its final-state rows right?
    first = {k: v for k, v in params.items() if "_l0" in k}
    start = None if state0 is None else (state0[0][:dirs], state0[1][:dirs])
    out0, (h0_want, _) = reference_deep_lstm(
        X, start, first, num_layers=1, bidirectional=bidirectional
    )
    order = torch.arange(L * dirs).reshape(L, dirs).T.reshape(-1)  # direction-major rows
    if matches(out, want_out, **tol) and matches(h_n, want_h[order], **tol) and dirs == 2:
        hint = (
            "the rows of h_n and c_n are ordered layer by layer: row layer * 2 + direction "
            "(forward 0, backward 1)."
        )
    elif not matches(h_n[:dirs], h0_want, **tol):
        hint = (
            "Layer 0 is already wrong (its final states h_n[:dirs] differ). It must equal "
            + ("your lstm_bidirectional_forward" if dirs == 2 else "your lstm_forward")
            + " on X with the _l0 parameters, from the rows state0[0][:dirs], state0[1][:dirs]."
        )
    elif matches(out, out0, **tol):
        hint = "outputs must be the LAST layer's outputs, not the first layer's."
    else:
        hint = (
            "Layer 0 is right, the layers above are not: layer k reads the outputs of layer "
            "k - 1 (B, T, dirs * H), uses the parameters with suffix _l{k}, and starts from "
            "rows k * dirs to (k + 1) * dirs of h0 and c0."
        )
    for name, got, want in (("outputs", out, want_out), ("h_n", h_n, want_h), ("c_n", c_n, want_c)):
        expect_close(name, got, want, hint=hint, **tol)


# ----------------------------------------------------------------------------- forget bias
def check_init_forget_bias(init_forget_bias, *, value=1.0, num_layers=2, seed=0):
    """init_forget_bias(lstm, value) sets b_ih + b_hh = value on the forget gate of every
    layer and direction of an nn.LSTM, in place, and leaves everything else unchanged."""
    D, H = 3, 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lstm = nn.LSTM(D, H, num_layers=num_layers, bidirectional=True, batch_first=True)
    before = {name: p.detach().clone() for name, p in lstm.named_parameters()}
    try:
        returned = call_student(init_forget_bias, lstm, value)
    except CheckFailed as err:
        if "requires grad" in str(err):
            raise CheckFailed(
                f"{err} The parameters require gradients: change them inside "
                "`with torch.no_grad():`."
            ) from None
        raise
    if returned is not None and returned is not lstm:
        raise CheckFailed(
            "init_forget_bias should change the module in place and return it (or None), not "
            "a new module."
        )
    after = {name: p.detach() for name, p in lstm.named_parameters()}
    f_rows = slice(H, 2 * H)
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    weights = [name for name in changed if name.startswith("weight")]
    if weights:
        raise CheckFailed(f"init_forget_bias changed {weights[0]}: only biases should change.")
    for name in (n for n in before if n.startswith("bias")):
        others = torch.ones(4 * H, dtype=torch.bool)
        others[f_rows] = False
        if not torch.equal(before[name][others], after[name][others]):
            gate = next(
                GATE_NAMES[k]
                for k in range(4)
                if not torch.equal(
                    before[name][k * H : (k + 1) * H], after[name][k * H : (k + 1) * H]
                )
            )
            raise CheckFailed(
                f"init_forget_bias changed the {GATE_ROLES[gate]} ({gate}) block of {name}: the "
                "forget gate is the second block of H entries, rows H to 2H (order i, f, g, o)."
            )
    for suffix in [f"_l{k}{r}" for k in range(num_layers) for r in ("", "_reverse")]:
        total = after["bias_ih" + suffix][f_rows] + after["bias_hh" + suffix][f_rows]
        if torch.allclose(total, torch.full_like(total, value), atol=1e-6):
            continue
        if not changed or f"bias_ih{suffix}" not in changed and f"bias_hh{suffix}" not in changed:
            where = f"layer {suffix[2]}{', reverse direction' if 'reverse' in suffix else ''}"
            raise CheckFailed(
                f"the forget-gate biases of {where} are unchanged: set every layer and every "
                "direction (the parameters named bias_*_l{k} and bias_*_l{k}_reverse)."
            )
        raise CheckFailed(
            f"on the forget gate of {suffix[1:]}, bias_ih + bias_hh = {total[0].item():.4g} "
            f"(first unit); expected {value}. PyTorch adds both biases: set one to the value and "
            "the other to zero."
        )
    print(f"init_forget_bias sets the forget-gate bias to {value} in every layer and direction.")


# ----------------------------------------------------------------------------- gradients
def _linear_recurrence(H, *, two_states, dtype, device, seed):
    """A linear recurrence with a closed-form gradient, as a ``step`` and its coefficients.

    One state:  h_t = a h_{t-1} + 2 x_t.  Two states: (h_t, c_t) = M (h_{t-1}, c_{t-1}) +
    (2 x_t, 0) per unit, with a 2 x 2 matrix M per unit. Then for L = h_T.sum(),
    dL/dh_t = (M^(T - t))[0, 0] for every batch row.
    """
    g = torch.Generator().manual_seed(seed)
    if two_states:
        M = (
            torch.stack(
                [
                    torch.stack(
                        [torch.rand(H, generator=g) * 0.4, torch.rand(H, generator=g) * 0.3]
                    ),
                    torch.stack(
                        [torch.rand(H, generator=g) * 0.3, 0.5 + torch.rand(H, generator=g) * 0.4]
                    ),
                ]
            )
            .permute(2, 0, 1)
            .to(dtype=torch.float64)
        )  # (H, 2, 2): rows (h, c), columns (h, c)
    else:
        M = (0.4 + torch.rand(H, 1, 1, generator=g) * 0.55).to(torch.float64)  # (H, 1, 1)
    M_dev = M.to(dtype=dtype, device=device)

    def step(x_t, state):
        h, *rest = state
        if not two_states:
            return (h * M_dev[:, 0, 0] + 2 * x_t,)
        c = rest[0]
        h_new = h * M_dev[:, 0, 0] + c * M_dev[:, 0, 1] + 2 * x_t
        c_new = h * M_dev[:, 1, 0] + c * M_dev[:, 1, 1]
        return h_new, c_new

    return step, M


def _closed_form_norms(M, batch_size, num_steps):
    """||dL/dh_t|| for t = 1..T of the linear recurrence: sqrt(B * sum_j (M_j^(T-t))[0, 0]^2)."""
    powers = [torch.linalg.matrix_power(M, num_steps - t)[:, 0, 0] for t in range(1, num_steps + 1)]
    return torch.stack([math.sqrt(batch_size) * p.norm() for p in powers])  # (T,)


def check_state_gradient_norms(
    state_gradient_norms,
    *,
    batch_size=3,
    num_steps=12,
    num_hiddens=4,
    two_states=True,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """state_gradient_norms(step, X, state0) must return ||dL/dh_t||, t = 1..T, L = h_T.sum().

    Graded on linear recurrences whose gradients have a closed form, then run on a real
    nn.LSTMCell, where the last entry must be ||ones(B, H)|| = sqrt(B H).
    """
    B, T, H = batch_size, num_steps, num_hiddens
    g = torch.Generator().manual_seed(seed + 5)
    X = _randn(B, T, H, dtype=dtype, device=device, g=g)
    step, M = _linear_recurrence(H, two_states=two_states, dtype=dtype, device=device, seed=seed)
    zeros = torch.zeros(B, H, dtype=dtype, device=device)
    state0 = (zeros, zeros.clone()) if two_states else (zeros,)
    tol = {"rtol": 1e-8, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-7}

    norms = call_student(state_gradient_norms, step, X, state0, shared=(1,))  # X: inspected
    if X.requires_grad:
        raise CheckFailed(
            "state_gradient_norms changed X: the caller's X now requires gradients. Leave it "
            "as it was: work on X.detach().requires_grad_()."
        )
    expect_tensor("norms", norms, (T,), "(T,), one entry per time step")
    want = _closed_form_norms(M, B, T).to(dtype=dtype, device=device)
    if not matches(norms, want, **tol):
        got = norms.detach().to(want.dtype)
        if torch.allclose(got, want.flip(0), **tol):
            hint = "the order is reversed: norms[0] is for h_1 (the first step), norms[-1] for h_T."
        elif torch.allclose(got[1:], want[:-1], **tol):
            hint = (
                "off by one step: norms[t - 1] is ||dL/dh_t|| for t = 1..T (h_0 is not included)."
            )
        elif torch.allclose(got, 2 * want, **tol):
            hint = (
                "these are the gradients with respect to the inputs x_t; take them with "
                "respect to the hidden states h_t returned by each step."
            )
        elif torch.allclose(got, want**2, **tol):
            hint = "these are squared norms: use the Euclidean norm, tensor.norm()."
        elif torch.allclose(got * B * H, want, **tol):
            hint = "L is the sum of h_T's entries, h_T.sum(), not the mean."
        elif torch.allclose(got[-1], want[-1], **tol) and (got[:-1].abs() < 1e-12).all():
            hint = (
                "only the last step has a gradient: the states must stay connected (no .detach(),"
                " no torch.no_grad()), and gradients taken with respect to every h_t."
            )
        else:
            hint = (
                "norms[t - 1] must be the norm of dL/dh_t over the whole batch, for L = h_T.sum() "
                "and the h_t of the same forward pass (torch.autograd.grad(L, hs))."
            )
        expect_close("norms", norms, want, hint=hint, **tol)
    # A real cell: finite, positive, and the last gradient is dL/dh_T = ones.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cell = nn.LSTMCell(H, H).to(dtype=dtype, device=device)
    norms = call_student(
        state_gradient_norms, lambda x_t, s: cell(x_t, s), X, (zeros, zeros.clone())
    )
    expect_tensor("norms", norms, (T,), "(T,)")
    if not (
        torch.isfinite(norms).all()
        and math.isclose(norms[-1].item(), math.sqrt(B * H), rel_tol=1e-4)
    ):
        raise CheckFailed(
            "On an nn.LSTMCell the last norm should be ||dL/dh_T|| = ||ones(B, H)|| = "
            f"{math.sqrt(B * H):.4g}; got {norms[-1].item():.4g}: L = h_T.sum() and the "
            "norms are taken over the whole batch."
        )
    kind = "(h, c)" if two_states else "(h,)"
    print(
        f"state_gradient_norms matches the closed form (state {kind}, B={B}, T={T}, H={H}, "
        f"{dtype})."
    )


def decay_rate(norms) -> float:
    """Decades lost per step going back in time: the least-squares slope of log10 ||dL/dh_t||."""
    y = torch.as_tensor(norms, dtype=torch.float64).log10()
    t = torch.arange(len(y), dtype=torch.float64)
    t_c, y_c = t - t.mean(), y - y.mean()
    return ((t_c * y_c).sum() / (t_c * t_c).sum()).item()


def check_lstm_gradient_decays_slower(
    state_gradient_norms,
    lstm_cell_forward,
    *,
    batch_size=8,
    num_steps=40,
    num_hiddens=32,
    forget_bias=1.0,
    seed=0,
    max_ratio=0.6,
):
    """With PyTorch's default initialisation and the forget-gate bias at 1, the LSTM's
    ||dL/dh_t|| shrinks more slowly going back in time than a vanilla RNN's on the same input."""
    B, T, H = batch_size, num_steps, num_hiddens
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lstm_cell = nn.LSTMCell(H, H).double()
        rnn_cell = nn.RNNCell(H, H).double()
    with torch.no_grad():
        lstm_cell.bias_ih[H : 2 * H] = forget_bias
        lstm_cell.bias_hh[H : 2 * H] = 0
    params = {name: p.detach() for name, p in lstm_cell.named_parameters()}
    X = torch.randn(B, T, H, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    zeros = torch.zeros(B, H, dtype=torch.float64)
    lstm_norms = call_student(
        state_gradient_norms,
        lambda x_t, s: lstm_cell_forward(x_t, s, params),
        X,
        (zeros, zeros.clone()),
    )
    rnn_norms = call_student(
        state_gradient_norms, lambda x_t, s: (rnn_cell(x_t, s[0]),), X, (zeros,)
    )
    for name, norms in (("LSTM norms", lstm_norms), ("RNN norms", rnn_norms)):
        expect_tensor(name, norms, (T,), "(T,)")
        if not (torch.isfinite(norms).all() and (norms > 0).all()):
            raise CheckFailed(f"{name} should be finite and positive; got {norms.tolist()[:5]}...")
    lstm_rate, rnn_rate = decay_rate(lstm_norms.detach()), decay_rate(rnn_norms.detach())
    if rnn_rate <= 0:
        raise CheckFailed(
            f"the RNN's norms do not grow towards the last step (slope {rnn_rate:.3f} decades per "
            "step): norms[0] is for h_1, norms[-1] for h_T, where the loss is."
        )
    if lstm_rate < max_ratio * rnn_rate:
        print(
            f"Going back in time the LSTM loses {lstm_rate:.3f} decades of gradient per step, "
            f"the RNN {rnn_rate:.3f}: the LSTM's gradient decays slower."
        )
        return
    raise CheckFailed(
        f"the LSTM loses {lstm_rate:.3f} decades per step and the RNN {rnn_rate:.3f}; expected "
        f"the LSTM below {max_ratio} x the RNN's rate. If lstm_cell_forward passes its checks, "
        "look at state_gradient_norms; a forget gate applied to h_prev instead of c_prev "
        "breaks the cell state's direct path."
    )


# ----------------------------------------------------------------------------- memory task
@torch.no_grad()
def recall_accuracy(model, num_steps, *, num_symbols, num_distractors, batch_size=512, seed=0):
    """Accuracy of ``model`` (ids (B, T) -> logits (B, K)) at recalling the first symbol."""
    from rnncourse.toy_tasks import recall_batch

    g = torch.Generator().manual_seed(seed + 6)
    X, y = recall_batch(batch_size, num_steps, num_symbols, num_distractors, generator=g)
    logits = model(X)
    return (logits.argmax(-1) == y).double().mean().item()


def check_recall_model(model, num_steps, *, num_symbols=4, num_distractors=4, min_accuracy=0.95):
    """A trained model recalls the first symbol of a sequence after num_steps - 1 distractors."""
    try:
        accuracy = recall_accuracy(
            model, num_steps, num_symbols=num_symbols, num_distractors=num_distractors
        )
    except Exception as err:
        raise CheckFailed(f"running the model failed with {type(err).__name__}: {err}") from err
    chance = 1 / num_symbols
    if accuracy >= min_accuracy:
        print(
            f"The model recalls the first symbol {num_steps} steps later: accuracy {accuracy:.1%}."
        )
        return
    hint = (
        "it is at chance: the first symbol is forgotten. Is the forget-gate bias set to 1 "
        "before training, and is the model trained?"
        if accuracy < chance + 0.1
        else "it learns but not enough: train longer."
    )
    raise CheckFailed(
        f"accuracy {accuracy:.1%} (need >= {min_accuracy:.0%}; chance is {chance:.0%}): {hint}"
    )
