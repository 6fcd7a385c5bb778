"""Lesson 02's checks, gradient flow: jacobian_norms, with_spectral_radius, the measured flow."""

import math

import torch

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    is_close,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.bptt.cell import reference_jacobian_norms
from rnncourse.checks.rnn import (
    random_rnn_params,
    reference_rnn_forward,
)


def _states(X, h0, W_xh, W_hh, b_h):
    return reference_rnn_forward(X, h0, W_xh, W_hh, b_h)[0]


def check_jacobian_norms(
    jacobian_norms,
    *,
    batch_size=2,
    num_steps=5,
    input_size=3,
    num_hiddens=4,
    dtype=torch.float64,
    seed=0,
):
    """jacobian_norms(H_all, W_hh) = ||dh_T / dh_s||_2 for s = 0..T, matching autograd."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed + 44)
    X = _randn(B, T, D, dtype=torch.float64, device="cpu", g=g)
    h0 = _randn(B, H, dtype=torch.float64, device="cpu", g=g).tanh()
    W_xh, W_hh, b_h = random_rnn_params(D, H, seed=seed)
    W_hh = W_hh * 2.0  # a Jacobian chain that neither dies nor blows up over a few steps
    tol = tolerances(dtype)

    def run(X, h0, W_xh, W_hh, b_h, H_all=None):
        H_all = _states(X, h0, W_xh, W_hh, b_h) if H_all is None else H_all
        Tn = H_all.shape[1]
        got = call_student(jacobian_norms, H_all.to(dtype), W_hh.to(dtype))
        expect_tensor("norms", got, (B, Tn + 1), "(B, T + 1): one norm per state h_0 .. h_T")
        return got

    got = run(X, h0, W_xh, W_hh, b_h)
    want = reference_jacobian_norms(X, h0, W_xh, W_hh, b_h).to(dtype)
    if matches(got, want, **tol):
        print(f"jacobian_norms matches autograd Jacobians (B={B}, T={T}, H={H}, {dtype}).")
        return
    # Probe 1: zero states (tanh' = 1) and W_hh = 0.9 I, where dh_T/dh_s = 0.9^(T - s) I.
    scaled_identity = 0.9 * torch.eye(H, dtype=torch.float64)
    zeros = torch.zeros(B, T, H, dtype=torch.float64)
    probe = run(X, h0, W_xh, scaled_identity, b_h, H_all=zeros)
    exact = (0.9 ** torch.arange(T, -1, -1, dtype=torch.float64)).expand(B, T + 1).to(dtype)
    if not matches(probe, exact, **tol):
        hint = (
            "With h_t = 0 (tanh' = 1) and W_hh = 0.9 I, dh_T/dh_s = 0.9^(T - s) I, whose norm "
            "is 0.9^(T - s): norms[:, s] belongs to h_s (the last entry, s = T, is 1; the "
            "first, s = 0, has the longest chain), and the norm is the spectral norm "
            "(torch.linalg.matrix_norm(..., ord=2)), not the Frobenius norm."
        )
        expect_close("norms", probe, exact, hint=hint, **tol)
    # Probe 2: one step, where the only Jacobian is diag(1 - h_1^2) W_hh^T.
    one = run(X[:, :1], h0, W_xh, W_hh, b_h)
    one_want = reference_jacobian_norms(X[:, :1], h0, W_xh, W_hh, b_h).to(dtype)
    if not matches(one, one_want, **tol):
        hint = (
            "With one step the only Jacobian is dh_1/dh_0 = diag(1 - h_1^2) W_hh^T, entry "
            "[i, j] = (1 - h_1[i]^2) W_hh[j, i]: is the tanh derivative taken at h_1 (the later "
            "state, H_all[:, 0]), and does it scale the rows of W_hh^T?"
        )
        expect_close("norms for T = 1", one, one_want, hint=hint, **tol)
    hint = (
        "Each single Jacobian is right but the chain is not: dh_T/dh_(s-1) = (dh_T/dh_s) J_s "
        "with J_s = diag(1 - h_s^2) W_hh^T; multiply each new Jacobian on the right, going "
        "back from s = T, and take the norm of the product at every s."
    )
    expect_close("norms", got, want, hint=hint, **tol)


def _spectral_radius(W):
    return torch.linalg.eigvals(W.double()).abs().max().item()


def check_with_spectral_radius(
    with_spectral_radius, *, size=6, radius=1.5, dtype=torch.float64, seed=0
):
    """with_spectral_radius(W, radius) returns W rescaled so that max |eigenvalue| = radius."""
    g = torch.Generator().manual_seed(seed + 58)  # seed 0: a complex pair of largest |eigenvalue|
    W = torch.randn(size, size, generator=g, dtype=torch.float64).to(dtype)
    original = W.clone()
    got = call_student(with_spectral_radius, W, radius, shared=(0,))  # W must stay unchanged
    expect_tensor("the result", got, (size, size), "like W")
    if not torch.equal(W, original):
        raise CheckFailed(
            "with_spectral_radius modifies W in place: return a new tensor (W * factor)."
        )
    tol = tolerances(dtype)
    if got.is_complex():
        raise CheckFailed(
            f"the result has dtype {got.dtype}; expected {W.dtype} like W. Scale W by a real "
            "number: the absolute value of an eigenvalue is real."
        )
    got64 = got.detach().double()
    # The answer must be c W with c > 0 (same directions, new size) and radius rho(c W) = radius.
    factor = ((got64 * W.double()).sum() / W.double().pow(2).sum()).item()
    multiple = factor > 0 and is_close(got64, factor * W.double(), **tol)
    got_radius = _spectral_radius(got64)
    if multiple and math.isclose(got_radius, radius, rel_tol=tol["rtol"] * 100):
        if got.dtype != W.dtype:
            raise CheckFailed(f"the result has dtype {got.dtype}; expected {W.dtype} like W.")
        print(
            f"with_spectral_radius sets the spectral radius to {radius} ({size}x{size}, {dtype})."
        )
        return
    if not multiple:
        raise CheckFailed(
            "the result is not W times a positive number: rescale W, do not change its shape "
            "(no transpose, no normalisation of rows or columns)."
        )
    sigma = torch.linalg.matrix_norm(got64, ord=2).item()
    max_real = torch.linalg.eigvals(got64).real.max().item()
    if math.isclose(sigma, radius, rel_tol=1e-6):
        hint = (
            "you scaled the largest singular value (the spectral norm) to radius; the spectral "
            "radius is the largest |eigenvalue|: torch.linalg.eigvals(W).abs().max()."
        )
    elif math.isclose(max_real, radius, rel_tol=1e-6):
        hint = (
            "the eigenvalues of a non-symmetric matrix are complex: the spectral radius is the "
            "largest absolute value, not the largest real part."
        )
    else:
        hint = "multiply W by radius / rho(W), where rho(W) = max |eigenvalue of W|."
    raise CheckFailed(f"the result has spectral radius {got_radius:.6g}; expected {radius}: {hint}")


FLOW_KEYS = ("ρ = 0.5", "ρ = 1.0", "ρ = 1.5", "ρ = 1.5, saturated")


def check_gradient_flow(flow, *, min_steps=20):
    """The measured ||dh_T/dh_s|| vanish for ρ = 0.5, explode for ρ = 1.5 in the linear regime,
    stay within a few orders of magnitude for ρ = 1.0 and vanish when tanh saturates."""
    if not isinstance(flow, dict) or set(flow) != set(FLOW_KEYS):
        got = sorted(flow) if isinstance(flow, dict) else type(flow).__name__
        raise CheckFailed(f"flow should be a dict with the keys {list(FLOW_KEYS)}; got {got}.")
    ends = {}
    for key in FLOW_KEYS:
        norms = flow[key]
        if not isinstance(norms, torch.Tensor) or norms.dim() != 1:
            raise CheckFailed(f"flow[{key!r}] should be a 1-D tensor of norms, s = 0 .. T.")
        if norms.numel() < min_steps + 1:
            raise CheckFailed(
                f"flow[{key!r}] covers {norms.numel() - 1} steps; use at least {min_steps}."
            )
        if not bool(torch.isfinite(norms).all()) or bool((norms <= 0).any()):
            raise CheckFailed(f"flow[{key!r}] has non-finite or non-positive norms.")
        if not math.isclose(norms[-1].item(), 1.0, rel_tol=1e-6):
            raise CheckFailed(
                f"flow[{key!r}][-1] = {norms[-1].item():.3g}: the last entry is "
                "||dh_T/dh_T|| = ||I|| = 1."
            )
        ends[key] = (norms[0].item(), norms[norms.numel() // 2].item())
    T = flow[FLOW_KEYS[0]].numel() - 1
    rules = [
        (FLOW_KEYS[0], lambda first, mid: first < 1e-3 and first < mid < 1, "vanish (below 1e-3)"),
        (FLOW_KEYS[1], lambda first, mid: 1e-2 < first < 1e2, "stay between 1e-2 and 1e2"),
        (FLOW_KEYS[2], lambda first, mid: first > 1e3 and first > mid > 1, "explode (above 1e3)"),
        (FLOW_KEYS[3], lambda first, mid: first < 1e-3, "vanish (below 1e-3)"),
    ]
    for key, ok, expected in rules:
        first, mid = ends[key]
        if not ok(first, mid):
            raise CheckFailed(
                f"with {key} the gradient norm {T} steps back is {first:.3g} (halfway {mid:.3g}); "
                f"it should {expected}. Is W_hh scaled with with_spectral_radius, are the linear "
                "runs fed quiet inputs (states near 0) and the saturated one loud inputs?"
            )
    summary = ", ".join(f"{key}: {ends[key][0]:.1e}" for key in FLOW_KEYS)
    print(f"Gradient norms {T} steps back: {summary}.")
