"""Lesson 03: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import pytest
import torch
import torch.nn.functional as F

from rnncourse.checks import (
    check_init_forget_bias,
    check_lstm_bidirectional_forward,
    check_lstm_cell_forward,
    check_lstm_forward,
    check_lstm_gates,
    check_lstm_stacked_forward,
    check_state_gradient_norms,
)
from tests.course import by_name, lesson_functions
from tests.integrity_support import passes_probe

LESSON = "03_lstm"

layer_params = lesson_functions("03_lstm", "layer_params")["layer_params"]


# ----------------------------------------------------------------------------- lstm_gates
def gates_per_block(x_t, h_prev, params):
    """Four separate matmuls, one block of H rows of the weights each."""
    H = params["weight_hh"].shape[1]
    acts = (torch.sigmoid, torch.sigmoid, torch.tanh, torch.sigmoid)
    out = []
    for k, act in enumerate(acts):
        rows = slice(k * H, (k + 1) * H)
        z = x_t @ params["weight_ih"][rows].T + h_prev @ params["weight_hh"][rows].T
        out.append(act(z + params["bias_ih"][rows] + params["bias_hh"][rows]))
    return tuple(out)


def gates_f_linear_split(x_t, h_prev, params):
    z = F.linear(x_t, params["weight_ih"], params["bias_ih"]) + F.linear(
        h_prev, params["weight_hh"], params["bias_hh"]
    )
    i, f, g, o = torch.split(z, params["weight_hh"].shape[1], dim=-1)
    return i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()


def gates_one_matmul(x_t, h_prev, params):
    """One matmul on [x, h], the gates from one (B, 4H) tensor by chunk."""
    W = torch.cat([params["weight_ih"], params["weight_hh"]], dim=1)  # (4H, D + H)
    z = torch.cat([x_t, h_prev], dim=1) @ W.T + params["bias_ih"] + params["bias_hh"]
    sig = torch.sigmoid(z)
    i, f, _, o = sig.chunk(4, 1)
    return i, f, torch.tanh(z.chunk(4, 1)[2]), o


def gates_float64_inside(x_t, h_prev, params):
    p = {k: v.double() for k, v in params.items()}
    gates = gates_per_block(x_t.double(), h_prev.double(), p)
    return tuple(g.to(x_t.dtype) for g in gates)


GATES = [gates_per_block, gates_f_linear_split, gates_one_matmul, gates_float64_inside]


# ----------------------------------------------------------------------------- lstm_cell_forward
def cell_addcmul(x_t, state, params):
    h_prev, c_prev = state
    i, f, g, o = gates_f_linear_split(x_t, h_prev, params)
    c_t = torch.addcmul(i * g, f, c_prev)
    return torch.mul(o, c_t.tanh()), c_t


def cell_inline(x_t, state, params):
    """The gates written inside the cell, one matmul on [x, h]."""
    h, c = state
    i, f, g, o = gates_one_matmul(x_t, h, params)
    c = c * f + g * i
    return o * torch.tanh(c), c


def cell_in_place(x_t, state, params):
    h_prev, c = state
    i, f, g, o = gates_per_block(x_t, h_prev, params)
    c.mul_(f).add_(i * g)  # changes c_prev
    return o * c.tanh(), c


CELLS = [cell_addcmul, cell_inline, cell_in_place]


# ----------------------------------------------------------------------------- lstm_forward
def forward_preallocated(X, state0, params):
    B, T, _ = X.shape
    H = params["weight_hh"].shape[1]
    H_all = torch.empty(B, T, H, dtype=X.dtype, device=X.device)
    h, c = state0 if state0 is not None else (X.new_zeros(B, H), X.new_zeros(B, H))
    for t in range(T):
        h, c = cell_addcmul(X[:, t], (h, c), params)
        H_all[:, t] = h
    return H_all, (h, c)


def forward_inputs_first(X, state0, params):
    """Every input projection in one matmul before the loop."""
    B, T, _ = X.shape
    H = params["weight_hh"].shape[1]
    Z = X @ params["weight_ih"].T + params["bias_ih"] + params["bias_hh"]  # (B, T, 4H)
    h, c = (X.new_zeros(B, H), X.new_zeros(B, H)) if state0 is None else state0
    hs = []
    for t in range(T):
        i, f, g, o = (Z[:, t] + h @ params["weight_hh"].T).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1), (h, c)


def forward_unbind(X, state0, params):
    zeros = torch.zeros(X.size(0), params["weight_hh"].size(1), dtype=X.dtype, device=X.device)
    state = (zeros, zeros.clone()) if state0 is None else tuple(state0)
    outputs = []
    for x_t in torch.unbind(X, dim=1):
        state = cell_inline(x_t, state, params)
        outputs.append(state[0])
    return torch.stack(outputs).permute(1, 0, 2), state


FORWARDS = [forward_preallocated, forward_inputs_first, forward_unbind]


# ----------------------------------------------------------------------------- bidirectional
def bi_torch_flip(X, state0, params_fwd, params_bwd):
    """torch.flip for the reverse direction, states split with unbind."""
    fwd = bwd = None
    if state0 is not None:
        (h0f, h0b), (c0f, c0b) = state0[0].unbind(0), state0[1].unbind(0)
        fwd, bwd = (h0f, c0f), (h0b, c0b)
    out_f, (hf, cf) = forward_inputs_first(X, fwd, params_fwd)
    out_b, (hb, cb) = forward_inputs_first(torch.flip(X, dims=[1]), bwd, params_bwd)
    return torch.cat([out_f, torch.flip(out_b, dims=[1])], 2), (
        torch.stack([hf, hb]),
        torch.stack([cf, cb]),
    )


def bi_reversed_loop(X, state0, params_fwd, params_bwd):
    """The backward direction walks t = T-1 .. 0 itself and writes each output at t."""
    B, T, _ = X.shape
    H = params_fwd["weight_hh"].shape[1]
    zero = X.new_zeros(B, H)
    if state0 is None:
        state0 = (torch.stack([zero, zero]), torch.stack([zero, zero]))
    out = X.new_zeros(B, T, 2 * H)
    h, c = state0[0][0], state0[1][0]
    for t in range(T):
        h, c = cell_addcmul(X[:, t], (h, c), params_fwd)
        out[:, t, :H] = h
    hb, cb = state0[0][1], state0[1][1]
    for t in reversed(range(T)):
        hb, cb = cell_addcmul(X[:, t], (hb, cb), params_bwd)
        out[:, t, H:] = hb
    return out, (torch.stack([h, hb]), torch.stack([c, cb]))


def bi_index_reversed(X, state0, params_fwd, params_bwd):
    """The reversal by an index tensor instead of flip."""
    rev = torch.arange(X.shape[1] - 1, -1, -1, device=X.device)
    s_f = s_b = None
    if state0 is not None:
        s_f, s_b = (state0[0][0], state0[1][0]), (state0[0][1], state0[1][1])
    out_f, (hf, cf) = forward_unbind(X, s_f, params_fwd)
    out_b, (hb, cb) = forward_unbind(X[:, rev], s_b, params_bwd)
    outputs = torch.stack([out_f, out_b[:, rev]], dim=2).flatten(2)  # [fwd h, bwd h] per t
    return outputs, (torch.stack((hf, hb)), torch.stack((cf, cb)))


BIS = [bi_torch_flip, bi_reversed_loop, bi_index_reversed]


# ----------------------------------------------------------------------------- stacked
def stacked_loop(X, state0, params, num_layers, bidirectional=False):
    dirs = 1 + int(bidirectional)
    hs, cs, inp = [], [], X
    for k in range(num_layers):
        rows = range(k * dirs, (k + 1) * dirs)
        outs = []
        for d, row in enumerate(rows):
            p = layer_params(params, k, reverse=d == 1)
            start = None if state0 is None else (state0[0][row], state0[1][row])
            seq = inp.flip(1) if d == 1 else inp
            out, (h, c) = forward_preallocated(seq, start, p)
            outs.append(out.flip(1) if d == 1 else out)
            hs.append(h)
            cs.append(c)
        inp = torch.cat(outs, dim=-1)
    return inp, (torch.stack(hs), torch.stack(cs))


def stacked_recursive(X, state0, params, num_layers, bidirectional=False):
    """Layers by recursion: the top layer reads what the stack below returns."""
    if num_layers == 0:
        return X, (X.new_zeros(0), X.new_zeros(0))
    dirs = 2 if bidirectional else 1
    below, (h_low, c_low) = stacked_recursive(X, state0, params, num_layers - 1, bidirectional)
    k = num_layers - 1
    rows = slice(k * dirs, num_layers * dirs)
    start = None if state0 is None else (state0[0][rows], state0[1][rows])
    if bidirectional:
        out, (h, c) = bi_torch_flip(
            below, start, layer_params(params, k), layer_params(params, k, True)
        )
    else:
        one = None if start is None else (start[0][0], start[1][0])
        out, (h, c) = forward_unbind(below, one, layer_params(params, k))
        h, c = h[None], c[None]
    h_low = h_low.reshape(-1, *h.shape[1:])
    c_low = c_low.reshape(-1, *c.shape[1:])
    return out, (torch.cat([h_low, h]), torch.cat([c_low, c]))


def stacked_names(X, state0, params, num_layers, bidirectional=False):
    """Parameters looked up by name directly, the states gathered in a preallocated tensor."""
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    B = X.shape[0]
    h_n = X.new_zeros(num_layers * dirs, B, H)
    c_n = torch.zeros_like(h_n)
    inp = X
    for k in range(num_layers):
        outs = []
        for d, suffix in enumerate(["", "_reverse"][:dirs]):
            p = {
                n: params[f"{n}_l{k}{suffix}"]
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            row = k * dirs + d
            start = None if state0 is None else (state0[0][row], state0[1][row])
            seq = torch.flip(inp, [1]) if d else inp
            out, (h_n[row], c_n[row]) = forward_inputs_first(seq, start, p)
            outs.append(torch.flip(out, [1]) if d else out)
        inp = torch.cat(outs, -1)
    return inp, (h_n, c_n)


STACKS = [stacked_loop, stacked_recursive, stacked_names]


# ----------------------------------------------------------------------------- init_forget_bias
def forget_split_in_half(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias"):
                p[H : 2 * H] = value / 2
    return lstm


def forget_keep_hh(lstm, value=1.0):
    """bias_ih set so that the sum is the value, bias_hh left as it was; returns None."""
    H = lstm.hidden_size
    params = dict(lstm.named_parameters())
    for name in params:
        if name.startswith("bias_ih"):
            hh = params[name.replace("bias_ih", "bias_hh")]
            params[name].data[H : 2 * H] = value - hh.data[H : 2 * H]


def forget_fill_views(lstm, value=1.0):
    H = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            for suffix in ("", "_reverse") if lstm.bidirectional else ("",):
                getattr(lstm, f"bias_ih_l{layer}{suffix}")[H : 2 * H].fill_(value)
                getattr(lstm, f"bias_hh_l{layer}{suffix}")[H : 2 * H].zero_()
    return lstm


FORGETS = [forget_split_in_half, forget_keep_hh, forget_fill_views]


# ----------------------------------------------------------------------------- state_gradient_norms
def norms_retain_grad(step, X, state0):
    """retain_grad() on every h_t, then one backward pass."""
    X = X.detach().clone().requires_grad_(True)
    state, hs = state0, []
    for x_t in X.unbind(1):
        state = step(x_t, state)
        state[0].retain_grad()
        hs.append(state[0])
    hs[-1].sum().backward()
    return torch.stack([h.grad.norm() for h in hs])


def norms_one_at_a_time(step, X, state0):
    """One autograd.grad per step (slower, as right)."""
    X = X.detach().requires_grad_()
    state, hs = state0, []
    for t in range(X.shape[1]):
        state = step(X[:, t], state)
        hs.append(state[0])
    L = hs[-1].sum()
    out = [torch.autograd.grad(L, h, retain_graph=True)[0].norm() for h in hs]
    return torch.stack(out).detach()


def norms_vector_norm(step, X, state0):
    X = X.detach().requires_grad_()
    state, hs = state0, []
    for t in range(X.shape[1]):
        state = step(X[:, t], state)
        hs.append(state[0])
    grads = torch.autograd.grad(hs[-1].sum(), hs)
    return torch.linalg.vector_norm(torch.stack(grads).flatten(1), dim=1)


NORMS = [norms_retain_grad, norms_one_at_a_time, norms_vector_norm]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", GATES, ids=by_name)
def test_lstm_gates_alternatives_pass(answer):
    check_lstm_gates(answer)
    passes_probe(LESSON, "lstm_gates", answer)


@pytest.mark.parametrize("answer", CELLS, ids=by_name)
def test_lstm_cell_forward_alternatives_pass(answer):
    check_lstm_cell_forward(answer)
    passes_probe(LESSON, "lstm_cell_forward", answer)


@pytest.mark.parametrize("answer", FORWARDS, ids=by_name)
def test_lstm_forward_alternatives_pass(answer):
    check_lstm_forward(answer)
    check_lstm_forward(answer, zero_state=True)
    passes_probe(LESSON, "lstm_forward", answer)


@pytest.mark.parametrize("answer", BIS, ids=by_name)
def test_lstm_bidirectional_forward_alternatives_pass(answer):
    check_lstm_bidirectional_forward(answer)
    check_lstm_bidirectional_forward(answer, zero_state=True)
    passes_probe(LESSON, "lstm_bidirectional_forward", answer)


@pytest.mark.parametrize("answer", STACKS, ids=by_name)
def test_lstm_stacked_forward_alternatives_pass(answer):
    check_lstm_stacked_forward(answer)
    check_lstm_stacked_forward(answer, bidirectional=False, num_layers=3)
    passes_probe(LESSON, "lstm_stacked_forward", answer)


@pytest.mark.parametrize("answer", FORGETS, ids=by_name)
def test_init_forget_bias_alternatives_pass(answer):
    check_init_forget_bias(answer)
    check_init_forget_bias(answer, value=3.0, num_layers=1)
    passes_probe(LESSON, "init_forget_bias", answer)


@pytest.mark.parametrize("answer", NORMS, ids=by_name)
def test_state_gradient_norms_alternatives_pass(answer):
    check_state_gradient_norms(answer)
    check_state_gradient_norms(answer, two_states=False)
    passes_probe(LESSON, "state_gradient_norms", answer)
