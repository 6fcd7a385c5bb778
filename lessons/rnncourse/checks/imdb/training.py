"""Lesson 05's checks, training with mixed precision and clipping, and evaluation."""

import copy
import dataclasses
import math
import numbers
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
)
from rnncourse.checks.imdb.data import PAD_ID


class BagModel(nn.Module):
    """Bag of embeddings -> linear: logits from the mean embedding of the real tokens.

    Records, on each call: the training flag, whether autograd is on, the logits.
    """

    def __init__(self, vocab_size=20, dim=4, *, seed=0, noisy_in_training=False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Parameter(torch.randn(vocab_size, dim, generator=g))
        self.fc_weight = nn.Parameter(torch.randn(2, dim, generator=g))
        self.fc_bias = nn.Parameter(torch.randn(2, generator=g) * 0.1)
        self.noisy_in_training = noisy_in_training
        self.modes, self.grad_modes, self.outputs, self.shapes = [], [], [], []

    def logits(self, X, lengths):
        mask = (torch.arange(X.shape[1]) < lengths[:, None].cpu()).to(self.embedding.dtype)
        mean = (self.embedding[X] * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return mean @ self.fc_weight.T + self.fc_bias  # (B, 2)

    def forward(self, X, lengths):
        self.modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        self.shapes.append(tuple(X.shape))
        out = self.logits(X, lengths)
        if self.training and self.noisy_in_training:  # behaves like heavy dropout
            out = out + 50 * torch.randn_like(out)
        self.outputs.append(out.detach().clone())
        return out


class _RecordingScaler:
    """A disabled GradScaler (what a CPU gets) that records how it is used."""

    def __init__(self, optimizer_calls):
        self.calls, self._optimizer_calls = [], optimizer_calls

    def scale(self, loss):
        self.calls.append("scale")
        return loss

    def unscale_(self, optimizer):
        self.calls.append("unscale_")

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")

    def is_enabled(self):
        return False

    def get_scale(self):
        return 1.0


class _RecordingAutocast:
    """Wraps torch.autocast and records each (device_type, enabled) it is entered with."""

    def __init__(self, real, records):
        self.real, self.records = real, records

    def __call__(self, device_type=None, dtype=None, enabled=True, cache_enabled=None, **kwargs):
        self.records.append((str(device_type), bool(enabled)))
        kwargs = {"dtype": dtype, "enabled": enabled} | kwargs
        if cache_enabled is not None:
            kwargs["cache_enabled"] = cache_enabled
        return self.real(device_type, **kwargs)


def _fresh_gradient(model, params, batch):
    """The gradient of the batch's mean cross-entropy at ``params`` (for the probe model)."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        for p, value in zip(probe.parameters(), params, strict=True):
            p.copy_(value)
    X, lengths, y = batch
    loss = F.cross_entropy(probe.logits(X, lengths), y)
    return torch.autograd.grad(loss, list(probe.parameters()))


@dataclasses.dataclass
class TrainingRun:
    """What one call of a student's train_one_epoch did to a ``BagModel`` (plain data, so
    that the grader can judge a run made in another process with ``training_problem``)."""

    modes: list[bool]  # the model's training flag at each call
    outputs: list[torch.Tensor]  # its logits at each call, (B, 2)
    params: list[list[torch.Tensor]]  # per optimizer step: the parameters before it
    grads: list[list[torch.Tensor | None]]  # per optimizer step: the gradients it applied
    scaler_calls: list[str]  # "scale", "unscale_", "step", "update", in order
    autocasts: list[tuple[str, bool]]  # (device_type, enabled) of each autocast entered
    result: object  # what train_one_epoch returned


def training_batches(sizes, vocab_size=20, *, seed=0):
    """Batches (X (B, T) padded with 0, lengths (B,), y (B,)) of the given sizes B."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for B in sizes:
        lengths = torch.randint(1, 9, (B,), generator=g)
        X = torch.randint(2, vocab_size, (B, int(lengths.max())), generator=g)
        X[torch.arange(X.shape[1]) >= lengths[:, None]] = PAD_ID
        batches.append((X, lengths, torch.randint(0, 2, (B,), generator=g)))
    return batches


def run_training(train_one_epoch, batches, max_norm, seed) -> TrainingRun:
    """One epoch of ``train_one_epoch`` over ``batches`` on ``BagModel(seed=seed)``, recorded."""
    model = BagModel(seed=seed).eval()  # the student must switch to train mode
    optimizer = RecordingSGD(model.parameters(), lr=0.5)
    scaler = _RecordingScaler(optimizer)
    autocasts = []
    for p in model.parameters():  # stale gradients that zero_grad must clear
        p.grad = torch.ones_like(p)
    with (
        mock.patch.object(torch, "autocast", _RecordingAutocast(torch.autocast, autocasts)),
        mock.patch.object(torch.amp, "autocast", _RecordingAutocast(torch.amp.autocast, autocasts)),
    ):
        result = call_student(
            train_one_epoch, model, iter(batches), optimizer, scaler, max_norm=max_norm
        )
    return TrainingRun(
        modes=model.modes,
        outputs=model.outputs,
        params=[s.params for s in optimizer.steps],
        grads=[s.grads for s in optimizer.steps],
        scaler_calls=scaler.calls,
        autocasts=autocasts,
        result=result,
    )


def _protocol_problem(run: TrainingRun, n: int) -> str | None:
    """Train mode, one step per batch through the scaler in its order, no autocast on a CPU."""
    if len(run.modes) != n:
        return f"the model was called {len(run.modes)} times for {n} batches."
    if not all(run.modes):
        return (
            "the model ran in eval mode: call model.train() first (evaluate() leaves the "
            "model in eval mode, and dropout would stay off)."
        )
    if len(run.grads) != n:
        return (
            f"optimizer.step() ran {len(run.grads)} times for {n} batches: once "
            "per batch, through scaler.step(optimizer)."
        )
    if list(run.scaler_calls) != ["scale", "unscale_", "step", "update"] * n:
        calls = list(run.scaler_calls)
        return (
            "use the GradScaler in this order for every batch: scaler.scale(loss).backward(), "
            "scaler.unscale_(optimizer), clip, scaler.step(optimizer), scaler.update(). "
            f"Your calls: {calls[:8]}{' ...' if len(calls) > 8 else ''}."
        )
    # On the CPU, autocast disabled and no autocast are the same computation: only an
    # autocast enabled here is wrong (an `if device.type == "cuda":` around it is fine).
    if any(enabled for _, enabled in run.autocasts):
        return 'autocast was enabled on the CPU: use enabled=(device.type == "cuda").'
    return None


def _gradient_problem(grads, fresh, max_norm) -> str | None:
    """The gradients applied at one step against the batch's fresh gradient, clipped."""
    if any(g is None for g in grads):
        return "some parameters have no gradient at optimizer.step()."
    norm = torch.sqrt(sum((g**2).sum() for g in fresh))
    coef = min(1.0, max_norm / (float(norm) + 1e-6))
    fresh_flat = torch.cat([g.flatten() for g in fresh])
    want_flat = fresh_flat * coef
    got_flat = torch.cat([torch.as_tensor(g).flatten() for g in grads])
    if got_flat.shape != want_flat.shape:
        return "the gradients at optimizer.step() do not match the model's parameters."
    got_flat = got_flat.to(want_flat.dtype)
    if torch.allclose(got_flat, want_flat, rtol=1e-4, atol=1e-6):
        return None
    if float(got_flat.abs().max()) == 0:
        return (
            "the gradients are zero at the step: zero them before backward(), "
            "not between backward() and the step."
        )
    if coef < 1 and torch.allclose(got_flat, fresh_flat, rtol=1e-4, atol=1e-6):
        return (
            f"the gradient was not clipped (norm {float(norm):.3g} > max_norm "
            f"{max_norm}): nn.utils.clip_grad_norm_(model.parameters(), max_norm) "
            "after unscale_ and before the step."
        )
    if float(got_flat.norm()) > float(want_flat.norm()) * 1.01 and coef == 1:
        return (
            "the gradient holds more than this batch's: call optimizer.zero_grad() "
            "before each backward (or the loss is a sum, not the batch mean)."
        )
    return "the loss must be F.cross_entropy(logits, y), the mean over the batch."


def _mean_loss_problem(result, outputs, batches) -> str | None:
    """The returned mean loss: every example weighs the same, whatever its batch's size."""
    if not isinstance(result, numbers.Real) or isinstance(result, bool):
        return f"train_one_epoch should return a float (loss.item()); got {type(result).__name__}."
    losses = [
        F.cross_entropy(out, y).item() for out, (_, _, y) in zip(outputs, batches, strict=True)
    ]
    sizes = [len(y) for _, _, y in batches]
    weighted = sum(loss * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes)
    if math.isclose(result, weighted, rel_tol=1e-4, abs_tol=1e-6):
        return None
    hint = (
        "weight each batch's loss by its size: batches differ in size."
        if math.isclose(result, sum(losses) / len(losses), rel_tol=1e-4)
        else "return the mean cross-entropy over all the epoch's examples."
    )
    return f"returned {result:.6g}; expected {weighted:.6g}: {hint}"


def training_problem(run: TrainingRun, batches, max_norm, seed) -> str | None:
    """None when ``run`` (from ``run_training`` with these arguments) is one right epoch."""
    problem = _protocol_problem(run, len(batches))
    if problem:
        return problem
    model = BagModel(seed=seed)
    for k, (params, grads) in enumerate(zip(run.params, run.grads, strict=True)):
        fresh = _fresh_gradient(model, params, batches[k])
        problem = _gradient_problem(grads, fresh, max_norm)
        if problem:
            return f"at step {k + 1} the gradient is not the expected one: {problem}"
    return _mean_loss_problem(run.result, run.outputs, batches)


def check_train_one_epoch(train_one_epoch, sizes=(5, 3, 6, 2), *, seed=0):
    """train_one_epoch(model, batches, optimizer, scaler, max_norm) -> mean loss (float)."""
    batches = training_batches(sizes, seed=seed)
    for max_norm in (1e6, 0.05):  # first no clipping happens, then every step is clipped
        run = run_training(train_one_epoch, batches, max_norm, seed)
        problem = training_problem(run, batches, max_norm, seed)
        if problem:
            raise CheckFailed(problem)
    print(
        f"train_one_epoch: train mode, fresh and clipped gradients, autocast and scaler over "
        f"{len(sizes)} batches; mean loss right."
    )


@dataclasses.dataclass
class EvaluationRun:
    """What one call of a student's evaluate did to a ``BagModel`` left in training mode."""

    modes: list[bool]  # the model's training flag at each call
    grad_modes: list[bool]  # whether autograd was on at each call
    result: object  # what evaluate returned


def run_evaluation(evaluate, batches, seed) -> EvaluationRun:
    """``evaluate`` on ``BagModel(seed=seed)``, noisy in training mode (as with dropout)."""
    model = BagModel(seed=seed, noisy_in_training=True).train()
    result = call_student(evaluate, model, iter(batches), name="evaluate")
    return EvaluationRun(model.modes, model.grad_modes, result)


def evaluation_problem(run: EvaluationRun, batches, seed) -> str | None:
    """None when ``run`` (from ``run_evaluation``) ran in eval mode, without autograd, and
    returned the accuracy over every example."""
    if not run.modes:
        return "evaluate never called the model."
    if any(run.modes):
        return (
            "the model ran in training mode: call model.eval() first (dropout stays on otherwise)."
        )
    if any(run.grad_modes):
        return "autograd was on: wrap the loop in torch.no_grad() (or torch.inference_mode())."
    result = run.result
    if not isinstance(result, numbers.Real) or isinstance(result, bool):
        return f"evaluate should return a float; got {type(result).__name__}."
    model = BagModel(seed=seed)
    with torch.no_grad():
        correct = [int((model.logits(X, L).argmax(1) == y).sum()) for X, L, y in batches]
    sizes = [len(y) for _, _, y in batches]
    want = sum(correct) / sum(sizes)
    if math.isclose(result, want, abs_tol=1e-6):
        return None
    per_batch = sum(c / s for c, s in zip(correct, sizes, strict=True)) / len(sizes)
    if math.isclose(result, 1 - want, abs_tol=1e-6):
        hint = "that is 1 - accuracy: the labels are flipped (class 1 is positive, y as given)."
    elif math.isclose(result, per_batch, abs_tol=1e-6):
        hint = (
            "that is the mean of the batch accuracies: count correct predictions over all examples."
        )
    else:
        hint = "the prediction is logits.argmax(dim=1), compared with y."
    return f"evaluate returned {result:.4f}; expected {want:.4f}: {hint}"


def check_evaluate(evaluate, sizes=(4, 7, 2), *, seed=0):
    """evaluate(model, batches) -> accuracy over all examples, in eval mode, without grad."""
    batches = training_batches(sizes, seed=seed + 1)
    problem = evaluation_problem(run_evaluation(evaluate, batches, seed), batches, seed)
    if problem:
        raise CheckFailed(problem)
    print(f"evaluate: accuracy over {sum(sizes)} examples in eval mode, without autograd.")
