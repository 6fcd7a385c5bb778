"""Lesson 02's checks, clipping: clip_grad_norm, train_step_clipped, the tamed explosion."""

import math

import torch

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
    expect_close,
    matches,
    tolerances,
)
from rnncourse.checks.bptt.truncated import RecordingRNN, _same_grads


def _norm_value(value, who):
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise CheckFailed(f"{who} should return the total norm, a number or a 0-dim tensor.")


def _torch_clipped(grads, max_norm):
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, gr in zip(params, grads, strict=True):
        p.grad = gr.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return norm, [p.grad for p in params]


def check_clip_grad_norm(
    clip_grad_norm,
    *,
    shapes=((3, 4), (4,), (2, 2, 3)),
    max_norm=1.0,
    scale=3.0,
    dtype=torch.float64,
    seed=0,
):
    """clip_grad_norm(grads, max_norm) clips in place and returns what clip_grad_norm_ returns."""
    g = torch.Generator().manual_seed(seed + 66)
    grads = [(torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype) for s in shapes]
    originals = [gr.clone() for gr in grads]
    want_norm, want = _torch_clipped(grads, max_norm)
    total = want_norm.item()
    got_norm = _norm_value(
        call_student(clip_grad_norm, grads, max_norm, shared=(0,)), "clip_grad_norm"
    )
    tol = tolerances(dtype)
    ok_grads = all(matches(gr, w, **tol) for gr, w in zip(grads, want, strict=True))
    ok_norm = math.isclose(got_norm, total, rel_tol=tol["rtol"], abs_tol=tol["atol"])
    if ok_grads and ok_norm:
        state = "clipped" if total > max_norm else "left alone (below max_norm)"
        print(
            f"clip_grad_norm matches torch.nn.utils.clip_grad_norm_: total norm {total:.4g}, "
            f"max_norm {max_norm}, gradients {state}."
        )
        return
    if not ok_grads:
        if (
            all(torch.equal(gr, o) for gr, o in zip(grads, originals, strict=True))
            and total > max_norm
        ):
            raise CheckFailed(
                "the gradients in grads are unchanged: clip them in place (g.mul_(factor)); "
                "rebinding a loop variable (g = g * factor) changes nothing outside."
            )
        ratios = [
            (gr.detach().double().norm() / o.double().norm()).item()
            for gr, o in zip(grads, originals, strict=True)
        ]
        if max(ratios) - min(ratios) > 1e-6 * max(ratios):
            hint = (
                "the gradients were scaled by different factors: the norm is the total over all "
                "gradients together, sqrt(sum of ||g||^2), and every gradient gets the same factor."
            )
        elif total <= max_norm:
            hint = (
                "the total norm is already below max_norm, so the gradients must stay as they "
                "are: the factor is min(max_norm / (total_norm + 1e-6), 1)."
            )
        elif math.isclose(ratios[0] * total, max_norm, rel_tol=1e-9):
            hint = (
                "PyTorch divides by total_norm + 1e-6, not total_norm: factor = "
                "min(max_norm / (total_norm + 1e-6), 1)."
            )
        else:
            hint = (
                "the factor is min(max_norm / (total_norm + 1e-6), 1), with total_norm the 2-norm "
                "of all entries of all gradients together."
            )
        for i, (gr, w) in enumerate(zip(grads, want, strict=True)):
            if not matches(gr, w, **tol):
                expect_close(f"grads[{i}] after clipping", gr, w, hint=hint, **tol)
    after = math.sqrt(sum(gr.detach().double().pow(2).sum().item() for gr in grads))
    if math.isclose(got_norm, after, rel_tol=1e-9) and not math.isclose(after, total, rel_tol=1e-6):
        hint = "that is the norm after clipping: return the total norm from before clipping."
    else:
        hint = "return the total 2-norm of all gradients together, sqrt(sum of ||g||^2)."
    raise CheckFailed(f"clip_grad_norm returned {got_norm:.6g}; expected {total:.6g}: {hint}")


def check_clip_grad_norm_non_finite(clip_grad_norm, *, max_norm=1.0, seed=0):
    """Like clip_grad_norm_, an inf or NaN gradient gives an inf or NaN norm, and is not hidden.

    What the gradients become then is not graded: a training loop that sees the non-finite
    norm skips the step (PyTorch multiplies them by 0 or NaN; leaving them is as good).
    """
    g = torch.Generator().manual_seed(seed + 77)
    for bad in (float("inf"), float("nan")):
        grads = [
            torch.randn(3, 4, generator=g, dtype=torch.float64),
            torch.randn(5, generator=g, dtype=torch.float64),
        ]
        grads[0][1, 2] = bad
        want_norm, _ = _torch_clipped(grads, max_norm)
        got_norm = _norm_value(
            call_student(clip_grad_norm, grads, max_norm, shared=(0,)), "clip_grad_norm"
        )
        if not (math.isnan(got_norm) if math.isnan(bad) else got_norm == math.inf):
            raise CheckFailed(
                f"with a gradient entry equal to {bad}, clip_grad_norm returned {got_norm:.6g}; "
                f"expected {want_norm.item()} like clip_grad_norm_. Return the norm as computed, "
                "so that the training loop can see that this step is broken and skip it."
            )
    print(
        "clip_grad_norm returns the non-finite norm of inf and NaN gradients, like clip_grad_norm_."
    )


def check_train_step_clipped(
    train_step_clipped, *, max_norm=0.2, batch_size=3, num_steps=6, vocab_size=5, seed=0
):
    """train_step_clipped clips between backward() and step(), and returns (loss, total norm)."""
    B, T, V = batch_size, num_steps, vocab_size
    g = torch.Generator().manual_seed(seed + 88)
    X = torch.randint(V, (B, T), generator=g)
    Y = torch.randint(V, (B, T), generator=g)
    model = RecordingRNN(V, 6, seed=seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.1, calls=model.calls)
    result = call_student(train_step_clipped, model, optimizer, X, Y, max_norm)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed("train_step_clipped should return a pair (loss, grad_norm).")
    loss, grad_norm = result
    if len(model.calls) != 1 or len(optimizer.steps) != 1:
        raise CheckFailed(
            f"one training step should call the model once and optimizer.step() once; got "
            f"{len(model.calls)} and {len(optimizer.steps)}."
        )
    want_loss, want_grads = model.chunk_loss_and_grads(model.calls[0]["params"], X, Y, None)
    want_norm, clipped = _torch_clipped(list(want_grads), max_norm)
    if not isinstance(loss, float) or not math.isclose(loss, want_loss, rel_tol=1e-9):
        raise CheckFailed(
            f"the loss returned is {loss!r}; expected {want_loss:.6g}, the mean cross-entropy "
            "before the update, as a float (loss.item())."
        )
    norm = _norm_value(grad_norm, "train_step_clipped's grad_norm")
    tol = tolerances(torch.float64)
    applied = optimizer.steps[0].grads
    if not _same_grads(optimizer.steps[0].params, model.calls[0]["params"], tol):
        raise CheckFailed(
            "the weights changed before optimizer.step(): clip the gradients, "
            "[p.grad for p in model.parameters()], not the parameters themselves."
        )
    if not _same_grads(applied, clipped, tol):
        if _same_grads(applied, want_grads, tol):
            hint = (
                "the optimizer applied the unclipped gradient: call clip_grad_norm after "
                "loss.backward() and before optimizer.step() (and check that clip_grad_norm "
                "passes its own test)."
            )
        else:
            hint = (
                "the optimizer did not apply the clipped gradient of this batch's loss: the "
                "order is zero_grad(), backward(), clip_grad_norm(...), step()."
            )
        raise CheckFailed(hint)
    if not math.isclose(norm, want_norm.item(), rel_tol=1e-9):
        raise CheckFailed(
            f"grad_norm = {norm:.6g}; expected {want_norm.item():.6g}, the total norm before "
            "clipping (what clip_grad_norm returns)."
        )
    print(
        f"train_step_clipped clips between backward() and step() (gradient norm {norm:.3g}, "
        f"max_norm {max_norm})."
    )


def check_clipping_tames_explosion(unclipped_losses, clipped_losses, *, vocab_size):
    """Without clipping the loss explodes (non-finite or far above chance); with it, it trains."""
    chance = math.log(vocab_size)
    unclipped = torch.as_tensor(list(unclipped_losses), dtype=torch.float64)
    clipped = torch.as_tensor(list(clipped_losses), dtype=torch.float64)
    if clipped.numel() < 20 or unclipped.numel() < 20:
        raise CheckFailed("train both runs for at least 20 steps.")
    finite = unclipped[torch.isfinite(unclipped)]
    exploded = finite.numel() < unclipped.numel() or finite.max().item() > 2 * chance
    if not exploded:
        raise CheckFailed(
            f"the run without clipping never went above 2 x chance ({2 * chance:.2f}): it was "
            "meant to explode. Is it the run with max_norm = inf and the large learning rate?"
        )
    if not bool(torch.isfinite(clipped).all()):
        raise CheckFailed(
            "the clipped run produced a non-finite loss: is clip_grad_norm called between "
            "backward() and step()?"
        )
    final = clipped[-10:].mean().item()
    if not final < 0.5 * chance:
        raise CheckFailed(
            f"with clipping the loss ends at {final:.3f}; it should fall below half of chance "
            f"({0.5 * chance:.2f}). Is clip_grad_norm called between backward() and step()?"
        )
    print(
        f"Without clipping the loss reached {unclipped.nan_to_num(math.inf).max().item():.3g}; "
        f"with clipping it ends at {final:.3f} (chance {chance:.2f})."
    )
