"""Integrity probes for lesson 02 (BPTT): the same properties as its tests, checked outside.

The student's functions are called in the sandboxed runner on inputs made here (``call``,
``clip_and_return``, ``scale_and_return``); the expected values are PyTorch's autograd,
``nn.RNN`` and ``clip_grad_norm_``, computed in the grader. The training loops
(``train_truncated_bptt``, ``train_step_clipped``) have no probes yet: their tests stand on
the in-kernel checks (autograder README, threat model 5).
"""

import math

import numpy as np
import torch

from rnncourse.checks.bptt import (
    reference_jacobian_norms,
    reference_rnn_backward,
    reference_rnn_cell_backward,
)
from rnncourse.checks.rnn import reference_rnn_forward
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    compare_all,
    compare_tensor,
    describe,
    sizes,
)

CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
LAYER_GRADS = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")


def _params(rng, D, H, dtype):
    """W_xh (D, H), W_hh (H, H), b_h (H,): large enough that tanh is not linear."""
    return [
        (rng.standard_normal((D, H)) * 0.6).astype(dtype),
        (rng.standard_normal((H, H)) * 0.5).astype(dtype),
        (rng.standard_normal(H) * 0.5).astype(dtype),
    ]


def _numpy(tensor):
    return tensor.detach().numpy()


# ----------------------------------------------------------------------------- student side


def clip_and_return(ns, function, case):
    """clip_grad_norm clips in place: its norm and the gradients after the call come back."""
    grads = case["grads"]
    norm = ns[function](grads, case["max_norm"])
    return [norm, grads]


def scale_and_return(ns, function, case):
    """with_spectral_radius must leave W unchanged: its result and W after the call."""
    W = case["W"]
    return [ns[function](W, case["radius"]), W]


# ----------------------------------------------------------------------------- rnn_cell_backward
def cell_cases(rng):
    cases = []
    for dtype in (np.float64, np.float64, np.float32):
        B, D, H = sizes(rng, 3)
        x_t, h_prev = rng.standard_normal((B, D)), np.tanh(rng.standard_normal((B, H)))
        x_t, h_prev = x_t.astype(dtype), h_prev.astype(dtype)
        W_xh, W_hh, b_h = _params(rng, D, H, dtype)
        h_t = _numpy(
            reference_rnn_forward(
                as_tensor(x_t)[:, None],
                as_tensor(h_prev),
                as_tensor(W_xh),
                as_tensor(W_hh),
                as_tensor(b_h),
            )[1]
        )
        dh_next = rng.standard_normal((B, H)).astype(dtype)
        cases.append({"args": [dh_next, [x_t, h_prev, h_t, W_xh, W_hh]], "b_h": b_h})
    return cases


def cell_expected(case):
    dh_next, (x_t, h_prev, _, W_xh, W_hh) = case["args"]
    return reference_rnn_cell_backward(
        *map(as_tensor, (dh_next, x_t, h_prev, W_xh, W_hh, case["b_h"]))
    )


def cell_compare(got, want, case):
    return compare_all("rnn_cell_backward", CELL_GRADS, got, want)


# ----------------------------------------------------------------------------- rnn_backward
def backward_cases(rng):
    cases = []
    for upstream in ("dense", "last", "sparse"):
        B, T, D, H = sizes(rng, 4)
        X = rng.standard_normal((B, T, D))
        h0 = np.tanh(rng.standard_normal((B, H)))
        W_xh, W_hh, b_h = _params(rng, D, H, np.float64)
        dH = rng.standard_normal((B, T, H))
        if upstream == "last":
            dH[:, :-1] = 0
        elif upstream == "sparse":
            dH[:, T - 2 :: -2] = 0
        H_all = _numpy(
            reference_rnn_forward(
                as_tensor(X), as_tensor(h0), as_tensor(W_xh), as_tensor(W_hh), as_tensor(b_h)
            )[0]
        )
        states = [h0] + [H_all[:, t] for t in range(T)]
        caches = [[X[:, t], states[t], states[t + 1], W_xh, W_hh] for t in range(T)]
        cases.append({"args": [dH, caches], "X": X, "h0": h0, "b_h": b_h})
    return cases


def backward_expected(case):
    dH, caches = case["args"]
    W_xh, W_hh = caches[0][3], caches[0][4]
    return reference_rnn_backward(
        *map(as_tensor, (dH, case["X"], case["h0"], W_xh, W_hh, case["b_h"]))
    )


def backward_compare(got, want, case):
    return compare_all("rnn_backward", LAYER_GRADS, got, want)


# ----------------------------------------------------------------------------- jacobian_norms
def jacobian_cases(rng):
    cases = []
    for _ in range(2):
        B, T, H = sizes(rng, 3, high=6)
        X = rng.standard_normal((B, T, H))
        h0 = np.tanh(rng.standard_normal((B, H)))
        W_xh, W_hh, b_h = _params(rng, H, H, np.float64)
        H_all = _numpy(
            reference_rnn_forward(
                as_tensor(X), as_tensor(h0), as_tensor(W_xh), as_tensor(W_hh), as_tensor(b_h)
            )[0]
        )
        cases.append({"args": [H_all, W_hh], "X": X, "h0": h0, "W_xh": W_xh, "b_h": b_h})
    return cases


def jacobian_expected(case):
    _, W_hh = case["args"]
    return reference_jacobian_norms(
        *map(as_tensor, (case["X"], case["h0"], case["W_xh"], W_hh, case["b_h"]))
    )


def jacobian_compare(got, want, case):
    return compare_tensor("norms", got, want)


# ----------------------------------------------------------------------------- with_spectral_radius
def radius_cases(rng):
    return [
        {"W": rng.standard_normal((n, n)), "radius": float(r)}
        for n, r in ((int(rng.integers(2, 8)), 1.5), (int(rng.integers(2, 8)), 0.5))
    ]


def radius_expected(case):
    W = as_tensor(case["W"])
    return W * (case["radius"] / torch.linalg.eigvals(W).abs().max())


def radius_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"with_spectral_radius gave {describe(got)}"
    result, W_after = got
    if compare_tensor("W", W_after, as_tensor(case["W"])):
        return "with_spectral_radius changed W in place; it must return a new tensor"
    return compare_tensor("the rescaled matrix", result, want)


# ----------------------------------------------------------------------------- clip_grad_norm
def clip_cases(rng):
    cases = []
    for max_norm, scale, bad in ((0.5, 3.0, None), (100.0, 1.0, None), (1.0, 1.0, float("nan"))):
        shapes = [
            tuple(sizes(rng, int(rng.integers(1, 3)))) for _ in range(int(rng.integers(1, 4)))
        ]
        grads = [rng.standard_normal(s) * scale for s in shapes]
        if bad is not None:
            grads[0].flat[0] = bad
        cases.append({"grads": grads, "max_norm": max_norm})
    return cases


def clip_expected(case):
    grads = [as_tensor(g) for g in case["grads"]]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, case["max_norm"])
    return norm, [p.grad for p in params]


def clip_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"clip_grad_norm gave {describe(got)}"
    norm, grads = got
    want_norm, want_grads = want
    if isinstance(norm, torch.Tensor) and norm.numel() == 1:
        norm = norm.item()
    if not isinstance(norm, int | float) or isinstance(norm, bool):
        return f"clip_grad_norm returned {describe(norm)}; expected the total norm"
    expected = want_norm.item()
    if not math.isfinite(expected):  # only the norm is graded then, as in the test
        same = math.isnan(norm) if math.isnan(expected) else norm == expected
        return (
            None if same else f"with a non-finite gradient the norm is {norm}; expected {expected}"
        )
    if not math.isclose(norm, expected, rel_tol=1e-9, abs_tol=1e-12):
        return f"clip_grad_norm returned {norm:.6g}; expected {expected:.6g}"
    return compare_all(
        "clip_grad_norm", [f"grads[{i}]" for i in range(len(want_grads))], grads, want_grads
    )


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "rnn_cell_backward": Method("call", cell_cases, cell_expected, cell_compare),
    "rnn_backward": Method("call", backward_cases, backward_expected, backward_compare),
    "jacobian_norms": Method("call", jacobian_cases, jacobian_expected, jacobian_compare),
    "with_spectral_radius": Method(
        "scale_and_return", radius_cases, radius_expected, radius_compare
    ),
    "clip_grad_norm": Method("clip_and_return", clip_cases, clip_expected, clip_compare),
}
