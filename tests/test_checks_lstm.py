"""Lesson 03's checks: the reference passes every one, and each typical bug fails with its hint."""

import os
from unittest import mock

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    CheckFailed,
    check_init_forget_bias,
    check_lstm_bidirectional_forward,
    check_lstm_cell_forward,
    check_lstm_forward,
    check_lstm_gates,
    check_lstm_gradient_decays_slower,
    check_lstm_stacked_forward,
    check_recall_model,
    check_state_gradient_norms,
)
from rnncourse.checks import _core as checks_core
from rnncourse.checks.lstm import decay_rate, reference_lstm_gates
from rnncourse.plots import draw_lstm_cell, plot_gate_activations, plot_runs
from rnncourse.toy_tasks import recall_batch
from tests.course import reference_namespace
from tests.integrity_support import passes_probe, rejection

LESSON = "03_lstm"


@pytest.fixture(scope="module")
def ref():
    # The smoke configuration the notebook uses under nbgrader: a few seconds, not a minute.
    with mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "pytest"}):
        namespace = reference_namespace("03_lstm")
    plt.close("all")
    return namespace


def fails(check, *args, match=None, **kwargs):
    """Assert that a check rejects the student object, with ``match`` in its message."""
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_visible_and_hidden_checks(ref):
    check_lstm_gates(ref["lstm_gates"])
    check_lstm_cell_forward(ref["lstm_cell_forward"])
    check_lstm_forward(ref["lstm_forward"])
    check_lstm_forward(ref["lstm_forward"], zero_state=True)
    check_lstm_bidirectional_forward(ref["lstm_bidirectional_forward"])
    check_lstm_bidirectional_forward(ref["lstm_bidirectional_forward"], zero_state=True)
    check_lstm_stacked_forward(ref["lstm_stacked_forward"], num_layers=2, bidirectional=True)
    check_lstm_stacked_forward(ref["lstm_stacked_forward"], num_layers=2, bidirectional=False)
    check_init_forget_bias(ref["init_forget_bias"])
    check_init_forget_bias(ref["init_forget_bias"], value=2.5, num_layers=3, seed=7)
    check_state_gradient_norms(ref["state_gradient_norms"])
    check_state_gradient_norms(ref["state_gradient_norms"], two_states=False)
    check_lstm_gradient_decays_slower(ref["state_gradient_norms"], ref["lstm_cell_forward"])
    check_recall_model(ref["recall_model"], ref["MEMORY_STEPS"])
    for function in PLAIN_CALLS + ("init_forget_bias", "state_gradient_norms"):
        passes_probe(LESSON, function, ref[function])


PLAIN_CALLS = (
    "lstm_gates",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_bidirectional_forward",
    "lstm_stacked_forward",
)


def test_checks_leave_the_notebooks_random_stream_alone(ref):
    """A test cell must not change what the notebook's next torch.randn returns."""
    before = torch.random.get_rng_state()
    check_lstm_gates(ref["lstm_gates"])
    check_lstm_cell_forward(ref["lstm_cell_forward"])
    check_lstm_stacked_forward(ref["lstm_stacked_forward"])
    check_init_forget_bias(ref["init_forget_bias"])
    check_state_gradient_norms(ref["state_gradient_norms"])
    check_lstm_gradient_decays_slower(ref["state_gradient_norms"], ref["lstm_cell_forward"])
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize(
    "check",
    [
        check_lstm_gates,
        check_lstm_cell_forward,
        check_lstm_forward,
        check_lstm_bidirectional_forward,
        check_lstm_stacked_forward,
        check_init_forget_bias,
        check_state_gradient_norms,
    ],
)
def test_stub_fails_with_a_clear_message(check):
    fails(check, not_implemented, match="not implemented yet")


def test_gates_read_back_from_torch_are_the_gates_of_the_equations():
    """The checks never write the equations; this test does, to prove the read-back is exact."""
    g = torch.Generator().manual_seed(0)
    B, D, H = 3, 4, 5
    x, h = torch.randn(B, D, generator=g, dtype=torch.float64), torch.randn(B, H, generator=g)
    h = h.double()
    cell = nn.LSTMCell(D, H).double()
    params = {name: p.detach() for name, p in cell.named_parameters()}
    z = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T
    z = z + params["bias_hh"]
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)
    expected = (z_i.sigmoid(), z_f.sigmoid(), z_g.tanh(), z_o.sigmoid())
    for got, want in zip(reference_lstm_gates(x, h, params), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- gates
def _preactivations(x, h, p, *, bias_ih=True, bias_hh=True, use_h=True):
    z = x @ p["weight_ih"].T
    z = z + (p["bias_ih"] if bias_ih else 0) + (p["bias_hh"] if bias_hh else 0)
    return z + (h @ p["weight_hh"].T if use_h else 0)  # (B, 4H)


def _gates(z, order=(0, 1, 2, 3), acts=("s", "s", "t", "s")):
    blocks = z.chunk(4, dim=1)
    fns = {"s": torch.sigmoid, "t": torch.tanh}
    return tuple(fns[a](blocks[k]) for k, a in zip(order, acts, strict=True))


GATE_BUGS = {
    "order f, i, g, o": (
        lambda x, h, p: _gates(_preactivations(x, h, p), order=(1, 0, 2, 3)),
        r"your i \(input gate\) is sigmoid\(block 1\); expected sigmoid\(block 0\)",
    ),
    "order i, f, o, g": (
        lambda x, h, p: _gates(_preactivations(x, h, p), order=(0, 1, 3, 2)),
        r"your g \(cell candidate\) is tanh\(block 3\)",
    ),
    "sigmoid for g": (
        lambda x, h, p: _gates(_preactivations(x, h, p), acts=("s", "s", "s", "s")),
        r"sigmoid\(block 2\); expected tanh\(block 2\)",
    ),
    "tanh for every gate": (
        lambda x, h, p: _gates(_preactivations(x, h, p), acts=("t", "t", "t", "t")),
        r"your i \(input gate\) is tanh\(block 0\)",
    ),
    "bias_ih missing": (
        lambda x, h, p: _gates(_preactivations(x, h, p, bias_ih=False)),
        "add bias_ih",
    ),
    "bias_hh missing": (
        lambda x, h, p: _gates(_preactivations(x, h, p, bias_hh=False)),
        "bias_hh is missing",
    ),
    "h_prev ignored": (
        lambda x, h, p: _gates(_preactivations(x, h, p, use_h=False)),
        r"h_prev @ weight_hh.T",
    ),
    "interleaved split": (
        lambda x, h, p: tuple(
            fn(v)
            for fn, v in zip(
                (torch.sigmoid, torch.sigmoid, torch.tanh, torch.sigmoid),
                _preactivations(x, h, p).reshape(x.shape[0], -1, 4).unbind(-1),
                strict=True,
            )
        ),
        "consecutive blocks of H",
    ),
    "weight_ih not transposed": (
        lambda x, h, p: _gates(x @ p["weight_ih"] + h @ p["weight_hh"].T),
        "RuntimeError",
    ),
    "one (B, 4H) tensor": (
        lambda x, h, p: torch.cat(_gates(_preactivations(x, h, p)), dim=1),
        "four tensors",
    ),
    "fixed float32": (
        lambda x, h, p: tuple(g.float() for g in _gates(_preactivations(x, h, p))),
        "dtype",
    ),
}


@pytest.mark.parametrize("bug", GATE_BUGS)
def test_gates_check_catches(bug):
    fn, hint = GATE_BUGS[bug]
    fails(check_lstm_gates, fn, match=hint)


def test_the_graders_gates_check_catches_what_visible_misses(ref):
    gates = ref["lstm_gates"]

    def squeezes(x, h, p):  # breaks for B = 1
        return tuple(g.squeeze() for g in gates(x, h, p))

    check_lstm_gates(squeezes)
    rejection(LESSON, "lstm_gates", squeezes, "case B = 1, D = 7, H = 2")

    def always_float64(x, h, p):
        return tuple(g.double() for g in gates(x, h, p))

    check_lstm_gates(always_float64)
    rejection(LESSON, "lstm_gates", always_float64, "float32: i has dtype torch.float64")


# ----------------------------------------------------------------------------- cell
def _cell(x, state, p, *, order=(0, 1, 2, 3), bias_hh=True, forget_h=False, tanh_c=True,
          c_in_h="new", input_gate=True, swap=False):  # fmt: skip
    h, c = state
    i, f, g, o = _gates(_preactivations(x, h, p, bias_hh=bias_hh), order=order)
    c_t = f * (h if forget_h else c) + (i * g if input_gate else g)
    shown = {"new": c_t, "old": c}[c_in_h]
    h_t = o * (torch.tanh(shown) if tanh_c else shown)
    return (c_t, h_t) if swap else (h_t, c_t)


CELL_BUGS = {
    "forget gate applied to h_prev": (dict(forget_h=True), "multiplies c_prev, not h_prev"),
    "tanh missing on c_t": (dict(tanh_c=False), r"h_t = o \* tanh\(c_t\)"),
    "h_t from c_prev": (dict(c_in_h="old"), "tanh of the new cell state"),
    "gate order f, i, g, o": (dict(order=(1, 0, 2, 3)), "order i, f, g, o"),
    "gate order i, f, o, g": (dict(order=(0, 1, 3, 2)), "order i, f, g, o"),
    "bias_hh missing": (dict(bias_hh=False), "bias_hh is missing"),
    "input gate missing": (dict(input_gate=False), "scaled by the input gate"),
    "returns (c, h)": (dict(swap=True), r"return \(h_t, c_t\)"),
}


@pytest.mark.parametrize("bug", CELL_BUGS)
def test_cell_check_catches(bug):
    options, hint = CELL_BUGS[bug]
    fails(check_lstm_cell_forward, lambda x, s, p: _cell(x, s, p, **options), match=hint)


def test_cell_check_names_shape_and_type_errors():
    fails(
        check_lstm_cell_forward,
        lambda x, s, p: _cell(x, s, p)[0],
        match=r"should be a pair \(h, c\)",
    )
    fails(
        check_lstm_cell_forward,
        lambda x, s, p: tuple(v[:, :3] for v in _cell(x, s, p)),
        match=r"has shape \(4, 3\); expected \(B, H\) = \(4, 5\)",
    )


def test_the_graders_cell_check_catches_torch_and_squeeze(ref):
    cell_forward = ref["lstm_cell_forward"]

    def calls_torch(x, state, p):
        cell = nn.LSTMCell(p["weight_ih"].shape[1], p["weight_hh"].shape[1]).to(x.dtype)
        with torch.no_grad():
            for name, value in p.items():
                getattr(cell, name).copy_(value)
        return cell(x, state)

    check_lstm_cell_forward(calls_torch)  # the visible check cannot tell ...
    rejection(LESSON, "lstm_cell_forward", calls_torch, "built-in LSTM")  # the grader's can

    def squeezes(x, state, p):
        return tuple(v.squeeze() for v in cell_forward(x, state, p))

    check_lstm_cell_forward(squeezes)
    rejection(LESSON, "lstm_cell_forward", squeezes, "case B = 1, D = 6, H = 3")


# ----------------------------------------------------------------------------- layer
def layer_bugs(cell):
    def run(X, state0, p, *, carry_h=True, carry_c=True, order=None, use_state0=True, out="h"):
        B, H = X.shape[0], p["weight_hh"].shape[1]
        zeros = X.new_zeros(B, H)
        h0, c0 = state0 if (state0 is not None and use_state0) else (zeros, zeros)
        h, c, hs, cs = h0, c0, [], []
        for t in order or range(X.shape[1]):
            h_new, c_new = cell(X[:, t], (h, c), p)
            hs.append(h_new), cs.append(c_new)
            h, c = (h_new if carry_h else h0), (c_new if carry_c else c0)
        return torch.stack(hs if out == "h" else cs, 1), (hs[-1], cs[-1])

    return {
        "state not carried": (
            lambda X, s, p: run(X, s, p, carry_h=False, carry_c=False),
            "c_t must be carried",
        ),
        "c not carried": (lambda X, s, p: run(X, s, p, carry_c=False), "c_t must be carried"),
        "h not carried": (lambda X, s, p: run(X, s, p, carry_h=False), "h as well as c"),
        "state0 ignored": (lambda X, s, p: run(X, s, p, use_state0=False), "h0 and c0 used"),
        "reversed time": (
            lambda X, s, p: run(X, s, p, order=range(X.shape[1] - 1, -1, -1)),
            r"X\[:, t\]",
        ),
        "cell states as outputs": (
            lambda X, s, p: run(X, s, p, out="c"),
            "H_all holds the cell states",
        ),
        "first state as last": (
            lambda X, s, p: (lambda o, hc: (o, (o[:, 0], hc[1])))(*run(X, s, p)),
            r"H_all\[:, -1\]",
        ),
        "time-major outputs": (
            lambda X, s, p: (lambda o, hc: (o.transpose(0, 1), hc))(*run(X, s, p)),
            r"outputs has shape \(6, 3, 5\); expected \(B, T, H\)",
        ),
        "no cell state returned": (
            lambda X, s, p: (lambda o, hc: (o, hc[0]))(*run(X, s, p)),
            r"\(outputs, \(h, c\)\)",
        ),
    }


def test_layer_check_catches_typical_bugs(ref):
    for name, (fn, hint) in layer_bugs(ref["lstm_cell_forward"]).items():
        with pytest.raises(CheckFailed, match=hint):
            check_lstm_forward(fn)
            check_lstm_forward(fn, zero_state=True)
            pytest.fail(f"check_lstm_forward accepted: {name}")


def test_the_graders_layer_check_catches_single_step_bug_and_torch(ref):
    cell = ref["lstm_cell_forward"]

    def first_step_outside_the_loop(X, state0, p):  # the final state is unbound when T = 1
        B, H = X.shape[0], p["weight_hh"].shape[1]
        state = state0 if state0 is not None else (X.new_zeros(B, H), X.new_zeros(B, H))
        h, c = cell(X[:, 0], state, p)
        outputs = [h]
        for t in range(1, X.shape[1]):
            h_t, c_t = cell(X[:, t], (h, c), p)
            outputs.append(h_t)
            h, c = h_t, c_t
        return torch.stack(outputs, 1), (h_t, c_t)  # noqa: F821 - the bug under test

    check_lstm_forward(first_step_outside_the_loop)
    rejection(LESSON, "lstm_forward", first_step_outside_the_loop, "case B = 2, T = 1")

    def calls_torch(X, state0, p):
        lstm = nn.LSTM(p["weight_ih"].shape[1], p["weight_hh"].shape[1], batch_first=True)
        lstm = lstm.to(X.dtype)
        with torch.no_grad():
            for name, value in p.items():
                getattr(lstm, f"{name}_l0").copy_(value)
        state = None if state0 is None else tuple(s.unsqueeze(0) for s in state0)
        out, (h, c) = lstm(X, state)
        return out, (h[0], c[0])

    check_lstm_forward(calls_torch)
    rejection(LESSON, "lstm_forward", calls_torch, "built-in LSTM")


# ----------------------------------------------------------------------------- bidirectional
def bidirectional_bugs(forward):
    def bi(X, state0, pf, pb, *, reverse=True, flip_back=True, swap=False, last=False,
           swap_rows=False, bwd_params=True):  # fmt: skip
        sf = sb = None
        if state0 is not None:
            h0, c0 = state0
            sf, sb = (h0[0], c0[0]), (h0[1], c0[1])
            if swap_rows:
                sf, sb = sb, sf
        out_f, (hf, cf) = forward(X, sf, pf)
        out_b, (hb, cb) = forward(X.flip(1) if reverse else X, sb, pb if bwd_params else pf)
        out_b = out_b.flip(1) if (reverse and flip_back) else out_b
        if last:
            hb = out_b[:, -1]
        halves = [out_b, out_f] if swap else [out_f, out_b]
        return torch.cat(halves, -1), (torch.stack([hf, hb]), torch.stack([cf, cb]))

    return {
        "backward not reversed": (dict(reverse=False), "original order"),
        "not flipped back": (dict(flip_back=False), "flip them back"),
        "halves swapped": (dict(swap=True), "swapped"),
        "backward final state at t = T": (dict(last=True), "ends at t = 1"),
        "state rows swapped": (dict(swap_rows=True), r"\(h0\[0\], c0\[0\]\)"),
        "forward parameters twice": (dict(bwd_params=False), "params_bwd"),
    }, bi


def test_bidirectional_check_catches_typical_bugs(ref):
    bugs, bi = bidirectional_bugs(ref["lstm_forward"])
    for name, (options, hint) in bugs.items():
        with pytest.raises(CheckFailed, match=hint):
            check_lstm_bidirectional_forward(lambda *a, o=options: bi(*a, **o))
            pytest.fail(f"check_lstm_bidirectional_forward accepted: {name}")


def test_bidirectional_check_names_the_shape():
    def time_major_states(X, state0, pf, pb):
        B, T, H = X.shape[0], X.shape[1], pf["weight_hh"].shape[1]
        return X.new_zeros(B, T, 2 * H), (X.new_zeros(B, 2, H), X.new_zeros(B, 2, H))

    fails(
        check_lstm_bidirectional_forward,
        time_major_states,
        match=r"\(h\) has shape \(3, 2, 3\); expected \(2, B, H\)",
    )


def test_the_graders_bidirectional_check_catches_torch(ref):
    def calls_torch(X, state0, pf, pb):
        D, H = pf["weight_ih"].shape[1], pf["weight_hh"].shape[1]
        lstm = nn.LSTM(D, H, bidirectional=True, batch_first=True).to(X.dtype)
        with torch.no_grad():
            for name in pf:
                getattr(lstm, f"{name}_l0").copy_(pf[name])
                getattr(lstm, f"{name}_l0_reverse").copy_(pb[name])
        return lstm(X, state0)

    check_lstm_bidirectional_forward(calls_torch)
    rejection(LESSON, "lstm_bidirectional_forward", calls_torch, "built-in LSTM")


# ----------------------------------------------------------------------------- stacked
def stacked_bugs(ref):
    forward, bidir, pick = (
        ref["lstm_forward"],
        ref["lstm_bidirectional_forward"],
        ref["layer_params"],
    )

    def stacked(X, state0, params, num_layers, bidirectional=False, *, feed_x=False,
                direction_major=False, first_out=False, rows="right", use_state=True):  # fmt: skip
        dirs = 2 if bidirectional else 1
        inputs, hs, cs, outs = X, [], [], []
        for k in range(num_layers):
            index = {"right": slice(k * dirs, (k + 1) * dirs), "k": slice(k, k + dirs)}[rows]
            start = (state0[0][index], state0[1][index]) if state0 and use_state else None
            layer_in = X if feed_x else inputs
            if bidirectional:
                inputs, (h, c) = bidir(layer_in, start, pick(params, k), pick(params, k, True))
            else:
                start = None if start is None else (start[0][0], start[1][0])
                inputs, (h, c) = forward(layer_in, start, pick(params, k))
                h, c = h[None], c[None]
            outs.append(inputs), hs.append(h), cs.append(c)
        h_n, c_n = torch.cat(hs), torch.cat(cs)
        if direction_major and dirs == 2:
            order = torch.arange(num_layers * dirs).reshape(num_layers, dirs).T.reshape(-1)
            h_n, c_n = h_n[order], c_n[order]
        return (outs[0] if first_out else inputs), (h_n, c_n)

    return stacked, {
        "every layer reads X": (dict(feed_x=True), "raised RuntimeError"),
        "rows direction-major": (dict(direction_major=True), "ordered layer by layer"),
        "outputs of the first layer": (dict(first_out=True), "LAST layer"),
        "state rows k instead of k * dirs": (dict(rows="k"), "the layers above are not"),
        "state0 ignored": (dict(use_state=False), "Layer 0 is already wrong"),
    }


def test_stacked_check_catches_typical_bugs(ref):
    stacked, bugs = stacked_bugs(ref)
    for name, (options, hint) in bugs.items():
        with pytest.raises(CheckFailed, match=hint):
            check_lstm_stacked_forward(lambda *a, o=options: stacked(*a, **o))
            pytest.fail(f"check_lstm_stacked_forward accepted: {name}")


def test_stacked_check_catches_a_unidirectional_bug(ref):
    stacked, _ = stacked_bugs(ref)
    check_lstm_stacked_forward(stacked, bidirectional=False)

    def unsqueezed_twice(X, state0, params, num_layers, bidirectional=False):
        out, (h, c) = stacked(X, state0, params, num_layers, bidirectional)
        return out, (h[:, None], c[:, None]) if not bidirectional else (h, c)

    fails(
        check_lstm_stacked_forward,
        unsqueezed_twice,
        bidirectional=False,
        match=r"expected \(num_layers \* 1, B, H\)",
    )


def test_the_graders_stacked_check_catches_torch_and_fixed_depth(ref):
    stacked = ref["lstm_stacked_forward"]

    def calls_torch(X, state0, params, num_layers, bidirectional=False):
        D, H = params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1]
        lstm = nn.LSTM(D, H, num_layers, bidirectional=bidirectional, batch_first=True)
        lstm = lstm.to(X.dtype)
        with torch.no_grad():
            for name, p in lstm.named_parameters():
                p.copy_(params[name])
        return lstm(X, state0)

    check_lstm_stacked_forward(calls_torch)
    rejection(LESSON, "lstm_stacked_forward", calls_torch, "built-in LSTM")

    def two_layers_always(X, state0, params, num_layers, bidirectional=False):
        return stacked(X, state0, params, 2, bidirectional)

    check_lstm_stacked_forward(two_layers_always)
    rejection(LESSON, "lstm_stacked_forward", two_layers_always, "case L = 3")


# ----------------------------------------------------------------------------- forget bias
def _set_bias(lstm, value, *, block=1, both=False, layers=None, reverse=True, no_grad=True):
    H = lstm.hidden_size
    rows = slice(block * H, (block + 1) * H)
    context = torch.no_grad() if no_grad else mock.MagicMock()
    with context:
        for name, p in lstm.named_parameters():
            layer = int(name.split("_l")[1][0]) if "_l" in name else 0
            if layers is not None and layer not in layers:
                continue
            if name.endswith("_reverse") and not reverse:
                continue
            if name.startswith("bias_ih"):
                p[rows] = value
            elif name.startswith("bias_hh"):
                p[rows] = value if both else 0.0
    return lstm


INIT_BUGS = {
    "input gate block": (dict(block=0), r"changed the input gate \(i\) block"),
    "both biases set": (dict(both=True), r"bias_ih \+ bias_hh = 2"),
    "layer 0 only": (dict(layers=(0,)), "layer 1"),
    "forward direction only": (dict(reverse=False), "reverse direction"),
    "no torch.no_grad": (dict(no_grad=False), "torch.no_grad"),
}


@pytest.mark.parametrize("bug", INIT_BUGS)
def test_init_forget_bias_check_catches(bug):
    options, hint = INIT_BUGS[bug]
    fails(check_init_forget_bias, lambda lstm, v: _set_bias(lstm, v, **options), match=hint)


def test_init_forget_bias_check_catches_new_module_and_weights():
    def new_module(lstm, value):
        return _set_bias(
            nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, bidirectional=True), value
        )

    fails(check_init_forget_bias, new_module, match="in place")

    def touches_weights(lstm, value):
        with torch.no_grad():
            lstm.weight_hh_l0[lstm.hidden_size : 2 * lstm.hidden_size] = 0
        return _set_bias(lstm, value)

    fails(check_init_forget_bias, touches_weights, match="changed weight_hh_l0")


# ----------------------------------------------------------------------------- gradients
def norms_bugs():
    def run(step, X, state0, *, grad_of="h", detach=False, reduce="sum", power=1, flip=False,
            with_h0=False):  # fmt: skip
        X = X.detach().requires_grad_()
        state, hs = state0, []
        if with_h0:
            state = (state0[0].detach().requires_grad_(), *state0[1:])
            hs.append(state[0])
        for t in range(X.shape[1]):
            state = step(X[:, t], state)
            if detach:
                state = tuple(s.detach().requires_grad_() for s in state)
            hs.append(state[0])
        loss = hs[-1].sum() if reduce == "sum" else hs[-1].mean()
        if grad_of == "x":
            grads = torch.autograd.grad(loss, X)[0].unbind(1)
        else:
            grads = torch.autograd.grad(loss, hs[:-1] if with_h0 else hs, allow_unused=True)
            grads = [torch.zeros_like(hs[-1]) if g is None else g for g in grads]
        norms = torch.stack([g.norm() ** power for g in grads])
        return norms.flip(0) if flip else norms

    return {
        "reversed": (dict(flip=True), "order is reversed"),
        "includes h_0, drops h_T": (dict(with_h0=True), "off by one"),
        "gradient wrt inputs": (dict(grad_of="x"), "with respect to the inputs"),
        "squared norms": (dict(power=2), "squared norms"),
        "mean instead of sum": (dict(reduce="mean"), "not the mean"),
        "states detached": (dict(detach=True), "only the last step"),
    }, run


def test_gradient_norms_check_catches_typical_bugs():
    bugs, run = norms_bugs()
    for name, (options, hint) in bugs.items():
        with pytest.raises(CheckFailed, match=hint):
            check_state_gradient_norms(lambda *a, o=options: run(*a, **o))
            pytest.fail(f"check_state_gradient_norms accepted: {name}")


def test_gradient_norms_that_change_the_callers_X_fail_both_checks(ref):
    norms = ref["state_gradient_norms"]

    def no_detach(step, X, state0):  # right norms, but the caller's X now requires grad
        X.requires_grad_()
        return norms(step, X, state0)

    fails(check_state_gradient_norms, no_detach, match="changed X")
    rejection(LESSON, "state_gradient_norms", no_detach, "changed X")


def test_gradient_norms_check_catches_shape_and_type_bugs(ref):
    norms = ref["state_gradient_norms"]
    fails(
        check_state_gradient_norms,
        lambda *a: norms(*a).tolist(),
        match="should be a torch.Tensor",
    )
    fails(
        check_state_gradient_norms,
        lambda *a: norms(*a)[None].expand(3, -1),
        match=r"expected \(T,\), one entry per time step",
    )

    def misses_the_c_path(step, X, state0):  # only one state: nothing to miss
        if len(state0) == 1:
            return norms(step, X, state0)
        return norms(lambda x_t, s: (step(x_t, s)[0], s[1]), X, state0)

    check_state_gradient_norms(misses_the_c_path, two_states=False)
    fails(check_state_gradient_norms, misses_the_c_path, match="whole batch")


def test_decay_rate_is_the_log10_slope():
    assert decay_rate(10.0 ** (0.25 * torch.arange(8))) == pytest.approx(0.25)
    assert decay_rate([1e-3, 1e-2, 1e-1]) == pytest.approx(1.0)


def test_decay_check_fails_when_the_cell_state_path_is_broken(ref):
    norms = ref["state_gradient_norms"]

    def forget_on_h(x, s, p):
        return _cell(x, s, p, forget_h=True)

    fails(check_lstm_gradient_decays_slower, norms, forget_on_h, match="forget gate applied")
    fails(
        check_lstm_gradient_decays_slower,
        lambda *a: norms(*a).flip(0),
        ref["lstm_cell_forward"],
        match="do not grow towards the last step",
    )


# ----------------------------------------------------------------------------- memory task
def test_recall_batch_puts_the_answer_first():
    X, y = recall_batch(64, 10, 4, 3, generator=torch.Generator().manual_seed(0))
    assert X.shape == (64, 10) and y.shape == (64,)
    assert torch.equal(X[:, 0], y) and int(y.max()) < 4
    assert int(X[:, 1:].min()) >= 4 and int(X[:, 1:].max()) < 7  # distractors only
    assert len(set(y.tolist())) == 4


def test_recall_check_fails_untrained_half_right_and_broken_models(ref):
    torch.manual_seed(0)
    untrained = ref["RecallLSTM"](ref["VOCAB_SIZE"], 32, ref["NUM_SYMBOLS"])
    fails(check_recall_model, untrained, ref["MEMORY_STEPS"], match="at chance")

    def half_right(X):  # knows whether the symbol is in {A, B} or {C, D}, guesses within
        pair = (X[:, 0] // 2) * 2
        return F.one_hot(pair, 4).float()

    fails(check_recall_model, half_right, ref["MEMORY_STEPS"], match="train longer")

    def broken(X):
        raise RuntimeError("shape mismatch")

    fails(check_recall_model, broken, ref["MEMORY_STEPS"], match="running the model")


# ----------------------------------------------------------------------------- figures
def test_lstm_figures_draw_on_axes():
    fig, axes = plt.subplots(4, 1)
    assert draw_lstm_cell(ax=axes[0]) is axes[0] and len(axes[0].patches) > 15
    gates = {"f_t": torch.rand(6, 3), "c_t": torch.randn(6, 3)}
    drawn = plot_gate_activations(
        gates, ax=axes[1:3], xticklabels="abcdef", ranges={"c_t": (-2, 2)}
    )
    assert drawn[0].images[0].get_clim() == (0.0, 1.0)
    assert drawn[1].images[0].get_clim() == (-2, 2)
    plot_runs({"a": [[3, 2, 1], [3, 1, 0.5]], "b": [[2, 2, 2]]}, ax=axes[3])
    assert len(axes[3].lines) == 5  # three runs and two medians
    plt.close(fig)


# ----------------------------------------------------------------------------- alternatives
def lstm_cell_forward_in_place(ref):
    """An LSTM step that updates the cell state it was given (c_prev) in place."""
    lstm_gates = ref["lstm_gates"]

    def lstm_cell_forward(x_t, state, params):
        h_prev, c = state
        i, f, g, o = lstm_gates(x_t, h_prev, params)
        c.mul_(f).add_(i * g)  # changes c_prev
        return o * torch.tanh(c), c

    return lstm_cell_forward


def test_an_lstm_step_that_updates_its_cell_state_in_place_gets_full_marks(ref, monkeypatch):
    answer = lstm_cell_forward_in_place(ref)
    check_lstm_cell_forward(answer)
    passes_probe(LESSON, "lstm_cell_forward", answer)
    monkeypatch.setattr(checks_core, "_copy", lambda value: value)  # what the copies fix
    with pytest.raises(CheckFailed):
        check_lstm_cell_forward(answer)
