"""Lesson 03's checks, layers: lstm_forward, bidirectional, stacked, init_forget_bias."""

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.lstm.cell import (
    GATE_NAMES,
    GATE_ROLES,
    PARAM_NAMES,
    _expect_state,
    _first_failing_nested_probe,
    _is_pair,
    _outputs_match,
    random_lstm_params,
    reference_deep_lstm,
    reference_lstm_forward,
    torch_lstm_params,
)


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
