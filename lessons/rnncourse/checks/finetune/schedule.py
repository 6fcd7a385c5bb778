"""Lesson 07's checks of the fine-tuning schedule and step: warmup_decay, frozen_groups,
fine_tune_step.

The schedules are compared with their formulas at every update; the step runs a small
classifier with a recording optimizer and a recording scheduler, and its gradient is
recomputed with autograd and clipped here.
"""

import dataclasses
import math
import numbers

import torch
import torch.nn.functional as F

from rnncourse.checks._core import CheckFailed, RecordingSGD, call_student
from rnncourse.checks.finetune.transfer import small_classifier
from rnncourse.classify import layer_groups

# (total, warmup): a usual one, no warm-up, one update, warm-up of one, a long one
WARMUP_CASES = [(10, 3), (8, 0), (1, 0), (5, 1), (200, 20)]


def warmup_reference(u: int, total: int, warmup: int) -> float:
    if u < warmup:
        return (u + 1) / warmup
    return max(0.0, (total - u) / (total - warmup))


def warmup_problem(values: list, total: int, warmup: int) -> str | None:
    """None when values[u] is the multiplier at u = 0 .. total."""
    for u, got in enumerate(values):
        want = warmup_reference(u, total, warmup)
        if not isinstance(got, numbers.Real) or not math.isclose(got, want, abs_tol=1e-9):
            phase = "warm-up" if u < warmup else "decay"
            hint = ""
            if u == total:
                hint = " (LambdaLR asks for u = total after the last update: 0, not negative)"
            elif u < warmup and isinstance(got, numbers.Real) and math.isclose(got, u / warmup):
                hint = " (count updates from 0: the first one already gets 1 / warmup)"
            return (
                f"warmup_decay({u}, {total}, {warmup}) = {got!r}; expected {want:.4g} "
                f"({phase}){hint}"
            )
    return None


def check_warmup_decay(warmup_decay) -> None:
    """warmup_decay(u, total, warmup): (u + 1) / w while u < w, then (total - u) / (total - w)."""
    for total, warmup in WARMUP_CASES:
        values = [
            call_student(warmup_decay, u, total, warmup, name="warmup_decay")
            for u in range(total + 1)
        ]
        problem = warmup_problem(values, total, warmup)
        if problem:
            raise CheckFailed(f"{problem}.")
    print("warmup_decay rises to 1 over the warm-up and falls to 0 at the last update.")


# (num_groups, every)
FROZEN_CASES = [(4, 5), (3, 1), (1, 3), (2, 7), (6, 2)]


def frozen_problem(values: list, num_groups: int, every: int) -> str | None:
    """None when values[u] = max(num_groups - 1 - u // every, 0) for every u."""
    for u, got in enumerate(values):
        want = max(num_groups - 1 - u // every, 0)
        if not isinstance(got, numbers.Real) or got != want:
            hint = ""
            if u < every and got == num_groups:
                hint = " (the head trains from the first update: n - 1 groups frozen)"
            elif isinstance(got, numbers.Real) and got < 0:
                hint = " (never fewer than 0)"
            return f"frozen_groups({u}, {num_groups}, {every}) = {got!r}; expected {want}{hint}"
    return None


def check_frozen_groups(frozen_groups) -> None:
    """frozen_groups(u, n, every): n - 1 at first, one fewer every `every` updates, then 0."""
    for num_groups, every in FROZEN_CASES:
        values = [
            call_student(frozen_groups, u, num_groups, every, name="frozen_groups")
            for u in range((num_groups + 1) * every + 2)
        ]
        problem = frozen_problem(values, num_groups, every)
        if problem:
            raise CheckFailed(f"{problem}.")
    print("frozen_groups unfreezes one group every `every` updates, from the top.")


# ----------------------------------------------------------------------------- fine_tune_step
class RecordingClassifier(torch.nn.Module):
    """A small classifier that records whether it was in training mode at each call."""

    def __init__(self, layers: int = 1):
        super().__init__()
        inner = small_classifier(layers)
        self.embedding, self.rnn, self.fc, self.dropout = (
            inner.embedding,
            inner.rnn,
            inner.fc,
            inner.dropout,
        )
        self.inner = [inner]  # not a submodule: its parameters are ours
        self.modes: list[bool] = []

    def forward(self, X, lengths):
        self.modes.append(self.training)
        return self.inner[0](X, lengths)


class RecordingScheduler:
    """Counts its steps and says after how many optimizer steps each came."""

    def __init__(self, optimizer: RecordingSGD):
        self.optimizer, self.after = optimizer, []

    def step(self, *args, **kwargs):
        self.after.append(len(self.optimizer.steps))


@dataclasses.dataclass
class StepRun:
    params: list[list[torch.Tensor]]  # per optimizer step: the parameters before it
    grads: list[list[torch.Tensor | None]]  # per step: the gradients it applied
    scheduler_after: list[int]  # per scheduler step: how many optimizer steps came before
    modes: list[bool]  # the model's training flag at each forward call
    loss: object


def step_batch(seed: int = 4):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(2, 9, (4, 6), generator=g)
    return X, torch.tensor([6, 2, 4, 5]), torch.tensor([1, 0, 0, 1])


def run_fine_tune_step(fine_tune_step, max_norm: float, frozen: int = 1) -> StepRun:
    model = RecordingClassifier()
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad_(i >= frozen)
            p.grad = torch.full_like(p, 3.0) if i >= frozen else None  # stale gradients
    model.eval()  # the step must switch to training mode itself
    optimizer = RecordingSGD(model.parameters(), lr=0.5)
    scheduler = RecordingScheduler(optimizer)
    X, lengths, y = step_batch()
    loss = call_student(
        fine_tune_step, model, X, lengths, y, optimizer, scheduler, max_norm, name="fine_tune_step"
    )
    steps = optimizer.steps
    return StepRun(
        [s.params for s in steps], [s.grads for s in steps], scheduler.after, model.modes, loss
    )


def step_reference(params, frozen: int, max_norm: float):
    """(loss, the clipped gradients (None where frozen)) at ``params``."""
    model = RecordingClassifier()
    with torch.no_grad():
        for p, value in zip(model.parameters(), params, strict=True):
            p.copy_(value)
    model.train()
    X, lengths, y = step_batch()
    loss = F.cross_entropy(model(X, lengths), y)
    groups = layer_groups(model)
    live = [p for i, group in enumerate(groups) if i >= frozen for p in group]
    grads = dict(zip(map(id, live), torch.autograd.grad(loss, live), strict=True))
    norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
    factor = min(1.0, max_norm / (norm.item() + 1e-6))
    return loss.item(), [
        grads[id(p)] * factor if id(p) in grads else None for p in model.parameters()
    ]


def fine_tune_step_problem(run: StepRun, max_norm: float, frozen: int = 1) -> str | None:
    if not run.modes or not run.modes[0]:
        return "the model ran in eval mode: call model.train() first (dropout must be on)"
    if len(run.grads) != 1:
        return f"optimizer.step() was called {len(run.grads)} times; expected once"
    if run.scheduler_after != [1]:
        if not run.scheduler_after:
            return "scheduler.step() was never called: the learning rate would never change"
        if run.scheduler_after[0] == 0:
            return "scheduler.step() came before optimizer.step(): step the optimizer first"
        return f"scheduler.step() was called {len(run.scheduler_after)} times; expected once"
    loss, want = step_reference(run.params[0], frozen, max_norm)
    if not isinstance(run.loss, numbers.Real) or isinstance(run.loss, bool):
        return f"it returned {type(run.loss).__name__}; expected the loss as a float (loss.item())"
    if not math.isclose(run.loss, loss, rel_tol=1e-6, abs_tol=1e-9):
        return f"it returned loss {run.loss:.6f}; the batch's mean cross-entropy was {loss:.6f}"
    for i, (got, exp) in enumerate(zip(run.grads[0], want, strict=True)):
        if exp is None:
            if got is not None and bool(got.abs().sum() > 0):
                return "a frozen parameter got a gradient: compute gradients of what trains only"
            continue
        if got is None:
            return f"parameter {i} had no gradient at the step"
        if max_norm >= 1e3 and torch.allclose(got, exp + 3.0, atol=1e-6):
            return "the old gradients were kept: call optimizer.zero_grad() before backward"
        if not torch.allclose(got, exp, rtol=1e-5, atol=1e-8):
            unclipped = exp.norm().item() > 0 and max_norm < 1.0
            hint = " (clip the norm of the gradients with clip_grad_norm_)" if unclipped else ""
            return (
                f"the gradient applied to parameter {i} is not the batch's clipped gradient{hint}"
            )
    return None


def check_fine_tune_step(fine_tune_step) -> None:
    """fine_tune_step: train mode, fresh clipped gradients, one optimizer and one scheduler step."""
    for max_norm in (1e6, 1e-3):  # unclipped first: stale gradients show as + 3
        run = run_fine_tune_step(fine_tune_step, max_norm)
        problem = fine_tune_step_problem(run, max_norm)
        if problem:
            raise CheckFailed(f"fine_tune_step (max_norm = {max_norm:g}): {problem}.")
    print("fine_tune_step updates once from fresh, clipped gradients and steps the schedule.")
