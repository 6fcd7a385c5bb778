"""Lesson 06's checks of the training step and of the trained model.

``train_window`` runs a small GRU model with an optimizer that records what it applied
(``RecordingSGD``); the gradient is recomputed with autograd and clipped here. The trained
model is compared with the unigram model (character frequencies) on validation text.
"""

import copy
import dataclasses
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import CheckFailed, RecordingSGD, call_student


# ----------------------------------------------------------------------------- train_window
class TinyLM(nn.Module):
    """Embedding -> GRU -> Linear, float64: the model the train_window checks train."""

    def __init__(self, vocab_size=6, hidden=4, seed=0):
        super().__init__()
        with torch.random.fork_rng():  # the caller's random state is left as it was
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(vocab_size, 3)
            self.rnn = nn.GRU(3, hidden, batch_first=True)
            self.fc = nn.Linear(hidden, vocab_size)
        self.double()

    def forward(self, X, state=None):
        H, state = self.rnn(self.embedding(X), state)
        return self.fc(H), state


@dataclasses.dataclass
class WindowRun:
    """What one call of a student's train_window did (plain data for the grader)."""

    params: list[list[torch.Tensor]]  # per optimizer step: the parameters before it
    grads: list[list[torch.Tensor | None]]  # per step: the gradients it applied
    loss: object  # the returned loss
    state: object  # the returned state's values (None if not a tensor)
    state_has_graph: bool  # the returned state still required grad


def run_window(train_window, model, X, Y, state, max_norm: float, stale: bool = True):
    """train_window on ``model`` with a recording optimizer and stale gradients left over."""
    optimizer = RecordingSGD(model.parameters(), lr=0.5)
    if stale:
        for p in model.parameters():
            p.grad = torch.full_like(p, 3.0)
    got = call_student(train_window, model, X, Y, state, optimizer, max_norm, name="train_window")
    loss, new_state = got if isinstance(got, tuple | list) and len(got) == 2 else (got, None)
    has_graph = isinstance(new_state, torch.Tensor) and new_state.requires_grad
    values = new_state.detach().clone() if isinstance(new_state, torch.Tensor) else None
    steps = optimizer.steps
    return WindowRun([s.params for s in steps], [s.grads for s in steps], loss, values, has_graph)


def window_reference(model, params, X, Y, state, max_norm: float):
    """(loss, clipped gradients, new state) of the mean cross-entropy at ``params``."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        for p, value in zip(probe.parameters(), params, strict=True):
            p.copy_(value)
    logits, new_state = probe(X, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    grads = torch.autograd.grad(loss, list(probe.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    factor = min(1.0, max_norm / (norm.item() + 1e-6))
    return loss.item(), [g * factor for g in grads], new_state.detach()


def window_problem(run: WindowRun, model, X, Y, state, max_norm: float) -> str | None:
    """None when the run made one clipped step from fresh gradients, from ``state``."""
    if len(run.grads) != 1:
        return f"optimizer.step() was called {len(run.grads)} times; expected once"
    loss, grads, new_state = window_reference(model, run.params[0], X, Y, state, max_norm)
    tol = {"rtol": 1e-5, "atol": 1e-9}  # clipping by max_norm / norm, with or without + 1e-6
    applied = run.grads[0]
    if any(g is None for g in applied):
        return "some parameters got no gradient: call loss.backward() before optimizer.step()"
    if not all(torch.allclose(a, w, **tol) for a, w in zip(applied, grads, strict=True)):
        _, unclipped, _ = window_reference(model, run.params[0], X, Y, state, math.inf)
        _, from_zero, _ = window_reference(model, run.params[0], X, Y, None, max_norm)
        if all(torch.allclose(a, w, **tol) for a, w in zip(applied, unclipped, strict=True)):
            return f"the gradient was not clipped to max_norm = {max_norm}"
        if state is not None and all(
            torch.allclose(a, w, **tol) for a, w in zip(applied, from_zero, strict=True)
        ):
            return "the gradient is that of a window started from zero: pass `state` to the model"
        return (
            "the applied gradient is not the clipped gradient of the window's mean "
            "cross-entropy: zero the old gradients first (optimizer.zero_grad()), use the mean "
            "over all B * T targets, and clip before the step"
        )
    if not isinstance(run.loss, numbers.Real):
        return f"the loss is {type(run.loss).__name__}; expected a float (loss.item())"
    if not math.isclose(float(run.loss), loss, rel_tol=1e-6):
        return f"the loss is {float(run.loss):.6f}; expected the mean cross-entropy {loss:.6f}"
    if run.state_has_graph:
        return "the returned state still has its graph: return detach_state(state)"
    same_shape = run.state is not None and run.state.shape == new_state.shape  # no broadcast
    if not same_shape or not torch.allclose(run.state, new_state, **tol):
        return "the returned state is not the model's state after this window"
    return None


def window_case(seed: int, B: int = 3, T: int = 5, vocab_size: int = 6):
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.randint(vocab_size, (2, B, T), generator=g)
    state = torch.randn(1, B, 4, generator=g, dtype=torch.float64)
    return TinyLM(vocab_size, seed=seed), X, Y, state


def check_train_window(train_window) -> None:
    """train_window: fresh gradients from the given state, clipped, one step, detached state."""
    for seed, max_norm, with_state in [(0, 0.05, True), (1, 1e6, True), (2, 0.3, False)]:
        model, X, Y, state = window_case(seed)
        state = state if with_state else None
        run = run_window(train_window, model, X, Y, state, max_norm)
        problem = window_problem(run, model, X, Y, state, max_norm)
        if problem:
            where = "from a carried state" if with_state else "from no state"
            raise CheckFailed(f"train_window {where}, max_norm = {max_norm}: {problem}.")
    print("train_window makes one clipped truncated-BPTT step and detaches the state.")


# ----------------------------------------------------------------------------- the outcome
def lm_bits(model, ids: torch.Tensor, batch_size: int = 16, num_steps: int = 256) -> float:
    """Bits per character of a model on a stream (the grader's own evaluation)."""
    device = next(model.parameters()).device
    L = len(ids) // batch_size
    rows = ids[: batch_size * L].view(batch_size, L).to(device)
    total, count, state = 0.0, 0, None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, L - 1, num_steps):
            t = min(num_steps, L - 1 - i)
            logits, state = model(rows[:, i : i + t], state)
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                rows[:, i + 1 : i + 1 + t].reshape(-1),
                reduction="sum",
            ).item()
            count += rows[:, i + 1 : i + 1 + t].numel()
    model.train(was_training)
    return total / count / math.log(2)


def unigram_bits(train: torch.Tensor, valid: torch.Tensor, vocab_size: int) -> float:
    """Bits per character of character frequencies (add-one) on ``valid``."""
    counts = torch.bincount(train, minlength=vocab_size).double() + 1
    log_p = (counts / counts.sum()).log()
    return -log_p[valid].mean().item() / math.log(2)


MARGIN_BITS = 0.5  # the trained model must beat the unigram model by this much
VALID_CHARS = 20_000


def check_lm_beats_unigram(model, corpus) -> None:
    """The trained model beats character frequencies by MARGIN_BITS on the validation slice."""
    valid = corpus.valid[:VALID_CHARS]
    base = unigram_bits(corpus.train, valid, len(corpus.vocab))
    try:
        got = lm_bits(model, valid)
    except Exception as err:
        raise CheckFailed(f"the model could not be evaluated: {type(err).__name__}: {err}") from err
    if not got <= base - MARGIN_BITS:
        raise CheckFailed(
            f"the model gets {got:.3f} bits/char on the first {VALID_CHARS:,} validation "
            f"characters; the unigram model {base:.3f}: expected at most {base - MARGIN_BITS:.3f}. "
            "Did the training loop run (train_window) and does the state carry over?"
        )
    print(f"The model: {got:.3f} bits/char; character frequencies: {base:.3f}.")
