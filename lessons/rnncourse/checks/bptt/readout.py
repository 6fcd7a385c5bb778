"""Lesson 02's checks, the read-out: readout_backward against autograd through F.cross_entropy.

The read-out of every state is logits = H_all W_hy + b_y, (B, T, V), and the loss the mean
cross-entropy over the N = B * T positions; its gradient with respect to the logits is
(softmax(logits) - onehot(Y)) / N. When the student's numbers differ, probes isolate the
term: a factor common to every gradient (sign, 1/N), b_y = 0, and W_hy = 0, b_y = 0, where
every probability is 1 / V and only the targets are left.
"""

import math

import torch
import torch.nn.functional as F

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    matches,
    tolerances,
)
from rnncourse.checks._core import randn as _randn

READOUT_GRADS = ("dH", "dW_hy", "db_y")
READOUT_NAMES = ("loss", *READOUT_GRADS)

DLOGITS = "dlogits = (softmax(logits) - onehot(Y)) / N, with N = B * T"

READOUT_HINTS = {
    "loss": "The loss is the mean over the N = B * T positions of -log p[b, t, Y[b, t]] = "
    "logsumexp(logits[b, t]) - logits[b, t, Y[b, t]].",
    "dH": "dH = dlogits W_hy^T: (B, T, V) @ (V, H), with " + DLOGITS + ".",
    "dW_hy": "dW_hy sums h_t^T dlogits_t over every position: "
    "H_all.reshape(N, H).T @ dlogits.reshape(N, V), with " + DLOGITS + ".",
    "db_y": "db_y is dlogits summed over batch and time (dims 0 and 1), with " + DLOGITS + ".",
}


def reference_readout_backward(H_all, W_hy, b_y, Y):
    """Autograd through the read-out and ``F.cross_entropy`` (computed in float64, returned in
    the inputs' dtype): (loss (), dH (B, T, H), dW_hy (H, V), db_y (V,))."""
    leaves = [t.detach().double().clone().requires_grad_(True) for t in (H_all, W_hy, b_y)]
    with torch.enable_grad():
        logits = leaves[0] @ leaves[1] + leaves[2]  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        grads = torch.autograd.grad(loss, leaves)
    return tuple(t.detach().to(H_all.dtype) for t in (loss, *grads))


def readout_inputs(B, T, H, V, *, logit_scale, dtype, device, seed):
    """States in (-1, 1), weights that make logits of size ~logit_scale, targets in 0..V-1."""
    g = torch.Generator().manual_seed(seed + 44)
    H_all = _randn(B, T, H, dtype=dtype, device=device, g=g).tanh()
    W_hy = _randn(H, V, dtype=dtype, device=device, g=g, scale=logit_scale)
    b_y = _randn(V, dtype=dtype, device=device, g=g, scale=0.5 * logit_scale)
    Y = torch.randint(0, V, (B, T), generator=g).to(device)
    return H_all, W_hy, b_y, Y


def _loss_value(loss, dtype, device):
    """The returned loss as a 0-dim tensor: a 0-dim tensor or a Python number is accepted."""
    if isinstance(loss, torch.Tensor):
        if loss.dim() != 0:
            raise CheckFailed(
                f"loss has shape {tuple(loss.shape)}; expected one number, the mean over all "
                "N = B * T positions (batch and time)."
            )
        return loss.detach().to(dtype)
    if isinstance(loss, int | float) and not isinstance(loss, bool):
        return torch.tensor(float(loss), dtype=dtype, device=device)
    raise CheckFailed(f"loss should be a 0-dim tensor or a number; got {type(loss).__name__}.")


def _unpack(result, B, T, H, V, dtype, device):
    """The four returned values by name, with their shapes checked."""
    if not (isinstance(result, tuple | list) and len(result) == 4):
        got = f"{len(result)} values" if isinstance(result, tuple | list) else type(result).__name__
        raise CheckFailed(f"readout_backward should return (loss, dH, dW_hy, db_y); got {got}.")
    loss, dH, dW_hy, db_y = result
    expect_tensor("dH", dH, (B, T, H), "(B, T, H)")
    expect_tensor("dW_hy", dW_hy, (H, V), "(H, V)")
    if isinstance(db_y, torch.Tensor) and db_y.dim() > 1 and db_y.shape[-1] == V:
        raise CheckFailed(
            f"db_y has shape {tuple(db_y.shape)}; expected (V,) = ({V},): b_y is added at every "
            "position (b, t), so sum its gradient over batch and time (dims 0 and 1)."
        )
    expect_tensor("db_y", db_y, (V,), "(V,)")
    return {"loss": _loss_value(loss, dtype, device), "dH": dH, "dW_hy": dW_hy, "db_y": db_y}


def _common_factor(got, want) -> float | None:
    """c when every gradient is c times the right one (c != 1), else None."""
    g = torch.cat([got[n].detach().reshape(-1).double() for n in READOUT_GRADS])
    w = torch.cat([want[n].reshape(-1).double() for n in READOUT_GRADS])
    if not bool(torch.isfinite(g).all()) or float(w @ w) == 0:
        return None
    c = float(g @ w) / float(w @ w)
    close = float((g - c * w).norm()) <= 1e-6 * float(w.norm()) * max(1.0, abs(c))
    return c if close and not math.isclose(c, 1.0, rel_tol=1e-6) else None


def _factor_hint(c: float, B: int, T: int) -> str:
    N = B * T
    named = [  # in this order: with N = 1 the sign comes first
        (
            -1.0,
            "Every gradient has the wrong sign: the gradient of -log p[y] with respect to the "
            "logits is p - onehot(y), not onehot(y) - p.",
        ),
        (
            float(N),
            f"Every gradient is N = B * T = {N} times too large: the loss is a mean over "
            "the N positions, so divide dlogits by N.",
        ),
        (
            -float(N),
            f"Every gradient is -N = -{N} times the right one: dlogits is "
            "(p - onehot(y)) / N (divided by N, and p first).",
        ),
        (
            float(T),
            f"Every gradient is T = {T} times too large: divide by N = B * T, the number "
            "of positions, not by B alone.",
        ),
        (
            float(B),
            f"Every gradient is B = {B} times too large: divide by N = B * T, the number "
            "of positions, not by T alone.",
        ),
        (1.0 / N, f"Every gradient is N = {N} times too small: divide by N once."),
    ]
    for value, hint in named:
        if math.isclose(c, value, rel_tol=1e-6):
            return hint
    return f"Every gradient is {c:.4g} times the right one: {DLOGITS}."


def check_readout_backward(
    readout_backward,
    *,
    batch_size=3,
    num_steps=4,
    num_hiddens=5,
    vocab_size=6,
    logit_scale=1.0,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """readout_backward(H_all, W_hy, b_y, Y) -> (loss, dH, dW_hy, db_y) must match autograd
    through logits = H_all W_hy + b_y and F.cross_entropy (the mean over all B * T positions).

    ``logit_scale`` sets the size of the logits: at 1000 exp(logits) overflows, and only a
    softmax that subtracts each row's maximum first stays finite.
    """
    B, T, H, V = batch_size, num_steps, num_hiddens, vocab_size
    H_all, W_hy, b_y, Y = readout_inputs(
        B, T, H, V, logit_scale=logit_scale, dtype=dtype, device=device, seed=seed
    )
    tol = tolerances(dtype)

    def run(W_hy, b_y):
        result = call_student(readout_backward, H_all, W_hy, b_y, Y)
        got = _unpack(result, B, T, H, V, dtype, device)
        want = reference_readout_backward(H_all, W_hy, b_y, Y)
        want = dict(zip(READOUT_NAMES, want, strict=True))
        return got, want, [n for n in READOUT_NAMES if not matches(got[n], want[n], **tol)]

    got, want, wrong = run(W_hy, b_y)
    if not wrong:
        largest = (H_all @ W_hy + b_y).abs().max().item()
        print(
            f"readout_backward matches autograd through F.cross_entropy (B={B}, T={T}, H={H}, "
            f"V={V}, logits up to {largest:.3g}, {dtype})."
        )
        return
    name = wrong[0]
    non_finite = [n for n in READOUT_NAMES if not bool(torch.isfinite(got[n]).all())]
    largest = (H_all @ W_hy + b_y).abs().max().item()
    if non_finite and largest > math.log(torch.finfo(dtype).max):  # exp(largest) is inf
        hint = (
            f"Not finite: {', '.join(non_finite)}, with logits as large as {largest:.0f}: "
            f"exp(logits) overflows (exp({largest:.0f}) is inf in {dtype}, and inf / inf is "
            "NaN). "
            "softmax(z) = softmax(z - max z): subtract each row's maximum before exp (and use "
            "logsumexp(z) = m + log(sum(exp(z - m))) for the loss)."
        )
        expect_close(non_finite[0], got[non_finite[0]], want[non_finite[0]], hint=hint, **tol)
    factor = _common_factor(got, want)
    if factor is not None:
        name = next(n for n in READOUT_GRADS if n in wrong)
        expect_close(name, got[name], want[name], hint=_factor_hint(factor, B, T), **tol)
    if not run(W_hy, torch.zeros_like(b_y))[2]:
        hint = (
            "Everything is right when b_y = 0 but not otherwise: is b_y added to the logits, "
            "logits = H_all @ W_hy + b_y?"
        )
        expect_close(name, got[name], want[name], hint=hint, **tol)
    uniform, uniform_want, uniform_wrong = run(torch.zeros_like(W_hy), torch.zeros_like(b_y))
    if "db_y" in uniform_wrong:
        diff = uniform["db_y"].detach() - uniform_want["db_y"]
        if bool(torch.isfinite(diff).all()) and float((diff - diff.mean()).abs().max()) < 1e-8:
            hint = (
                f"With W_hy = 0 and b_y = 0 every probability is 1 / V = {1 / V:.4g}, and your "
                "db_y is off by the same amount for every class: p is wrong. softmax runs over "
                "the last dim, the V scores of one position (dim=-1)."
            )
        else:
            hint = (
                "With W_hy = 0 and b_y = 0 every probability is 1 / V, so db_y only counts the "
                "targets: onehot(Y) must have exactly one 1 per position, at [b, t, Y[b, t]] "
                "(F.one_hot(Y, V) is (B, T, V)); subtract it once from p."
            )
        expect_close("db_y", uniform["db_y"], uniform_want["db_y"], hint=hint, **tol)
    if "dW_hy" in uniform_wrong:
        hint = (
            "With W_hy = 0 and b_y = 0 (every probability 1 / V) db_y is right but dW_hy is "
            "not: each target is counted, at the wrong position. Position (b, t) has target "
            "Y[b, t]: flatten logits and Y in the same order (logits.reshape(N, V) with "
            "Y.reshape(N)), or index the (B, T, V) tensor directly."
        )
        expect_close("dW_hy", uniform["dW_hy"], uniform_want["dW_hy"], hint=hint, **tol)
    hint = READOUT_HINTS[name]
    if len(wrong) > 1:
        hint += f" (Also wrong: {', '.join(n for n in wrong if n != name)}.)"
    expect_close(name, got[name], want[name], hint=hint, **tol)
