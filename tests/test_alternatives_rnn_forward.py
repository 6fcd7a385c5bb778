"""Lesson 01: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.checks import (
    check_rnn_cell_forward,
    check_rnn_forward,
    check_rnn_num_params,
    check_rnn_params_from_torch,
    check_sequence_loss,
    check_train_step,
)
from tests.course import by_name
from tests.integrity_support import passes_probe

LESSON = "01_rnn_forward"


# ----------------------------------------------------------------------------- rnn_cell_forward
def cell_einsum(x_t, h_prev, W_xh, W_hh, b_h):
    return torch.tanh(
        torch.einsum("bd,dh->bh", x_t, W_xh) + torch.einsum("bk,kh->bh", h_prev, W_hh) + b_h
    )


def cell_addmm(x_t, h_prev, W_xh, W_hh, b_h):
    return torch.addmm(torch.addmm(b_h, x_t, W_xh), h_prev, W_hh).tanh()


def cell_one_matmul(x_t, h_prev, W_xh, W_hh, b_h):
    """One matmul on [x, h] with the stacked weights [W_xh; W_hh]."""
    return torch.tanh(torch.cat([x_t, h_prev], dim=1) @ torch.cat([W_xh, W_hh], dim=0) + b_h)


def cell_f_linear(x_t, h_prev, W_xh, W_hh, b_h):
    return torch.tanh(F.linear(x_t, W_xh.T, b_h) + F.linear(h_prev, W_hh.T))


def cell_float64_inside(x_t, h_prev, W_xh, W_hh, b_h):
    d = torch.float64
    h = torch.tanh(x_t.to(d) @ W_xh.to(d) + h_prev.to(d) @ W_hh.to(d) + b_h.to(d))
    return h.to(x_t.dtype)


def cell_in_place(x_t, h_prev, W_xh, W_hh, b_h):
    z = x_t @ W_xh
    z += h_prev @ W_hh
    z += b_h
    return z.tanh_()


CELLS = [
    cell_einsum,
    cell_addmm,
    cell_one_matmul,
    cell_f_linear,
    cell_float64_inside,
    cell_in_place,
]


# ----------------------------------------------------------------------------- rnn_forward
def forward_preallocated(X, h0, W_xh, W_hh, b_h):
    """The output allocated first and filled by index."""
    B, T, _ = X.shape
    H_all = X.new_empty(B, T, W_hh.shape[0])
    h = torch.zeros(B, W_hh.shape[0], dtype=X.dtype, device=X.device) if h0 is None else h0
    for t in range(T):
        h = torch.tanh(X[:, t] @ W_xh + h @ W_hh + b_h)
        H_all[:, t] = h
    return H_all, h


def forward_inputs_first(X, h0, W_xh, W_hh, b_h):
    """Every input projection in one matmul, then the recurrence; the state updated in place."""
    B, T, _ = X.shape
    Z = X @ W_xh + b_h  # (B, T, H)
    h = X.new_zeros(B, W_hh.shape[0]) if h0 is None else h0.clone()
    states = []
    for t in range(T):
        h.copy_(torch.tanh(Z[:, t] + h @ W_hh))
        states.append(h.clone())
    return torch.stack(states, 1), h


def forward_unbind(X, h0, W_xh, W_hh, b_h):
    h = X.new_zeros(X.shape[0], W_hh.shape[1]) if h0 is None else h0
    states = []
    for x_t in X.unbind(dim=1):
        h = cell_one_matmul(x_t, h, W_xh, W_hh, b_h)
        states.append(h)
    H_all = torch.stack(states).transpose(0, 1)  # (T, B, H) -> (B, T, H)
    return H_all, H_all[:, -1]


def forward_float64_inside(X, h0, W_xh, W_hh, b_h):
    d = torch.float64
    h0 = None if h0 is None else h0.to(d)
    H_all, h = forward_preallocated(X.to(d), h0, W_xh.to(d), W_hh.to(d), b_h.to(d))
    return H_all.to(X.dtype), h.to(X.dtype)


FORWARDS = [forward_preallocated, forward_inputs_first, forward_unbind, forward_float64_inside]


# ----------------------------------------------------------------------------- params_from_torch
def params_clone(rnn):
    with torch.no_grad():
        return {
            "W_xh": rnn.weight_ih_l0.T.clone(),
            "W_hh": rnn.weight_hh_l0.T.clone(),
            "b_h": rnn.bias_ih_l0 + rnn.bias_hh_l0,
        }


def params_named(rnn):
    p = {name: t.detach() for name, t in rnn.named_parameters()}
    return {
        "W_xh": p["weight_ih_l0"].t(),
        "W_hh": p["weight_hh_l0"].t(),
        "b_h": p["bias_ih_l0"] + p["bias_hh_l0"],
    }


def params_data(rnn):
    return dict(
        W_xh=rnn.weight_ih_l0.data.transpose(0, 1),
        W_hh=rnn.weight_hh_l0.data.transpose(0, 1),
        b_h=rnn.bias_ih_l0.data + rnn.bias_hh_l0.data,
    )


PARAMS = [params_clone, params_named, params_data]


# ----------------------------------------------------------------------------- rnn_num_params
def count_by_shapes(input_size, num_hiddens, num_outputs):
    shapes = [(num_hiddens, input_size), (num_hiddens, num_hiddens), (num_hiddens,), (num_hiddens,),
              (num_outputs, num_hiddens), (num_outputs,)]  # fmt: skip
    return sum(math.prod(s) for s in shapes)


def count_factored(input_size, num_hiddens, num_outputs):
    return num_hiddens * (input_size + num_hiddens + 2) + num_outputs * (num_hiddens + 1)


def count_with_modules(input_size, num_hiddens, num_outputs):
    modules = [torch.nn.RNN(input_size, num_hiddens), torch.nn.Linear(num_hiddens, num_outputs)]
    return sum(p.numel() for m in modules for p in m.parameters())


COUNTS = [count_by_shapes, count_factored, count_with_modules]


# ----------------------------------------------------------------------------- sequence_loss
def loss_log_softmax(logits, targets, mask):
    log_p = F.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return -(log_p * mask).sum() / mask.sum()


def loss_ignore_index(logits, targets, mask):
    targets = torch.where(mask.bool(), targets, torch.full_like(targets, -100))
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def loss_boolean_index(logits, targets, mask):
    keep = mask.bool()
    return F.cross_entropy(logits[keep], targets[keep])


def loss_logsumexp(logits, targets, mask):
    picked = logits.gather(2, targets[..., None])[..., 0]
    per_step = torch.logsumexp(logits, dim=2) - picked
    weights = mask.to(logits.dtype)
    return (per_step * weights).sum() / weights.sum()


LOSSES = [loss_log_softmax, loss_ignore_index, loss_boolean_index, loss_logsumexp]


# ----------------------------------------------------------------------------- train_step
def step_set_to_none(model, optimizer, X, Y, mask):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_boolean_index(model(X), Y, mask)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def step_model_zero_grad(model, optimizer, X, Y, mask):
    model.zero_grad()
    loss = loss_ignore_index(model(X), Y, mask)
    optimizer.zero_grad()  # twice is harmless
    loss.backward()
    optimizer.step()
    return loss.item()


def step_autograd_grad(model, optimizer, X, Y, mask):
    """Gradients taken with torch.autograd.grad and written into .grad by hand."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = loss_log_softmax(model(X), Y, mask)
    for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
        p.grad = g
    optimizer.step()
    return loss.item()


STEPS = [step_set_to_none, step_model_zero_grad, step_autograd_grad]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", CELLS, ids=by_name)
def test_rnn_cell_forward_alternatives_pass(answer):
    check_rnn_cell_forward(answer)
    check_rnn_cell_forward(answer, dtype=torch.float32)
    passes_probe(LESSON, "rnn_cell_forward", answer)


@pytest.mark.parametrize("answer", FORWARDS, ids=by_name)
def test_rnn_forward_alternatives_pass(answer):
    check_rnn_forward(answer)
    check_rnn_forward(answer, zero_h0=True)
    passes_probe(LESSON, "rnn_forward", answer)


@pytest.mark.parametrize("answer", PARAMS, ids=by_name)
def test_rnn_params_from_torch_alternatives_pass(answer):
    check_rnn_params_from_torch(answer, forward_preallocated)
    passes_probe(LESSON, "rnn_params_from_torch", answer, rnn_forward=forward_preallocated)


@pytest.mark.parametrize("answer", COUNTS, ids=by_name)
def test_rnn_num_params_alternatives_pass(answer):
    check_rnn_num_params(answer)
    passes_probe(LESSON, "rnn_num_params", answer)


@pytest.mark.parametrize("answer", LOSSES, ids=by_name)
def test_sequence_loss_alternatives_pass(answer):
    check_sequence_loss(answer)
    passes_probe(LESSON, "sequence_loss", answer)


@pytest.mark.parametrize("answer", STEPS, ids=by_name)
def test_train_step_alternatives_pass(answer):
    check_train_step(answer, loss_log_softmax)
    passes_probe(LESSON, "train_step", answer)


def test_numpy_style_loops_pass_the_cell_check():
    """A cell written entry by entry (slow, but right) is right."""

    def cell_loops(x_t, h_prev, W_xh, W_hh, b_h):
        B, H = h_prev.shape
        out = np.zeros((B, H))
        x, h, A, R, b = (t.detach().double().numpy() for t in (x_t, h_prev, W_xh, W_hh, b_h))
        for i in range(B):
            for j in range(H):
                z = sum(x[i, k] * A[k, j] for k in range(x.shape[1]))
                z += sum(h[i, k] * R[k, j] for k in range(H)) + b[j]
                out[i, j] = math.tanh(z)
        return torch.from_numpy(out).to(dtype=x_t.dtype, device=x_t.device)

    check_rnn_cell_forward(cell_loops)
    check_rnn_cell_forward(cell_loops, dtype=torch.float32)
