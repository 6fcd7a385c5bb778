"""Lesson 02's checks, through time: rnn_backward against autograd through nn.RNN."""

import torch

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.bptt.cell import (
    _forward_layer,
    _gradients,
    _quietly,
    reference_rnn_backward,
)
from rnncourse.checks.rnn import random_rnn_params

LAYER_GRADS = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")


UPSTREAM = ("dense", "last", "sparse")


def _layer_inputs(B, T, D, H, upstream, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 22)
    X = _randn(B, T, D, dtype=dtype, device=device, g=g)
    h0 = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    dH = _randn(B, T, H, dtype=dtype, device=device, g=g)
    if upstream == "last":  # a loss on the final state only, as in sequence classification
        dH[:, :-1] = 0
    elif upstream == "sparse":  # no loss at every other step, the last one included
        dH[:, torch.arange(T - 1, -1, -2)] = 0
    elif upstream != "dense":
        raise ValueError(f"upstream must be one of {UPSTREAM}")
    return X, h0, dH, random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)


def _layer_shapes(B, T, D, H):
    return [
        ((B, T, D), "(B, T, D)"),
        ((B, H), "(B, H)"),
        ((D, H), "(D, H)"),
        ((H, H), "(H, H)"),
        ((H,), "(H,)"),
    ]


def check_rnn_backward(
    rnn_backward,
    rnn_forward_with_cache,
    *,
    batch_size=3,
    num_steps=5,
    input_size=3,
    num_hiddens=4,
    upstream="dense",
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """rnn_backward(dH, caches) must match autograd through nn.RNN over T steps.

    ``upstream`` chooses dH: "dense" (every step), "last" (the final step only) or "sparse"
    (zero at every other step, the last one included).
    """
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, h0, dH, params = _layer_inputs(B, T, D, H, upstream, dtype, device, seed)
    tol = tolerances(dtype)

    def run(dH, X):
        caches = _forward_layer(rnn_forward_with_cache, X, h0, *params)
        result = call_student(rnn_backward, dH, caches)
        got = _gradients(result, LAYER_GRADS, _layer_shapes(B, X.shape[1], D, H), "rnn_backward")
        want = dict(zip(LAYER_GRADS, reference_rnn_backward(dH, X, h0, *params), strict=True))
        return got, want, [n for n in LAYER_GRADS if not matches(got[n], want[n], **tol)]

    got, want, wrong = run(dH, X)
    if not wrong:
        print(
            f"rnn_backward matches autograd through nn.RNN (B={B}, T={T}, D={D}, H={H}, "
            f"upstream={upstream}, {dtype})."
        )
        return
    one_step_hint = (
        "With one step rnn_backward is one call of rnn_cell_backward(dH[:, 0], caches[0]): "
        "dX[:, 0] is its dx_t and dh0 its dh_prev. Check that case first (and that "
        "rnn_cell_backward passes its own test)."
    )
    g = torch.Generator().manual_seed(seed + 23)
    first_only, last_only = torch.zeros_like(dH), torch.zeros_like(dH)
    first_only[:, 0] = _randn(B, H, dtype=dtype, device=device, g=g)
    last_only[:, -1] = _randn(B, H, dtype=dtype, device=device, g=g)
    one_wrong = run(first_only[:, :1], X[:, :1])[2] if T > 1 else wrong
    state_wrong = [n for n in wrong if n in ("dX", "dh0")]
    if one_wrong:
        name = next((n for n in one_wrong if n in wrong), wrong[0])
        expect_close(name, got[name], want[name], hint=one_step_hint, **tol)
    if not state_wrong:
        hint = (
            "dX and dh0 are right, so the gradient flows through time correctly; the parameter "
            "gradients must add up the contributions of every step: start dW_xh, dW_hh, db_h at "
            "zero and add (+=) each step's."
        )
        expect_close(wrong[0], got[wrong[0]], want[wrong[0]], hint=hint, **tol)
    probes = [
        (
            "With upstream gradient at the first step only (dH[:, 1:] = 0) no gradient comes "
            "back from later steps: the gradient reaching h_t is dH[:, t] plus what step t + 1 "
            "sends back. Is dH[:, t] added at step t, and does the loop run backwards in time "
            "(t = T - 1, ..., 0)?",
            first_only,
        ),
        (
            "With upstream gradient at the last step only, every earlier step still gets "
            "gradient, through dh_prev: carry it back and add it to the next step's "
            "dh_next (dh_next = dH[:, t] + dh_prev from step t + 1).",
            last_only,
        ),
    ]
    hint = (
        "One step is right, and so are upstream gradients at the first or the last step only, "
        "but the full case is not: the gradient reaching h_t must be dH[:, t] + dh_prev, at "
        "every step."
    )
    for probe_hint, probe_dH in probes:
        _, _, probe_wrong = run(probe_dH, X)
        if any(n in ("dX", "dh0") for n in probe_wrong):
            hint = probe_hint
            break
    name = state_wrong[0]
    expect_close(name, got[name], want[name], hint=hint, **tol)


EDGE_CASES = (
    ("T = 1", {"num_steps": 1}),
    ("upstream gradient at the last step only", {"upstream": "last"}),
    ("zero upstream gradient at every other step", {"upstream": "sparse", "num_steps": 6}),
    ("B = 1", {"batch_size": 1, "num_steps": 3}),
)


def check_rnn_backward_edge_cases(rnn_backward, rnn_forward_with_cache, *, seed=0):
    """rnn_backward on T = 1, a loss on the last step only, zero dH at some steps, B = 1."""
    for label, case in EDGE_CASES:
        try:
            _quietly(check_rnn_backward, rnn_backward, rnn_forward_with_cache, seed=seed, **case)
        except CheckFailed as err:
            raise CheckFailed(f"[edge case: {label}] {err}") from None
    print("rnn_backward handles " + "; ".join(label for label, _ in EDGE_CASES) + ".")
