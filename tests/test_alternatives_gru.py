"""Lesson 04: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    check_adding_baseline,
    check_gru_cell_forward,
    check_gru_convention,
    check_gru_forward,
    check_recurrent_num_params,
)
from tests.course import by_name
from tests.integrity_support import passes_probe

LESSON = "04_gru"


# ----------------------------------------------------------------------------- gru_cell_forward
def cell_split_weights(x_t, h_prev, params):
    """Each gate's weights sliced out by block, one matmul per term."""
    H = h_prev.shape[1]
    W_i, W_h, b_i, b_h = (params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def block(W, k):
        return W[k * H : (k + 1) * H]

    r = torch.sigmoid(
        x_t @ block(W_i, 0).T + block(b_i, 0) + h_prev @ block(W_h, 0).T + block(b_h, 0)
    )
    z = torch.sigmoid(
        x_t @ block(W_i, 1).T + block(b_i, 1) + h_prev @ block(W_h, 1).T + block(b_h, 1)
    )
    n = torch.tanh(
        x_t @ block(W_i, 2).T + block(b_i, 2) + r * (h_prev @ block(W_h, 2).T + block(b_h, 2))
    )
    return n + z * (h_prev - n)  # the same interpolation, rearranged


def cell_f_linear(x_t, h_prev, params):
    gx = F.linear(x_t, params["weight_ih"], params["bias_ih"])
    gh = F.linear(h_prev, params["weight_hh"], params["bias_hh"])
    H = h_prev.size(1)
    rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    return torch.lerp(n, h_prev, z)


def cell_float64_inside(x_t, h_prev, params):
    p = {k: v.double() for k, v in params.items()}
    return cell_f_linear(x_t.double(), h_prev.double(), p).to(x_t.dtype)


CELLS = [cell_split_weights, cell_f_linear, cell_float64_inside]


# ----------------------------------------------------------------------------- gru_forward
def forward_preallocated(X, h0, params):
    B, T, _ = X.shape
    H = params["weight_hh"].shape[1]
    out = torch.empty(B, T, H, dtype=X.dtype, device=X.device)
    h = torch.zeros(B, H, dtype=X.dtype, device=X.device) if h0 is None else h0
    for t in range(T):
        out[:, t] = h = cell_f_linear(X[:, t], h, params)
    return out, h


def forward_inputs_first(X, h0, params):
    """The input projections of every step in one matmul before the loop."""
    H = params["weight_hh"].shape[1]
    Gx = X @ params["weight_ih"].T + params["bias_ih"]  # (B, T, 3H)
    h = X.new_zeros(X.shape[0], H) if h0 is None else h0
    states = []
    for t in range(X.shape[1]):
        gh = h @ params["weight_hh"].T + params["bias_hh"]
        xr, xz, xn = Gx[:, t].chunk(3, 1)
        hr, hz, hn = gh.chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        states.append(h)
    return torch.stack(states, 1), h


def forward_unbind(X, h0, params):
    h = X.new_zeros(X.size(0), params["weight_hh"].size(1)) if h0 is None else h0
    hs = [h := cell_split_weights(x_t, h, params) for x_t in X.unbind(1)]
    return torch.stack(hs).transpose(0, 1), h


FORWARDS = [forward_preallocated, forward_inputs_first, forward_unbind]


# ----------------------------------------------------------------------------- gru_convention
def _random_step(B=3, D=4, H=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=dtype)
    h = torch.randn(B, H, generator=g, dtype=dtype).tanh()
    shapes = {
        "weight_ih": (3 * H, D),
        "weight_hh": (3 * H, H),
        "bias_ih": (3 * H,),
        "bias_hh": (3 * H,),
    }
    return x, h, {k: torch.randn(*s, generator=g, dtype=dtype) for k, s in shapes.items()}


def _cho(x, h, p):
    H = h.shape[1]
    (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = p["weight_ih"].chunk(3), p["weight_hh"].chunk(3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = p["bias_ih"].chunk(3), p["bias_hh"].chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    assert n.shape[1] == H
    return (1 - z) * n + z * h


def convention_with_gru_cell(cell):
    """PyTorch's own nn.GRUCell as the reference for "pytorch", several random draws."""
    for seed in range(3):
        x, h, p = _random_step(seed=seed)
        torch_cell = nn.GRUCell(x.shape[1], h.shape[1]).double()
        with torch.no_grad():
            for name, value in p.items():
                getattr(torch_cell, name).copy_(value)
            theirs = torch_cell(x, h)
        got = cell(x, h, p)
        if not torch.allclose(got, theirs, atol=1e-9):
            break
    else:
        return "pytorch"
    return "cho" if torch.allclose(cell(x, h, p), _cho(x, h, p), atol=1e-9) else "neither"


def convention_max_difference(cell):
    """The candidate with the smallest largest difference, if it is small enough."""
    x, h, p = _random_step(seed=7)
    got = cell(x, h, p)
    errors = {
        "pytorch": (got - cell_f_linear(x, h, p)).abs().max().item(),
        "cho": (got - _cho(x, h, p)).abs().max().item(),
    }
    best = min(errors, key=errors.get)
    return best if errors[best] < 1e-8 else "neither"


def convention_float32(cell):
    """In float32, with float32 tolerances."""
    x, h, p = _random_step(seed=3, dtype=torch.float32)
    got = cell(x, h, p)
    if torch.allclose(got, cell_split_weights(x, h, p), rtol=1e-4, atol=1e-5):
        return "pytorch"
    if torch.allclose(got, _cho(x, h, p), rtol=1e-4, atol=1e-5):
        return "cho"
    return "neither"


CONVENTIONS = [convention_with_gru_cell, convention_max_difference, convention_float32]


# ----------------------------------------------------------------------------- recurrent_num_params
def count_by_layer(kind, input_size, num_hiddens, num_layers=1):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    total, D = 0, input_size
    for _ in range(num_layers):
        total += gates * num_hiddens * (D + num_hiddens) + 2 * gates * num_hiddens
        D = num_hiddens
    return total


def count_by_tensor_shapes(kind, input_size, num_hiddens, num_layers=1):
    """The shapes of each layer's four tensors listed, then multiplied out."""
    gH = {"rnn": 1, "lstm": 4, "gru": 3}[kind] * num_hiddens
    shapes = []
    for layer in range(num_layers):
        D = input_size if layer == 0 else num_hiddens
        shapes += [(gH, D), (gH, num_hiddens), (gH,), (gH,)]
    return sum(math.prod(shape) for shape in shapes)


def count_closed_form(kind, input_size, num_hiddens, num_layers=1):
    g = 4 if kind == "lstm" else 3 if kind == "gru" else 1
    H = num_hiddens
    return g * H * (input_size + H + 2) + (num_layers - 1) * g * H * (2 * H + 2)


COUNTS = [count_by_layer, count_by_tensor_shapes, count_closed_form]


# ----------------------------------------------------------------------------- adding_baseline_mse
def baseline_fraction():
    return float(Fraction(1, 12) * 2)


def baseline_integral():
    """Var(u1 + u2) by integrating the triangular density of the sum on [0, 2]."""
    n = 20_000
    total = 0.0
    for k in range(n):
        s = 2 * (k + 0.5) / n
        density = s if s < 1 else 2 - s
        total += (s - 1) ** 2 * density * (2 / n)
    return total


def baseline_monte_carlo():
    g = torch.Generator().manual_seed(123)
    y = torch.rand(1_000_000, generator=g, dtype=torch.float64) + torch.rand(
        1_000_000, generator=g, dtype=torch.float64
    )
    return torch.mean((y - y.mean()) ** 2)  # a 0-dim tensor is a number too


BASELINES = [baseline_fraction, baseline_integral, baseline_monte_carlo]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", CELLS, ids=by_name)
def test_gru_cell_forward_alternatives_pass(answer):
    check_gru_cell_forward(answer)
    check_gru_cell_forward(answer, dtype=torch.float32)
    passes_probe(LESSON, "gru_cell_forward", answer)


@pytest.mark.parametrize("answer", FORWARDS, ids=by_name)
def test_gru_forward_alternatives_pass(answer):
    check_gru_forward(answer)
    check_gru_forward(answer, zero_h0=True)
    passes_probe(LESSON, "gru_forward", answer)


@pytest.mark.parametrize("answer", CONVENTIONS, ids=by_name)
def test_gru_convention_alternatives_pass(answer):
    check_gru_convention(answer)
    passes_probe(LESSON, "gru_convention", answer)


@pytest.mark.parametrize("answer", COUNTS, ids=by_name)
def test_recurrent_num_params_alternatives_pass(answer):
    check_recurrent_num_params(answer)
    passes_probe(LESSON, "recurrent_num_params", answer)


@pytest.mark.parametrize("answer", BASELINES, ids=by_name)
def test_adding_baseline_mse_alternatives_pass(answer):
    assert math.isclose(float(answer()), 1 / 6, rel_tol=1e-3)
    check_adding_baseline(answer)
