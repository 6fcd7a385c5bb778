"""Lesson 02's checks, one step backwards: the references (autograd) and rnn_cell_backward."""

import contextlib
import io

import torch

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
from rnncourse.checks.rnn import (
    random_rnn_params,
    reference_rnn_cell,
    reference_rnn_forward,
    torch_rnn_from_params,
)


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line (for checks made of several cases)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def reference_rnn_backward(dH, X, h0, W_xh, W_hh, b_h):
    """Autograd through ``nn.RNN``: gradients of sum(H_all * dH).

    Returns (dX (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)) in the course's
    layout (PyTorch stores the weights transposed).
    """
    rnn = torch_rnn_from_params(W_xh, W_hh, b_h)
    X = X.detach().clone().requires_grad_(True)
    h0 = h0.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        H_all, _ = rnn(X, h0.unsqueeze(0))
        H_all.backward(dH)
    return (
        X.grad,
        h0.grad,
        rnn.weight_ih_l0.grad.T.contiguous(),
        rnn.weight_hh_l0.grad.T.contiguous(),
        rnn.bias_ih_l0.grad,
    )


def reference_rnn_cell_backward(dh_next, x_t, h_prev, W_xh, W_hh, b_h):
    """Autograd through one step of ``nn.RNN``: (dx_t, dh_prev, dW_xh, dW_hh, db_h)."""
    dX, dh0, dW_xh, dW_hh, db_h = reference_rnn_backward(
        dh_next.unsqueeze(1), x_t.unsqueeze(1), h_prev, W_xh, W_hh, b_h
    )
    return dX[:, 0], dh0, dW_xh, dW_hh, db_h


def reference_jacobian_norms(X, h0, W_xh, W_hh, b_h):
    """||dh_T / dh_s||_2 for s = 0..T and every sequence, by autograd Jacobians: (B, T + 1)."""
    rnn = torch_rnn_from_params(W_xh, W_hh, b_h)
    B, T, _ = X.shape
    num_hiddens = W_hh.shape[0]
    H_all, _ = reference_rnn_forward(X, h0, W_xh, W_hh, b_h)
    states = [h0] + [H_all[:, t] for t in range(T)]  # h_0 .. h_T
    norms = torch.ones(B, T + 1, dtype=torch.float64)
    for s in range(T):
        for b in range(B):

            def h_T_from(h_s, s=s, b=b):
                return rnn(X[b : b + 1, s:], h_s.view(1, 1, num_hiddens))[1].view(num_hiddens)

            with torch.enable_grad():
                J = torch.autograd.functional.jacobian(h_T_from, states[s][b].detach())
            norms[b, s] = torch.linalg.matrix_norm(J.double(), ord=2)
    return norms


def _forward_cell(forward, x_t, h_prev, W_xh, W_hh, b_h):
    """Run the provided forward step; fail if it no longer matches nn.RNN. Returns the cache."""
    name = getattr(forward, "__name__", "the forward step")
    result = call_student(forward, x_t, h_prev, W_xh, W_hh, b_h, name=name)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"{name} should return (h_t, cache). It is provided: re-run its cell unchanged."
        )
    h_t, cache = result
    want = reference_rnn_cell(x_t, h_prev, W_xh, W_hh, b_h)
    if not matches(h_t, want, **tolerances(x_t.dtype)):
        raise CheckFailed(
            f"{name} no longer matches torch.nn.RNN. It is provided: re-run its cell unchanged."
        )
    return cache


def _forward_layer(forward, X, h0, W_xh, W_hh, b_h):
    """Run the provided forward pass; fail if it no longer matches nn.RNN. Returns the caches."""
    name = getattr(forward, "__name__", "the forward pass")
    result = call_student(forward, X, h0, W_xh, W_hh, b_h, name=name)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"{name} should return (H_all, caches). It is provided: re-run its cell unchanged."
        )
    H_all, caches = result
    want, _ = reference_rnn_forward(X, h0, W_xh, W_hh, b_h)
    if not matches(H_all, want, **tolerances(X.dtype)) or len(caches) != X.shape[1]:
        raise CheckFailed(
            f"{name} no longer matches torch.nn.RNN. It is provided: re-run its cell unchanged."
        )
    return caches


def _gradients(result, names, shapes, who):
    """Unpack a backward function's tuple of gradients, checking count and shapes."""
    if not (isinstance(result, tuple | list) and len(result) == len(names)):
        got = f"{len(result)} values" if isinstance(result, tuple | list) else type(result).__name__
        raise CheckFailed(
            f"{who} should return {len(names)} tensors ({', '.join(names)}); got {got}."
        )
    for name, value, (shape, dims) in zip(names, result, shapes, strict=True):
        if name.startswith("db") and isinstance(value, torch.Tensor) and value.dim() == 2:
            raise CheckFailed(
                f"{name} has shape {tuple(value.shape)}; expected {dims} = {shape}: the bias is "
                "shared by every sequence in the batch, so sum its gradient over the batch (dim 0)."
            )
        expect_tensor(name, value, shape, dims)
    return dict(zip(names, result, strict=True))


CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")


CELL_HINTS = {
    "dx_t": "dx_t = da W_xh^T: (B, H) @ (H, D), with da = dh_next * (1 - h_t**2).",
    "dh_prev": "dh_prev = da W_hh^T: in the forward pass h_prev is multiplied by W_hh on the "
    "right, so the gradient goes back through W_hh transposed (da @ W_hh.T, not da @ W_hh).",
    "dW_xh": "dW_xh = x_t^T da: (D, B) @ (B, H); the product sums over the batch.",
    "dW_hh": "dW_hh = h_prev^T da: W_hh multiplied h_prev (not h_t) in the forward pass, and "
    "h_prev comes first (h_prev.T @ da, not da.T @ h_prev).",
    "db_h": "db_h = da summed over the batch (dim 0).",
}


TANH_HINT = (
    "Every gradient is right where tanh' = 1 (a probe with h_t = 0), so the tanh derivative is "
    "wrong: da = dh_next * (1 - h_t**2), with h_t from the cache. h_t is already tanh(a_t): do "
    "not apply tanh to it again."
)


DA_HINT = (
    "Every gradient is wrong, even in a probe where h_t = 0 (tanh' = 1): all five come from "
    "da = dh_next * (1 - h_t**2). Compute da first, from dh_next and the h_t in the cache."
)


def _cell_inputs(B, D, H, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 11)
    x = _randn(B, D, dtype=dtype, device=device, g=g)
    h = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    dh = _randn(B, H, dtype=dtype, device=device, g=g)
    return x, h, dh, random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)


def check_rnn_cell_backward(
    rnn_cell_backward,
    rnn_cell_forward_with_cache,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """rnn_cell_backward(dh_next, cache) must match autograd through one step of nn.RNN."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, dh, params = _cell_inputs(B, D, H, dtype, device, seed)
    shapes = [((B, D), "(B, D)"), ((B, H), "(B, H)"), ((D, H), "(D, H)"), ((H, H), "(H, H)")]
    shapes.append(((H,), "(H,)"))
    tol = tolerances(dtype)

    def run(dh, x, h, *params):
        cache = _forward_cell(rnn_cell_forward_with_cache, x, h, *params)
        result = call_student(rnn_cell_backward, dh, cache)
        got = _gradients(result, CELL_GRADS, shapes, "rnn_cell_backward")
        want = dict(zip(CELL_GRADS, reference_rnn_cell_backward(dh, x, h, *params), strict=True))
        return got, want, [n for n in CELL_GRADS if not matches(got[n], want[n], **tol)]

    got, want, wrong = run(dh, x, h, *params)
    if not wrong:
        print(f"rnn_cell_backward matches autograd (B={B}, D={D}, H={H}, {dtype}).")
        return
    # Probe: identical rows and b_h = -(x W_xh + h W_hh) make a_t = 0, so h_t = 0, tanh' = 1.
    W_xh, W_hh, _ = params
    x1, h1 = x[:1].expand(B, D).clone(), h[:1].expand(B, H).clone()
    b_zero = -(x1 @ W_xh + h1 @ W_hh)[0]
    _, _, probe_wrong = run(dh, x1, h1, W_xh, W_hh, b_zero)
    if not probe_wrong and len(wrong) == len(CELL_GRADS):
        hint, name = TANH_HINT, wrong[0]
    elif not probe_wrong:
        name = wrong[0]
        hint = (
            f"{name} is right where tanh' = 1 (a probe with h_t = 0) but not elsewhere: it must "
            f"come from da = dh_next * (1 - h_t**2), not from dh_next. {CELL_HINTS[name]}"
        )
    elif len(probe_wrong) == len(CELL_GRADS):
        hint, name = DA_HINT, wrong[0]
    else:
        name = probe_wrong[0] if probe_wrong[0] in wrong else wrong[0]
        also = [n for n in probe_wrong if n != name]
        hint = CELL_HINTS[name] + (f" (Also wrong: {', '.join(also)}.)" if also else "")
    expect_close(name, got[name], want[name], hint=hint, **tol)
