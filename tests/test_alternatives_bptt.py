"""Lesson 02: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.checks import (
    check_clip_grad_norm,
    check_clip_grad_norm_non_finite,
    check_jacobian_norms,
    check_numerical_gradient,
    check_readout_backward,
    check_rnn_backward,
    check_rnn_backward_edge_cases,
    check_rnn_cell_backward,
    check_train_step_clipped,
    check_train_truncated_bptt,
    check_with_spectral_radius,
)
from tests.course import by_name, lesson_functions
from tests.integrity_support import passes_probe

LESSON = "02_bptt"
GIVEN = lesson_functions(LESSON, "rnn_cell_forward_with_cache", "rnn_forward_with_cache")
CELL_FORWARD, FORWARD = GIVEN["rnn_cell_forward_with_cache"], GIVEN["rnn_forward_with_cache"]


# ----------------------------------------------------------------------------- rnn_cell_backward
def cell_einsum(dh_next, cache):
    x_t, h_prev, h_t, W_xh, W_hh = cache
    da = dh_next * (1 - h_t * h_t)
    return (
        torch.einsum("bh,dh->bd", da, W_xh),
        torch.einsum("bh,kh->bk", da, W_hh),
        torch.einsum("bd,bh->dh", x_t, da),
        torch.einsum("bk,bh->kh", h_prev, da),
        torch.einsum("bh->h", da),
    )


def cell_in_place(dh_next, cache):
    """Through the tanh by multiplying the incoming gradient in place."""
    x_t, h_prev, h_t, W_xh, W_hh = cache
    da = dh_next.mul_(1 - h_t.pow(2))  # changes dh_next
    return da.matmul(W_xh.mT), da.matmul(W_hh.mT), x_t.mT @ da, h_prev.mT @ da, da.sum(0)


def cell_float64_inside(dh_next, cache):
    x_t, h_prev, h_t, W_xh, W_hh = (t.double() for t in cache)
    da = dh_next.double() * (1 - h_t**2)
    ones = torch.ones(1, da.shape[0], dtype=da.dtype)
    grads = (da @ W_xh.T, da @ W_hh.T, x_t.T @ da, h_prev.T @ da, (ones @ da)[0])
    return tuple(g.to(dh_next.dtype) for g in grads)


def cell_stacked_weights(dh_next, cache):
    """One matmul back through [W_xh; W_hh], split into the two input gradients."""
    x_t, h_prev, h_t, W_xh, W_hh = cache
    da = dh_next * (1 - h_t**2)
    d_in = da @ torch.cat([W_xh, W_hh]).T  # (B, D + H)
    d_W = torch.cat([x_t, h_prev], dim=1).T @ da  # (D + H, H)
    D = x_t.shape[1]
    return d_in[:, :D], d_in[:, D:], d_W[:D], d_W[D:], da.sum(dim=0)


CELLS = [cell_einsum, cell_in_place, cell_float64_inside, cell_stacked_weights]


# ----------------------------------------------------------------------------- numerical_gradient
def numgrad_ndindex(f, x, eps=1e-6):
    """Index tuples from numpy; each entry nudged up, down and back by adding (the sum may
    differ from the old value in its last bit)."""
    grad = torch.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        x[idx] += eps
        plus = float(f())
        x[idx] -= 2 * eps
        minus = float(f())
        x[idx] += eps
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def numgrad_copy_back(f, x, eps=1e-6):
    """One saved copy of x, copied back after each evaluation; the result gathered in a list."""
    saved, flat, values = x.clone(), x.reshape(-1), []
    for i in range(x.numel()):
        flat[i] += eps
        plus = f()
        x.copy_(saved)
        flat[i] -= eps
        minus = f()
        x.copy_(saved)
        values.append((plus - minus) / (2 * eps))
    return torch.stack(values).reshape(x.shape)


def numgrad_numpy(f, x, eps=1e-6):
    """The gradient built in a numpy array; x's entries set through unravelled indices."""
    grad = np.zeros(tuple(x.shape))
    for i in range(x.numel()):
        idx = tuple(int(j) for j in torch.unravel_index(torch.tensor(i), x.shape))
        old = x[idx].item()
        x[idx] = old + eps
        plus = f().item()
        x[idx] = old - eps
        minus = f().item()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return torch.from_numpy(grad)


NUMGRADS = [numgrad_ndindex, numgrad_copy_back, numgrad_numpy]


# ----------------------------------------------------------------------------- rnn_backward
def backward_collect_then_sum(dH, caches):
    """Per-step gradients kept in lists, summed once at the end; dX from torch.stack."""
    dxs, dWx, dWh, dbs = [], [], [], []
    dh = torch.zeros_like(dH[:, 0])
    for t in range(dH.shape[1] - 1, -1, -1):
        dx, dh, a, b, c = cell_einsum(dH[:, t] + dh, caches[t])
        dxs.insert(0, dx)
        dWx.append(a)
        dWh.append(b)
        dbs.append(c)
    return torch.stack(dxs, dim=1), dh, *(torch.stack(g).sum(0) for g in (dWx, dWh, dbs))


def backward_preallocated(dH, caches):
    B, T, H = dH.shape
    D = caches[0][0].shape[1]
    dX = torch.empty(B, T, D, dtype=dH.dtype, device=dH.device)
    grads = [torch.zeros_like(caches[0][3]), torch.zeros_like(caches[0][4]), dH.new_zeros(H)]
    carry = dH.new_zeros(B, H)
    for t in reversed(range(T)):
        dX[:, t], carry, *step = cell_stacked_weights(dH[:, t] + carry, caches[t])
        for total, g in zip(grads, step, strict=True):
            total.add_(g)
    return (dX, carry, *grads)


def backward_flipped(dH, caches):
    """The reversed sequence walked forwards: torch.flip on dH, the caches reversed."""
    carry, dxs, totals = torch.zeros_like(dH[:, 0]), [], None
    for dh_t, cache in zip(torch.flip(dH, dims=[1]).unbind(1), caches[::-1], strict=True):
        dx, carry, *step = cell_float64_inside(dh_t + carry, cache)
        dxs.append(dx)
        totals = step if totals is None else [a + b for a, b in zip(totals, step, strict=True)]
    return (torch.flip(torch.stack(dxs, dim=1), dims=[1]), carry, *totals)


BACKWARDS = [backward_collect_then_sum, backward_preallocated, backward_flipped]


# ----------------------------------------------------------------------------- readout_backward
def readout_log_softmax(H_all, W_hy, b_y, Y):
    """F.log_softmax (stable) for the loss, einsum for the shared weights."""
    V = W_hy.shape[1]
    log_p = F.log_softmax(torch.einsum("bth,hv->btv", H_all, W_hy) + b_y, dim=-1)
    onehot = F.one_hot(Y, V).to(log_p.dtype)
    N = Y.numel()
    dlogits = (log_p.exp() - onehot) / N
    loss = -(log_p * onehot).sum() / N
    dW_hy = torch.einsum("bth,btv->hv", H_all, dlogits)
    return loss, torch.einsum("btv,hv->bth", dlogits, W_hy), dW_hy, dlogits.sum(dim=(0, 1))


def readout_flat_rows(H_all, W_hy, b_y, Y):
    """Positions flattened to rows; torch.softmax, then 1 subtracted at each row's target."""
    B, T, H = H_all.shape
    N = B * T
    h, y = H_all.reshape(N, H), Y.reshape(N)
    logits = h @ W_hy + b_y  # (N, V)
    rows = torch.arange(N)
    loss = (torch.logsumexp(logits, dim=1) - logits[rows, y]).mean()
    d = torch.softmax(logits, dim=1)
    d[rows, y] -= 1
    d /= N
    return loss, (d @ W_hy.T).reshape(B, T, H), h.T @ d, d.sum(0)


def readout_manual_exp(H_all, W_hy, b_y, Y):
    """exp by hand after subtracting the max; the loss returned as a float."""
    logits = H_all @ W_hy + b_y
    m = logits.max(dim=2, keepdim=True)[0]
    e = torch.exp(logits - m)
    total = e.sum(dim=2, keepdim=True)
    p = e / total
    picked = torch.gather(logits - m, 2, Y[..., None]).squeeze(2)  # (B, T)
    loss = (torch.log(total.squeeze(2)) - picked).mean().item()
    target = torch.zeros_like(p).scatter_(2, Y[..., None], 1.0)
    dlogits = (p - target) / Y.numel()
    dW_hy = sum(H_all[:, t].T @ dlogits[:, t] for t in range(Y.shape[1]))
    return loss, dlogits @ W_hy.mT, dW_hy, dlogits.sum(0).sum(0)


READOUTS = [readout_log_softmax, readout_flat_rows, readout_manual_exp]


# ----------------------------------------------------------------------------- jacobian_norms
def jacobian_per_sequence(H_all, W_hh):
    """One sequence and one s at a time, the product rebuilt from h_T, svdvals for the norm."""
    B, T, H = H_all.shape
    rows = []
    for b in range(B):
        norms = []
        for s in range(T + 1):
            G = torch.eye(H, dtype=H_all.dtype, device=H_all.device)
            for u in range(T, s, -1):  # dh_T/dh_s = J_T ... J_(s+1), J_u = dh_u/dh_(u-1)
                G = G @ (torch.diag(1 - H_all[b, u - 1] ** 2) @ W_hh.T)
            norms.append(torch.linalg.svdvals(G)[0])
        rows.append(torch.stack(norms))
    return torch.stack(rows)


def jacobian_einsum(H_all, W_hh):
    B, T, H = H_all.shape
    G = torch.eye(H, dtype=H_all.dtype).repeat(B, 1, 1)
    out = H_all.new_empty(B, T + 1)
    out[:, T] = 1.0
    for s in range(T, 0, -1):
        G = torch.einsum("bij,bj,kj->bik", G, 1 - H_all[:, s - 1] ** 2, W_hh)
        out[:, s - 1] = torch.linalg.norm(G, ord=2, dim=(1, 2))
    return out


def jacobian_numpy(H_all, W_hh):
    """The same product in numpy, back to a tensor of the inputs' dtype."""
    Hs, W = H_all.detach().double().numpy(), W_hh.detach().double().numpy()
    B, T, H = Hs.shape
    out = np.ones((B, T + 1))
    G = np.broadcast_to(np.eye(H), (B, H, H)).copy()
    for s in range(T, 0, -1):
        G = G @ ((1 - Hs[:, s - 1] ** 2)[:, :, None] * W.T)
        out[:, s - 1] = np.linalg.norm(G, ord=2, axis=(1, 2))
    return torch.from_numpy(out).to(H_all.dtype)


JACOBIANS = [jacobian_per_sequence, jacobian_einsum, jacobian_numpy]


# ----------------------------------------------------------------------------- with_spectral_radius
def radius_amax(W, radius):
    return radius * W / torch.linalg.eigvals(W).abs().amax()


def radius_on_a_clone(W, radius):
    rho = torch.linalg.eigvals(W).abs().max().item()
    return W.clone().mul_(radius / rho)


def radius_numpy(W, radius):
    rho = float(np.abs(np.linalg.eigvals(W.detach().double().numpy())).max())
    return W * (radius / rho)


RADII = [radius_amax, radius_on_a_clone, radius_numpy]


# ----------------------------------------------------------------------------- clip_grad_norm
def clip_vector_norm(grads, max_norm):
    total = torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]))
    factor = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g *= factor
    return total


def clip_with_an_if(grads, max_norm):
    """An `if` instead of a clamp: NaN gradients are left as they are (as good)."""
    total = torch.stack([g.norm() for g in grads]).norm()
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (total + 1e-6))
    return total


def clip_min_of_floats(grads, max_norm):
    total = sum(float((g.double() ** 2).sum()) for g in grads) ** 0.5
    factor = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.mul_(factor)
    return total


CLIPS = [clip_vector_norm, clip_with_an_if, clip_min_of_floats]


# ----------------------------------------------------------------------------- training loops
def _ce(logits, Y):
    return F.cross_entropy(logits.flatten(0, 1), Y.flatten())


def truncated_split(model, optimizer, X, Y, chunk_size):
    h, losses = None, []
    for X_c, Y_c in zip(X.split(chunk_size, dim=1), Y.split(chunk_size, dim=1), strict=True):
        optimizer.zero_grad(set_to_none=True)
        logits, h = model(X_c, h)
        loss = _ce(logits, Y_c)
        loss.backward()
        optimizer.step()
        h = h.detach()  # detached after the step: the same cut
        losses.append(loss.item())
    return losses


def truncated_index_loop(model, optimizer, X, Y, chunk_size):
    T, h, losses, start = X.shape[1], None, [], 0
    while start < T:
        end = min(start + chunk_size, T)
        logits, h_new = model(X[:, start:end], None if h is None else h.detach().clone())
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), Y[:, start:end].reshape(-1))
        model.zero_grad()
        loss.backward()
        optimizer.step()
        h, start = h_new, end
        losses.append(float(loss.detach()))
    return losses


def truncated_no_grad_state(model, optimizer, X, Y, chunk_size):
    """The carried state re-made as a fresh tensor with the same values."""
    h, losses = None, []
    for start in range(0, X.shape[1], chunk_size):
        logits, h = model(X[:, start : start + chunk_size], h)
        loss = _ce(logits, Y[:, start : start + chunk_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            h = h.clone()
        losses.append(loss.detach().item())
    return losses


TRUNCATED = [truncated_split, truncated_index_loop, truncated_no_grad_state]


def step_clip_(model, optimizer, X, Y, max_norm):
    optimizer.zero_grad()
    loss = _ce(model(X)[0], Y)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), norm.item()


def step_own_clip(model, optimizer, X, Y, max_norm):
    for p in model.parameters():
        p.grad = None
    logits, _ = model(X)
    loss = _ce(logits, Y)
    loss.backward()
    norm = clip_vector_norm([p.grad for p in model.parameters()], max_norm)
    optimizer.step()
    return float(loss.detach()), float(norm)


def step_autograd_grad(model, optimizer, X, Y, max_norm):
    params = list(model.parameters())
    loss = _ce(model(X)[0], Y)
    grads = list(torch.autograd.grad(loss, params))
    norm = clip_min_of_floats(grads, max_norm)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    optimizer.step()
    return loss.item(), norm


STEPS = [step_clip_, step_own_clip, step_autograd_grad]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", CELLS, ids=by_name)
def test_rnn_cell_backward_alternatives_pass(answer):
    check_rnn_cell_backward(answer, CELL_FORWARD)
    passes_probe(LESSON, "rnn_cell_backward", answer)


@pytest.mark.parametrize("answer", NUMGRADS, ids=by_name)
def test_numerical_gradient_alternatives_pass(answer):
    check_numerical_gradient(answer)
    passes_probe(LESSON, "numerical_gradient", answer)


@pytest.mark.parametrize("answer", BACKWARDS, ids=by_name)
def test_rnn_backward_alternatives_pass(answer):
    for upstream in ("dense", "last", "sparse"):
        check_rnn_backward(answer, FORWARD, upstream=upstream)
    check_rnn_backward_edge_cases(answer, FORWARD)
    passes_probe(LESSON, "rnn_backward", answer)


@pytest.mark.parametrize("answer", READOUTS, ids=by_name)
def test_readout_backward_alternatives_pass(answer):
    check_readout_backward(answer)
    check_readout_backward(answer, logit_scale=1000.0)
    passes_probe(LESSON, "readout_backward", answer)


@pytest.mark.parametrize("answer", JACOBIANS, ids=by_name)
def test_jacobian_norms_alternatives_pass(answer):
    check_jacobian_norms(answer)
    passes_probe(LESSON, "jacobian_norms", answer)


@pytest.mark.parametrize("answer", RADII, ids=by_name)
def test_with_spectral_radius_alternatives_pass(answer):
    check_with_spectral_radius(answer)
    passes_probe(LESSON, "with_spectral_radius", answer)


@pytest.mark.parametrize("answer", CLIPS, ids=by_name)
def test_clip_grad_norm_alternatives_pass(answer):
    check_clip_grad_norm(answer)
    check_clip_grad_norm(answer, max_norm=100.0)
    check_clip_grad_norm_non_finite(answer)
    passes_probe(LESSON, "clip_grad_norm", answer)


@pytest.mark.parametrize("answer", TRUNCATED, ids=by_name)
def test_train_truncated_bptt_alternatives_pass(answer):
    check_train_truncated_bptt(answer)
    passes_probe(LESSON, "train_truncated_bptt", answer)


@pytest.mark.parametrize("answer", STEPS, ids=by_name)
def test_train_step_clipped_alternatives_pass(answer):
    check_train_step_clipped(answer)
    passes_probe(LESSON, "train_step_clipped", answer)
