"""Lesson 02's checks: the reference passes every one, and each typical bug fails with its hint."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse import rel_error
from rnncourse.checks import (
    CheckFailed,
    check_clip_grad_norm,
    check_clip_grad_norm_non_finite,
    check_clipping_tames_explosion,
    check_gradient_flow,
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
from rnncourse.checks import _core as checks_core
from rnncourse.checks.bptt import cubic, cubic_differences, smooth
from rnncourse.numerics import rel_error_norm
from rnncourse.plots import draw_bptt, plot_log_curves
from tests.course import reference_namespace
from tests.integrity_support import (
    passes_probe,
    probe_of,
    rejection,
)

LESSON = "02_bptt"
CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")


@pytest.fixture(scope="module")
def ref():
    namespace = reference_namespace(LESSON)
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
    cell, fwd_cell = ref["rnn_cell_backward"], ref["rnn_cell_forward_with_cache"]
    layer, fwd = ref["rnn_backward"], ref["rnn_forward_with_cache"]
    check_rnn_cell_backward(cell, fwd_cell)
    check_numerical_gradient(ref["numerical_gradient"])
    check_rnn_backward(layer, fwd)
    check_rnn_backward_edge_cases(layer, fwd)
    check_readout_backward(ref["readout_backward"])
    check_readout_backward(ref["readout_backward"], logit_scale=1000.0)
    check_train_truncated_bptt(ref["train_truncated_bptt"])
    check_jacobian_norms(ref["jacobian_norms"])
    check_with_spectral_radius(ref["with_spectral_radius"])
    check_gradient_flow(ref["flow"])
    check_clip_grad_norm(ref["clip_grad_norm"])
    check_clip_grad_norm(ref["clip_grad_norm"], max_norm=100.0)
    check_clip_grad_norm_non_finite(ref["clip_grad_norm"])
    check_train_step_clipped(ref["train_step_clipped"])
    check_clipping_tames_explosion(
        ref["unclipped_losses"], ref["clipped_losses"], vocab_size=ref["VOCAB_SIZE"]
    )
    in_place = ("numerical_gradient", "with_spectral_radius", "clip_grad_norm")
    for function in PLAIN_CALLS + LOOPS + in_place:
        passes_probe(LESSON, function, ref[function])


PLAIN_CALLS = ("rnn_cell_backward", "rnn_backward", "readout_backward", "jacobian_norms")
LOOPS = ("train_truncated_bptt", "train_step_clipped")


def test_stubs_fail_with_a_clear_message(ref):
    fwd_cell, fwd = ref["rnn_cell_forward_with_cache"], ref["rnn_forward_with_cache"]
    for check, extra in [
        (check_rnn_cell_backward, (fwd_cell,)),
        (check_numerical_gradient, ()),
        (check_rnn_backward, (fwd,)),
        (check_readout_backward, ()),
        (check_rnn_backward_edge_cases, (fwd,)),
        (check_train_truncated_bptt, ()),
        (check_jacobian_norms, ()),
        (check_with_spectral_radius, ()),
        (check_clip_grad_norm, ()),
        (check_clip_grad_norm_non_finite, ()),
        (check_train_step_clipped, ()),
    ]:
        fails(check, not_implemented, *extra, match="not implemented yet")


def test_an_edited_forward_is_reported(ref):
    def forward_without_bias(x_t, h_prev, W_xh, W_hh, b_h):
        h_t = torch.tanh(x_t @ W_xh + h_prev @ W_hh)
        return h_t, (x_t, h_prev, h_t, W_xh, W_hh)

    fails(check_rnn_cell_backward, ref["rnn_cell_backward"], forward_without_bias, match="re-run")
    fails(
        check_rnn_backward,
        ref["rnn_backward"],
        lambda X, h0, *p: (ref["rnn_forward_with_cache"](X, h0, *p)[0], []),
        match="re-run its cell",
    )


# ----------------------------------------------------------------------------- one step
def cell_with(da=None, **wrong):
    """rnn_cell_backward written out, with ``da`` or some of the five gradients replaced."""

    def backward(dh_next, cache):
        x, h_prev, h_t, W_xh, W_hh = cache
        v = {"x": x, "h_prev": h_prev, "h_t": h_t, "W_xh": W_xh, "W_hh": W_hh, "dh": dh_next}
        v["da"] = da(v) if da else dh_next * (1 - h_t**2)
        right = {
            "dx_t": lambda v: v["da"] @ v["W_xh"].T,
            "dh_prev": lambda v: v["da"] @ v["W_hh"].T,
            "dW_xh": lambda v: v["x"].T @ v["da"],
            "dW_hh": lambda v: v["h_prev"].T @ v["da"],
            "db_h": lambda v: v["da"].sum(0),
        }
        return tuple(wrong.get(name, right[name])(v) for name in CELL_GRADS)

    return backward


CELL_BUGS = {
    "missing (1 - h^2)": (cell_with(da=lambda v: v["dh"]), "tanh derivative is wrong"),
    "tanh applied twice": (
        cell_with(da=lambda v: v["dh"] * (1 - torch.tanh(v["h_t"]) ** 2)),
        "do not apply tanh to it again",
    ),
    "derivative at h_prev": (
        cell_with(da=lambda v: v["dh"] * (1 - v["h_prev"] ** 2)),
        "Compute da first",
    ),
    "dW_hh transposed": (cell_with(dW_hh=lambda v: v["da"].T @ v["h_prev"]), "h_prev comes first"),
    "dW_hh from h_t": (cell_with(dW_hh=lambda v: v["h_t"].T @ v["da"]), r"h_prev \(not h_t\)"),
    "dh_prev without transpose": (
        cell_with(dh_prev=lambda v: v["da"] @ v["W_hh"]),
        r"dh_prev: .*W_hh transposed",
    ),
    "dx_t without transpose": (cell_with(dx_t=lambda v: v["da"] @ v["W_xh"]), "RuntimeError"),
    "dW_xh transposed": (
        cell_with(dW_xh=lambda v: v["da"].T @ v["x"]),
        r"dW_xh has shape \(5, 3\); expected \(D, H\) = \(3, 5\)",
    ),
    "db_h not summed over the batch": (
        cell_with(db_h=lambda v: v["da"]),
        r"db_h has shape \(4, 5\).*sum its gradient over the batch",
    ),
    "db_h averaged over the batch": (
        cell_with(db_h=lambda v: v["da"].mean(0)),
        "db_h = da summed over the batch",
    ),
    "dx_t from dh_next": (cell_with(dx_t=lambda v: v["dh"] @ v["W_xh"].T), r"dx_t = da W_xh\^T"),
    "four gradients": (lambda dh, cache: cell_with()(dh, cache)[:4], "should return 5 tensors"),
    "fixed float32": (
        lambda dh, cache: tuple(g.float() for g in cell_with()(dh, cache)),
        "dtype torch.float32",
    ),
}


@pytest.mark.parametrize("bug", CELL_BUGS)
def test_cell_check_catches(ref, bug):
    fn, hint = CELL_BUGS[bug]
    fails(check_rnn_cell_backward, fn, ref["rnn_cell_forward_with_cache"], match=hint)


def test_the_written_out_cell_is_right(ref):
    """The mutations above start from a correct backward pass (so each bug is the only one)."""
    check_rnn_cell_backward(cell_with(), ref["rnn_cell_forward_with_cache"])


def test_the_graders_cell_cases_catch_what_visible_ones_miss(ref):
    fwd, cell = ref["rnn_cell_forward_with_cache"], ref["rnn_cell_backward"]

    def by_autograd(dh_next, cache):  # rebuilds the step from the cache and calls autograd
        x, h_prev, h_t, W_xh, W_hh = (t.detach() for t in cache)
        b_h = (torch.atanh(h_t) - x @ W_xh - h_prev @ W_hh)[0]  # a_t = atanh(h_t)
        leaves = [t.clone().requires_grad_() for t in (x, h_prev, W_xh, W_hh, b_h)]
        with torch.enable_grad():
            h = torch.tanh(leaves[0] @ leaves[2] + leaves[1] @ leaves[3] + leaves[4])
            return torch.autograd.grad(h, leaves, grad_outputs=dh_next)

    check_rnn_cell_backward(by_autograd, fwd)  # the visible check cannot tell ...
    rejection(LESSON, "rnn_cell_backward", by_autograd, "calls autograd")
    x = torch.ones(2, requires_grad=True)  # ... and autograd works again afterwards
    x.sum().backward()
    assert torch.equal(x.grad, torch.ones(2))

    def squeezes(dh_next, cache):  # breaks for B = 1
        dx_t, dh_prev, *rest = cell(dh_next, cache)
        return (dx_t.squeeze(), dh_prev.squeeze(), *rest)

    check_rnn_cell_backward(squeezes, fwd)
    rejection(LESSON, "rnn_cell_backward", squeezes, "case B = 1, D = 7, H = 2")

    def always_float64(dh_next, cache):  # breaks for float32 inputs
        return tuple(g.double() for g in cell(dh_next, cache))

    check_rnn_cell_backward(always_float64, fwd)
    rejection(LESSON, "rnn_cell_backward", always_float64, "float32: dx_t has dtype torch.float64")


# ----------------------------------------------------------------------------- numerical_gradient
def numgrad_with(
    *,
    difference="centred",
    divide_by=2,
    half_steps=False,
    own_step=None,
    restore=True,
    copy=False,
    default_eps=1e-6,
):
    """numerical_gradient written out, with one thing done wrong."""

    def numerical_gradient(f, x, eps=default_eps):
        step = own_step or (eps / 2 if half_steps else eps)
        grad = torch.zeros_like(x)
        flat, flat_grad = (x.clone() if copy else x).view(-1), grad.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            here = f().item()
            flat[i] = old + step
            plus = f().item()
            flat[i] = old - step
            minus = f().item()
            if restore:
                flat[i] = old
            if difference == "forward":
                flat_grad[i] = (plus - here) / step
            elif difference == "backward":
                flat_grad[i] = (here - minus) / step
            else:
                flat_grad[i] = (plus - minus) / (divide_by * step)
        return grad

    return numerical_gradient


def numgrad_by_rows(f, x, eps=1e-6):
    """Perturbs x[i], a whole row of a matrix, instead of one entry."""
    grad = torch.zeros_like(x)
    for i in range(len(x)):
        x[i] += eps
        plus = f().item()
        x[i] -= 2 * eps
        minus = f().item()
        x[i] += eps
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def numgrad_by_autograd(f, x, eps=1e-6):
    """The exact gradient from autograd: no differences at all."""
    x.requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(f(), x)
    x.requires_grad_(False)
    return grad


NUMGRAD_BUGS = {
    "one-sided forward": (numgrad_with(difference="forward"), r"\(f\(x \+ eps e_i\) - f\(x\)\)"),
    "one-sided backward": (
        numgrad_with(difference="backward"),
        r"one-sided difference \(f\(x\) - f\(x - eps e_i\)\)",
    ),
    "divided by eps": (numgrad_with(divide_by=1), "2 eps apart"),
    "steps of eps / 2": (numgrad_with(half_steps=True), "steps of eps / 2"),
    "eps ignored": (numgrad_with(own_step=1e-6), "use the eps passed in"),
    "x not restored": (
        numgrad_with(restore=False),
        r"x is not what it was: 12 of its 12 entries moved \(entry \d+, flat, by 0.1\)",
    ),
    "perturbs a copy": (numgrad_with(copy=True), "every entry is 0.*not a copy"),
    "whole rows": (numgrad_by_rows, "perturb one entry at a time"),
    "default eps too large": (numgrad_with(default_eps=1e-2), "Is the default eps 1e-6"),
    "float32 result": (
        lambda f, x, eps=1e-6: numgrad_with()(f, x, eps).float(),
        "dtype torch.float32",
    ),
    "autograd": (numgrad_by_autograd, "raised RuntimeError.*take differences of its values"),
    "a list": (lambda f, x, eps=1e-6: numgrad_with()(f, x, eps).tolist(), "torch.Tensor"),
}


@pytest.mark.parametrize("bug", NUMGRAD_BUGS)
def test_numerical_gradient_check_catches(bug):
    fn, hint = NUMGRAD_BUGS[bug]
    fails(check_numerical_gradient, fn, match=hint)


def test_the_written_out_numerical_gradient_is_right():
    check_numerical_gradient(numgrad_with())
    passes_probe(LESSON, "numerical_gradient", numgrad_with())


@pytest.mark.parametrize(
    "bug", ["one-sided forward", "divided by eps", "eps ignored", "x not restored", "whole rows"]
)
def test_the_graders_difference_cases_catch_every_bug_the_test_does(bug):
    rejection(LESSON, "numerical_gradient", NUMGRAD_BUGS[bug][0], "on the grader's case")


def test_the_graders_difference_cases_refuse_autograd():
    """The test's f runs without autograd (the visible check fails it: NUMGRAD_BUGS); the
    grader's refuses autograd itself, with the lesson's message."""
    rejection(LESSON, "numerical_gradient", numgrad_by_autograd, "calls autograd")


def test_the_closed_forms_are_the_differences_they_name():
    """The check's closed forms, against the differences computed here in float64."""
    g = torch.Generator().manual_seed(0)
    a, b, x = (torch.randn(4, generator=g, dtype=torch.float64) for _ in range(3))
    eps = 0.1

    def f(x):
        return a * x**3 + b * x**2  # entry by entry: the function is separable

    taken = {
        "centred": (f(x + eps) - f(x - eps)) / (2 * eps),
        "forward": (f(x + eps) - f(x)) / eps,
        "backward": (f(x) - f(x - eps)) / eps,
        "divided by eps": (f(x + eps) - f(x - eps)) / eps,
        "half steps": (f(x + eps / 2) - f(x - eps / 2)) / eps,
        "eps ignored": cubic(a, b, x)[1],
    }
    forms = cubic_differences(a, b, x, eps)
    assert set(forms) == set(taken)
    for name, value in taken.items():
        torch.testing.assert_close(forms[name], value, rtol=1e-12, atol=1e-12)
    w, y = torch.randn(2, 3, generator=g, dtype=torch.float64).unbind(0)
    leaf = y.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(smooth(w, leaf)[0], leaf)
    torch.testing.assert_close(smooth(w, y)[1], exact)


# ----------------------------------------------------------------------------- through time
def layer_with(
    cell,
    *,
    carry=True,
    add_upstream=True,
    accumulate=("dW_xh", "dW_hh", "db_h"),
    forward=False,
    dh0_reaching_h1=False,
):
    """rnn_backward written out on top of ``cell``, with one thing done wrong."""

    def backward(dH, caches):
        B, T, H = dH.shape
        x_first, _, _, W_xh, W_hh = caches[0]
        dX = dH.new_zeros(B, T, x_first.shape[1])
        grads = {"dW_xh": torch.zeros_like(W_xh), "dW_hh": torch.zeros_like(W_hh)}
        grads["db_h"] = dH.new_zeros(H)
        dh_prev = dH.new_zeros(B, H)
        for t in range(T) if forward else reversed(range(T)):
            upstream = dH[:, t] if add_upstream or t == T - 1 else torch.zeros_like(dH[:, t])
            dh_next = upstream + (dh_prev if carry else 0)
            dX[:, t], dh_prev, *step = cell(dh_next, caches[t])
            for name, value in zip(("dW_xh", "dW_hh", "db_h"), step, strict=True):
                grads[name] = grads[name] + value if name in accumulate else value
        dh0 = dh_next if dh0_reaching_h1 else dh_prev
        return dX, dh0, grads["dW_xh"], grads["dW_hh"], grads["db_h"]

    return backward


def layer_bugs(cell):
    def time_major(dH, caches):
        dX, *rest = layer_with(cell)(dH, caches)
        return (dX.transpose(0, 1), *rest)

    return {
        "dh_prev not carried": (layer_with(cell, carry=False), "carry it back"),
        "dH[:, t] not added": (layer_with(cell, add_upstream=False), r"Is dH\[:, t\] added"),
        "loop forward in time": (layer_with(cell, forward=True), "backwards in time"),
        "dW_hh not accumulated": (layer_with(cell, accumulate=("dW_xh", "db_h")), r"\+="),
        "nothing accumulated": (layer_with(cell, accumulate=()), "add up the contributions"),
        "dh0 is the gradient reaching h_1": (
            layer_with(cell, dh0_reaching_h1=True),
            "dh0 its dh_prev",
        ),
        "time-major dX": (time_major, r"dX has shape \(5, 3, 3\); expected \(B, T, D\)"),
        "cell without (1 - h^2)": (
            layer_with(cell_with(da=lambda v: v["dh"])),
            "rnn_cell_backward passes its own test",
        ),
    }


@pytest.mark.parametrize("upstream", ["dense", "last", "sparse"])
def test_layer_check_catches_typical_bugs(ref, upstream):
    for name, (fn, hint) in layer_bugs(ref["rnn_cell_backward"]).items():
        if upstream == "last" and name == "dH[:, t] not added":
            continue  # with a loss on the last step only, that is no bug
        with pytest.raises(CheckFailed, match=hint):
            check_rnn_backward(fn, ref["rnn_forward_with_cache"], upstream=upstream)
            pytest.fail(f"check_rnn_backward accepted: {name} (upstream={upstream})")


def test_the_written_out_layer_is_right(ref):
    check_rnn_backward(layer_with(ref["rnn_cell_backward"]), ref["rnn_forward_with_cache"])


def test_edge_cases_catch_what_the_dense_check_misses(ref):
    fwd, cell = ref["rnn_forward_with_cache"], ref["rnn_cell_backward"]

    def skips_quiet_steps(dH, caches):  # "no loss at this step, nothing to do": drops dh_prev
        B, T, H = dH.shape
        dX, dh0, dW_xh, dW_hh, db_h = layer_with(cell)(dH, caches)
        quiet = [t for t in range(T) if not bool(dH[:, t].abs().max() > 0)]
        if not quiet:
            return dX, dh0, dW_xh, dW_hh, db_h
        dX = dX.clone()
        dX[:, quiet] = 0
        return dX, dh0, dW_xh, dW_hh, db_h

    check_rnn_backward(skips_quiet_steps, fwd)
    fails(
        check_rnn_backward_edge_cases,
        skips_quiet_steps,
        fwd,
        match=r"\[edge case: upstream gradient at the last step only\]",
    )

    def squeezes_dh0(dH, caches):  # breaks for B = 1
        dX, dh0, *rest = layer_with(cell)(dH, caches)
        return (dX, dh0.squeeze(), *rest)

    check_rnn_backward(squeezes_dh0, fwd)
    fails(check_rnn_backward_edge_cases, squeezes_dh0, fwd, match=r"\[edge case: B = 1\]")


def test_the_graders_layer_cases_refuse_autograd(ref):
    fwd = ref["rnn_forward_with_cache"]

    def by_autograd(dH, caches):
        X = torch.stack([c[0] for c in caches], 1).detach().requires_grad_()
        h0 = caches[0][1].detach().requires_grad_()
        W_xh, W_hh = (p.detach().requires_grad_() for p in caches[0][3:])
        H_last = caches[0][2]
        b_h = torch.atanh(H_last) - caches[0][0] @ caches[0][3] - caches[0][1] @ caches[0][4]
        b_h = b_h[0].detach().requires_grad_()
        with torch.enable_grad():
            H_all, _ = fwd(X, h0, W_xh, W_hh, b_h)
            return torch.autograd.grad(H_all, [X, h0, W_xh, W_hh, b_h], grad_outputs=dH)

    check_rnn_backward(by_autograd, fwd)
    rejection(LESSON, "rnn_backward", by_autograd, "calls autograd")


# ----------------------------------------------------------------------------- the read-out
def readout_with(
    *,
    divide="N",
    sign=1,
    stable=True,
    targets="right",
    softmax_dim=-1,
    bias=True,
    db_dims=(0, 1),
    loss_sum=False,
):
    """readout_backward written out, with one thing done wrong."""

    def readout_backward(H_all, W_hy, b_y, Y):
        B, T, _ = H_all.shape
        V, N = W_hy.shape[1], B * T
        logits = H_all @ W_hy + (b_y if bias else 0)  # (B, T, V)
        z = logits - logits.amax(dim=-1, keepdim=True) if stable else logits
        e = z.exp()
        p = e / e.sum(dim=softmax_dim, keepdim=True)
        log_p = z - e.sum(dim=-1, keepdim=True).log()
        if targets == "transposed":  # the targets flattened in another order than the logits
            onehot = F.one_hot(Y.T.reshape(-1), V).reshape(B, T, V)
        elif targets == "broadcast":  # every class that is a target anywhere, at every position
            onehot = torch.zeros_like(p)
            onehot[:, :, Y] = 1
        else:
            onehot = F.one_hot(Y, V)
        loss = -(log_p * onehot).sum() / (1 if loss_sum else N)
        dlogits = sign * (p - onehot) / {"N": N, "B": B, "T": T, "none": 1}[divide]
        dW_hy = H_all.reshape(N, -1).T @ dlogits.reshape(N, V)
        return loss, dlogits @ W_hy.T, dW_hy, dlogits.sum(dim=db_dims)

    return readout_backward


READOUT_BUGS = {
    "not divided by N": (readout_with(divide="none"), r"N = B \* T = 12 times too large"),
    "divided by B only": (readout_with(divide="B"), "T = 4 times too large"),
    "divided by T only": (readout_with(divide="T"), "B = 3 times too large"),
    "sign flipped": (readout_with(sign=-1), "not onehot\\(y\\) - p"),
    "targets transposed": (readout_with(targets="transposed"), "in the same order"),
    "a target at every position": (readout_with(targets="broadcast"), "exactly one 1 per position"),
    "softmax over the batch": (readout_with(softmax_dim=0), "softmax runs over the last dim"),
    "b_y left out": (readout_with(bias=False), "is b_y added"),
    "db_y summed over the batch only": (
        readout_with(db_dims=(0,)),
        r"db_y has shape \(4, 6\); expected \(V,\).*dims 0 and 1",
    ),
    "the summed loss": (readout_with(loss_sum=True), "loss: .*the mean over the N"),
    "three values": (lambda *args: readout_with()(*args)[1:], r"should return \(loss"),
}


@pytest.mark.parametrize("bug", READOUT_BUGS)
def test_readout_check_catches(bug):
    fn, hint = READOUT_BUGS[bug]
    fails(check_readout_backward, fn, match=hint)


def test_the_written_out_readout_is_right():
    check_readout_backward(readout_with())
    check_readout_backward(readout_with(), logit_scale=1000.0)
    passes_probe(LESSON, "readout_backward", readout_with())


def test_only_large_logits_catch_a_softmax_without_the_max():
    unstable = readout_with(stable=False)
    check_readout_backward(unstable)  # ordinary logits: exp does not overflow
    fails(check_readout_backward, unstable, logit_scale=1000.0, match="subtract each row's maximum")
    rejection(LESSON, "readout_backward", unstable, "logits = in the thousands")


@pytest.mark.parametrize(
    "bug", ["not divided by N", "sign flipped", "targets transposed", "b_y left out"]
)
def test_the_graders_readout_cases_catch_every_bug_the_test_does(bug):
    rejection(LESSON, "readout_backward", READOUT_BUGS[bug][0], "on the grader's case")


def test_the_graders_readout_cases_catch_what_visible_ones_miss():
    right = readout_with()

    def squeezes(*args):  # breaks for B = 1, T = 1
        loss, dH, dW_hy, db_y = right(*args)
        return loss, dH.squeeze(), dW_hy, db_y

    check_readout_backward(squeezes)
    rejection(LESSON, "readout_backward", squeezes, "case B = 1, T = 1")

    def always_float64(*args):
        return tuple(t.double() for t in right(*args))

    check_readout_backward(always_float64)
    rejection(LESSON, "readout_backward", always_float64, "float32: dH has dtype torch.float64")

    def by_autograd(H_all, W_hy, b_y, Y):
        leaves = [t.detach().clone().requires_grad_(True) for t in (H_all, W_hy, b_y)]
        with torch.enable_grad():
            logits = leaves[0] @ leaves[1] + leaves[2]
            loss = F.cross_entropy(logits.flatten(0, 1), Y.flatten())
            return (loss.detach(), *torch.autograd.grad(loss, leaves))

    check_readout_backward(by_autograd)
    rejection(LESSON, "readout_backward", by_autograd, "calls autograd")


# ----------------------------------------------------------------------------- truncated BPTT
def tbptt_with(*, detach=True, retain_graph=False, carry=True, zero_grad=True, order="right"):
    """train_truncated_bptt written out, with one thing done wrong."""

    def train(model, optimizer, X, Y, chunk_size, stride=None, reduction="mean", floats=True):
        h, losses = None, []
        stride = stride or chunk_size
        stop = X.shape[1]
        for start in range(0, stop, stride):
            X_chunk, Y_chunk = X[:, start : start + chunk_size], Y[:, start : start + chunk_size]
            if h is not None and detach:
                h = h.detach()
            logits, h_last = model(X_chunk, h if carry else None)
            h = h_last
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), Y_chunk.reshape(-1), reduction=reduction
            )
            if zero_grad:
                optimizer.zero_grad()
            if order == "step first":
                optimizer.step()
                loss.backward(retain_graph=retain_graph)
            else:
                loss.backward(retain_graph=retain_graph)
                optimizer.step()
            losses.append(loss.item() if floats else loss.detach())
        return losses

    return train


TBPTT_BUGS = {
    "no detach, retain_graph": (
        tbptt_with(detach=False, retain_graph=True),
        r"inplace operation.*\n.*detach it at the\s+chunk boundary",
    ),
    "no detach": (tbptt_with(detach=False), r"detach it at the\s+chunk boundary"),
    "state reset": (tbptt_with(carry=False), "state is reset"),
    "no zero_grad": (tbptt_with(zero_grad=False), "zero_grad"),
    "step before backward": (tbptt_with(order="step first"), "no gradient at the step"),
    "drops the last partial chunk": (
        lambda m, o, X, Y, k: tbptt_with()(m, o, X[:, : X.shape[1] // k * k], Y, k),
        "called 2 times",
    ),
    "overlapping chunks": (
        lambda m, o, X, Y, k: tbptt_with()(m, o, X, Y, k, stride=k - 1),
        "called 4 times",
    ),
    "losses as tensors": (
        lambda m, o, X, Y, k: tbptt_with()(m, o, X, Y, k, floats=False),
        "Python floats",
    ),
    "summed loss": (
        lambda m, o, X, Y, k: tbptt_with()(m, o, X, Y, k, reduction="sum"),
        "mean cross-entropy",
    ),
    "targets of the first chunk": (
        lambda m, o, X, Y, k: tbptt_with()(m, o, X, Y[:, :k].repeat(1, 3)[:, : Y.shape[1]], k),
        r"losses\[1\]",
    ),
}


@pytest.mark.parametrize("bug", TBPTT_BUGS)
def test_tbptt_check_catches(bug):
    fn, hint = TBPTT_BUGS[bug]
    fails(check_train_truncated_bptt, fn, match=hint)


def test_the_written_out_tbptt_is_right():
    check_train_truncated_bptt(tbptt_with())


def test_the_graders_tbptt_cases_try_other_chunkings():
    def forgets_short_chunks(model, optimizer, X, Y, chunk_size):  # fine while k divides T ...
        if X.shape[1] < chunk_size:
            return []
        return tbptt_with()(model, optimizer, X, Y, chunk_size)

    check_train_truncated_bptt(forgets_short_chunks)
    rejection(LESSON, "train_truncated_bptt", forgets_short_chunks, "T = 4, chunk_size = 6")


@pytest.mark.parametrize("bug", TBPTT_BUGS)
def test_the_graders_tbptt_cases_catch_every_bug_the_test_does(bug):
    rejection(LESSON, "train_truncated_bptt", TBPTT_BUGS[bug][0], ".")


# ----------------------------------------------------------------------------- gradient flow
def norms_with(*, derivative=True, transpose=True, right=True, ord=2, at="h_s", reverse=False):
    """jacobian_norms written out, with one thing done wrong."""

    def norms(H_all, W_hh):
        B, T, H = H_all.shape
        G = torch.eye(H, dtype=H_all.dtype).expand(B, H, H)
        out = [torch.ones(B, dtype=H_all.dtype)]
        W = W_hh.T if transpose else W_hh
        for s in range(T, 0, -1):
            h = H_all[:, s - 1] if at == "h_s" else H_all[:, s - 2] if s > 1 else 0 * H_all[:, 0]
            d = (1 - h**2) if derivative else torch.ones_like(h)
            J = d[:, :, None] * W
            G = G @ J if right else J @ G
            out.append(torch.linalg.matrix_norm(G, ord=ord))
        out = torch.stack(out[::-1], dim=1)
        return out.flip(1) if reverse else out

    return norms


JACOBIAN_BUGS = {
    "missing (1 - h^2)": (norms_with(derivative=False), "is the tanh derivative taken at h_1"),
    "W_hh not transposed": (norms_with(transpose=False), "scale the rows of W_hh"),
    "Frobenius norm": (norms_with(ord="fro"), "spectral norm"),
    "reversed": (norms_with(reverse=True), r"norms\[:, s\] belongs to h_s"),
    "derivative at h_(s-1)": (norms_with(at="h_(s-1)"), "taken at h_1"),
    "multiplied on the left": (norms_with(right=False), "multiply each new Jacobian on the right"),
    "no entry for s = T": (
        lambda H_all, W: norms_with()(H_all, W)[:, :-1],
        r"norms has shape \(2, 5\); expected \(B, T \+ 1\)",
    ),
}


@pytest.mark.parametrize("bug", JACOBIAN_BUGS)
def test_jacobian_check_catches(bug):
    fn, hint = JACOBIAN_BUGS[bug]
    fails(check_jacobian_norms, fn, match=hint)


def test_the_written_out_jacobian_norms_are_right():
    check_jacobian_norms(norms_with())


def test_the_graders_jacobian_cases_refuse_autograd():
    def by_autograd(H_all, W_hh):
        B, T, H = H_all.shape
        G = torch.eye(H, dtype=H_all.dtype).expand(B, H, H)
        out = [torch.ones(B, dtype=H_all.dtype)]
        for s in range(T, 0, -1):
            Js = []
            for b in range(B):  # tanh(h W + atanh(h_s)) has the Jacobian diag(1 - h_s^2) W^T at 0
                c = torch.atanh(H_all[b, s - 1])
                Js.append(
                    torch.autograd.functional.jacobian(
                        lambda h, c=c: torch.tanh(h @ W_hh + c), torch.zeros_like(c)
                    )
                )
            G = G @ torch.stack(Js)
            out.append(torch.linalg.matrix_norm(G, ord=2))
        return torch.stack(out[::-1], dim=1)

    check_jacobian_norms(by_autograd)
    rejection(LESSON, "jacobian_norms", by_autograd, "calls autograd")


SPECTRAL_BUGS = {
    "largest singular value": (
        lambda W, r: W * (r / torch.linalg.matrix_norm(W, ord=2)),
        "largest singular value",
    ),
    "largest real part": (
        lambda W, r: W * (r / torch.linalg.eigvals(W).real.max()),
        "not the largest real part",
    ),
    "in place": (lambda W, r: W.mul_(r / torch.linalg.eigvals(W).abs().max()), "in place"),
    "transposed": (
        lambda W, r: (W * (r / torch.linalg.eigvals(W).abs().max())).T,
        "not W times a positive number",
    ),
    "forgets to divide": (lambda W, r: W * r, "multiply W by radius / rho"),
    "complex result": (lambda W, r: W * (r / torch.linalg.eigvals(W)[0]), "dtype"),
}


@pytest.mark.parametrize("bug", SPECTRAL_BUGS)
def test_spectral_radius_check_catches(bug):
    fn, hint = SPECTRAL_BUGS[bug]
    fails(check_with_spectral_radius, fn, match=hint)


def test_the_graders_spectral_radius_cases_try_float32(ref):
    def always_float64(W, radius):
        return ref["with_spectral_radius"](W.double(), radius)

    check_with_spectral_radius(always_float64)
    rejection(
        LESSON, "with_spectral_radius", always_float64, "float32: the rescaled matrix has dtype"
    )


def test_gradient_flow_check_fails_on_wrong_measurements(ref):
    flow = ref["flow"]
    vanish, neutral, explode, saturated = (flow[k] for k in flow)
    labels = list(flow)

    def flow_with(**values):
        return {label: values.get(f"v{i}", flow[label]) for i, label in enumerate(labels)}

    fails(check_gradient_flow, flow_with(v0=explode, v2=vanish), match="ρ = 0.5.*should vanish")
    fails(check_gradient_flow, flow_with(v1=explode), match="ρ = 1.0.*between 1e-2 and 1e2")
    fails(check_gradient_flow, flow_with(v3=explode), match="saturated.*should vanish")
    fails(check_gradient_flow, flow_with(v2=neutral), match="ρ = 1.5 the.*should explode")
    fails(check_gradient_flow, flow_with(v0=vanish.flip(0)), match="the last entry")
    fails(check_gradient_flow, flow_with(v0=vanish[-10:]), match="at least 20")
    fails(check_gradient_flow, flow_with(v0=vanish * float("nan")), match="non-finite")
    fails(check_gradient_flow, {labels[0]: vanish}, match="keys")


# ----------------------------------------------------------------------------- clipping
def total_norm(grads):
    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads))


def clip_with(factor, returned=None):
    """clip_grad_norm written out with the given factor(total, max_norm) and return value."""

    def clip(grads, max_norm):
        total = total_norm(grads).to(grads[0].dtype)
        f = factor(total, max_norm)
        for g in grads:
            g.mul_(f)
        return returned(grads, total) if returned else total

    return clip


def right_factor(total, max_norm):
    return torch.clamp(max_norm / (total + 1e-6), max=1.0)


def per_tensor(grads, max_norm):
    for g in grads:
        g.mul_(right_factor(g.norm(), max_norm))
    return total_norm(grads)


def not_in_place(grads, max_norm):
    total = total_norm(grads)
    for g in grads:
        g = g * right_factor(total, max_norm)  # noqa: PLW2901 - the bug under test
    return total


def with_an_if(grads, max_norm):
    total = total_norm(grads)
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (total + 1e-6))
    return total


def hides_non_finite(grads, max_norm):
    total = total_norm(grads)
    if not torch.isfinite(total):
        for g in grads:
            g.zero_()
        return torch.tensor(0.0)
    return clip_with(right_factor)(grads, max_norm)


CLIP_BUGS = {
    "per-tensor clipping": (per_tensor, {}, "different factors"),
    "always rescaled": (
        clip_with(lambda total, m: m / (total + 1e-6)),
        {"max_norm": 100.0},
        "already below max_norm",
    ),
    "no 1e-6": (clip_with(lambda total, m: torch.clamp(m / total, max=1.0)), {}, r"1e-6"),
    "norm after clipping": (
        clip_with(right_factor, returned=lambda grads, total: total_norm(grads)),
        {},
        "before clipping",
    ),
    "not in place": (not_in_place, {}, "in place"),
    "sum of norms": (
        lambda grads, m: clip_with(
            lambda total, m: right_factor(sum(g.norm() for g in grads), m),
        )(grads, m),
        {},
        "2-norm of all entries",
    ),
    "returns a list": (clip_with(right_factor, returned=lambda grads, total: [total]), {}, "0-dim"),
}


@pytest.mark.parametrize("bug", CLIP_BUGS)
def test_clip_check_catches(bug):
    fn, kwargs, hint = CLIP_BUGS[bug]
    fails(check_clip_grad_norm, fn, match=hint, **kwargs)


def test_clip_check_accepts_a_float_norm():
    check_clip_grad_norm(clip_with(right_factor, returned=lambda grads, total: total.item()))


def test_non_finite_check_grades_the_norm_not_what_becomes_of_the_gradients():
    # An `if` leaves NaN gradients as they are (PyTorch fills them with NaN): as good, since the
    # returned NaN norm tells the training loop to skip the step.
    for correct in (with_an_if, clip_with(right_factor)):
        check_clip_grad_norm(correct)
        check_clip_grad_norm_non_finite(correct)
    check_clip_grad_norm(hides_non_finite)
    fails(check_clip_grad_norm_non_finite, hides_non_finite, match="Return the norm as computed")


def step_with(*, clip="between", returned="before"):
    """train_step_clipped written out, with the clipping in the wrong place."""

    def train_step(model, optimizer, X, Y, max_norm):
        optimizer.zero_grad()
        logits, _ = model(X)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        loss.backward()
        params = list(model.parameters())
        norm = total_norm([p.grad for p in params])
        if clip == "between":
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        if clip == "parameters":  # clip_grad_norm(list(model.parameters()), ...): scales weights
            with torch.no_grad():
                factor = torch.clamp(max_norm / (total_norm(params) + 1e-6), max=1.0)
                for p in params:
                    p.mul_(factor)
        optimizer.step()
        if clip == "after":
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        after = total_norm([p.grad for p in params])
        return loss.item(), (norm if returned == "before" else after).item()

    return train_step


@pytest.mark.parametrize(
    "fn, hint",
    [
        (step_with(clip="after"), "unclipped gradient"),
        (step_with(clip="never"), "unclipped gradient"),
        (step_with(returned="after"), "before\\s+clipping"),
        (lambda m, o, X, Y, c: (torch.tensor(step_with()(m, o, X, Y, c)[0]), 1.0), "float"),
        (lambda m, o, X, Y, c: step_with()(m, o, X, Y, c)[0], "pair"),
        (step_with(clip="parameters"), "not the parameters"),
    ],
)
def test_train_step_clipped_check_catches(fn, hint):
    fails(check_train_step_clipped, fn, match=hint)


def test_the_written_out_train_step_is_right():
    check_train_step_clipped(step_with())


def test_clipping_run_check_fails_without_an_explosion_or_without_learning(ref):
    unclipped, clipped, V = ref["unclipped_losses"], ref["clipped_losses"], ref["VOCAB_SIZE"]
    fails(check_clipping_tames_explosion, clipped, clipped, vocab_size=V, match="meant to explode")
    fails(check_clipping_tames_explosion, unclipped, unclipped, vocab_size=V, match="ends at")
    with_nan = list(clipped[:-1]) + [math.nan]
    fails(check_clipping_tames_explosion, unclipped, with_nan, vocab_size=V, match="non-finite")
    fails(check_clipping_tames_explosion, unclipped[:5], clipped[:5], vocab_size=V, match="20")
    exploded_to_nan = [1.0] * 30 + [math.nan] * 10
    check_clipping_tames_explosion(exploded_to_nan, clipped, vocab_size=V)


# ----------------------------------------------------------------------------- helpers
def test_rel_error_norm_ignores_rounding_in_tiny_entries():
    exact = torch.tensor([1.0, 1e-9], dtype=torch.float64)
    rounded = torch.tensor([1.0, 1.1e-9], dtype=torch.float64)
    assert rel_error(exact, rounded) > 1e-3  # entry by entry, the tiny entry looks wrong
    assert rel_error_norm(exact, rounded) < 1e-9  # on the whole tensor it is rounding
    assert rel_error_norm(exact, -exact) == pytest.approx(1.0)
    assert rel_error_norm(torch.zeros(3), torch.zeros(3)) == 0


def test_bptt_figures_draw_on_axes():
    fig, axes = plt.subplots(1, 3)
    assert draw_bptt(4, ax=axes[0]) is axes[0]
    full = len(axes[0].patches)
    draw_bptt(4, chunk_size=2, ax=axes[1])
    assert len(axes[1].patches) == full - 1  # the gradient arrow across the boundary is gone
    assert "Truncated" in axes[1].get_title()
    curves = {"a": [1.0, 0.5, 0.25], "b": [1.0, 2.0, 4.0]}
    plot_log_curves(curves, ax=axes[2], bounds={"a": [1, 1, 1]}, reference={"c": 0.5})
    assert axes[2].get_yscale() == "log" and len(axes[2].lines) == 4
    assert [t.get_text() for t in axes[2].get_legend().get_texts()] == ["a", "bound", "b", "c"]
    plt.close(fig)


# ----------------------------------------------------------------------------- alternatives
# Correct answers written in place: ``call_student`` hands answers copies, so a reference
# computed afterwards is never computed on numbers the answer changed.
def rnn_backward_in_place(ref):
    """BPTT that adds the carried gradient into dH's own step (a view), in place."""
    rnn_cell_backward = ref["rnn_cell_backward"]

    def rnn_backward(dH, caches):
        grads, dxs = None, []
        dh_prev = torch.zeros_like(dH[:, 0])
        for t in reversed(range(dH.shape[1])):
            dh = dH[:, t]
            dh += dh_prev  # changes dH
            dx_t, dh_prev, *step = rnn_cell_backward(dh, caches[t])
            grads = step if grads is None else [g + s for g, s in zip(grads, step, strict=True)]
            dxs.append(dx_t)
        return (torch.stack(dxs[::-1], dim=1), dh_prev, *grads)

    return rnn_backward


def test_bptt_that_changes_dH_in_place_gets_full_marks(ref):
    answer, forward = rnn_backward_in_place(ref), ref["rnn_forward_with_cache"]
    for upstream in ("dense", "last", "sparse"):
        check_rnn_backward(answer, forward, upstream=upstream)
    check_rnn_backward_edge_cases(answer, forward)
    passes_probe(LESSON, "rnn_backward", answer)


def test_without_copies_the_in_place_bptt_fails(ref, monkeypatch):
    """What the copies fix: the same answer, handed the check's own dH, is failed."""
    monkeypatch.setattr(checks_core, "_copy", lambda value: value)
    with pytest.raises(CheckFailed):
        check_rnn_backward(rnn_backward_in_place(ref), ref["rnn_forward_with_cache"])


def test_arguments_written_by_contract_are_still_the_checks_own(ref):
    """clip_grad_norm clips the gradients it is given; with_spectral_radius must not touch W."""

    def clip_a_copy(grads, max_norm):
        return ref["clip_grad_norm"]([g.clone() for g in grads], max_norm)

    with pytest.raises(CheckFailed, match="unchanged"):
        check_clip_grad_norm(clip_a_copy)

    def scale_in_place(W, radius):
        return W.mul_(radius / torch.linalg.eigvals(W).abs().max())

    with pytest.raises(CheckFailed, match="modifies W in place"):
        check_with_spectral_radius(scale_in_place)


def test_the_graders_clipped_cases_clip_so_a_step_without_clipping_fails(ref):
    """Every finite max_norm of the grader's cases is below that case's gradient norm (3.0
    was above it: never clipped)."""
    probe = probe_of(LESSON, "train_step_clipped")
    for case in probe.cases(np.random.default_rng(0)):
        _, norm, _ = probe.expected(case)
        assert case["max_norm"] == math.inf or norm > 2 * case["max_norm"], (case["label"], norm)
    passes_probe(LESSON, "train_step_clipped", step_with())
    for clip in ("never", "after", "parameters"):
        rejection(LESSON, "train_step_clipped", step_with(clip=clip), "max_norm = 0.2")
    rejection(LESSON, "train_step_clipped", step_with(returned="after"), "before clipping")


def test_answers_get_copies_of_nested_tensors_too(ref):
    """rnn_backward's caches are a list of tuples of tensors: those are copies as well."""

    def spoils_its_caches(dH, caches):
        result = ref["rnn_backward"](dH, caches)
        for cache in caches:
            cache[2].zero_()  # h_t, in place: the check's own caches must not change
        return result

    seen = []
    forward = ref["rnn_forward_with_cache"]

    def recording_forward(*args):
        H_all, caches = forward(*args)
        seen.append([c[2].clone() for c in caches])
        seen.append(caches)
        return H_all, caches

    check_rnn_backward(spoils_its_caches, recording_forward)
    before, caches = seen[0], seen[1]
    assert all(torch.equal(b, c[2]) for b, c in zip(before, caches, strict=True))
