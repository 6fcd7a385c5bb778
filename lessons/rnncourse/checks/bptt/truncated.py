"""Lesson 02's checks, truncated BPTT: a model that records its calls, train_truncated_bptt."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
    matches,
    tolerances,
)


class RecordingRNN(nn.Module):
    """A small model ``model(X, h) -> (logits (B, k, V), h_last (B, H))`` that records its calls.

    Each call stores the chunk, the state it received and the parameters it ran with, so that
    a check can tell whether states were carried, detached, and whether each update used the
    gradient of its own chunk only.
    """

    def __init__(self, vocab_size, num_hiddens, seed=0):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens, batch_first=True).double()
        self.out = nn.Linear(num_hiddens, vocab_size).double()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 1.2 - 0.6)
        self.calls = []

    def forward(self, X, h=None):
        self.calls.append(
            {
                "X": X.detach().clone(),
                "h_value": None if h is None else h.detach().clone(),
                "params": [p.detach().clone() for p in self.parameters()],
            }
        )
        inputs = F.one_hot(X, self.vocab_size).double()  # (B, k, V)
        outputs, h_n = self.rnn(inputs, None if h is None else h.unsqueeze(0))
        self.calls[-1]["h_last"] = h_n[0].detach().clone()
        return self.out(outputs), h_n[0]  # (B, k, V), (B, H)

    def chunk_loss_and_grads(self, params, X, Y, h):
        """Mean cross-entropy of one chunk from state h (detached) and its parameter gradients."""
        twin = RecordingRNN(self.vocab_size, self.rnn.hidden_size)
        with torch.no_grad():
            for p, value in zip(twin.parameters(), params, strict=True):
                p.copy_(value)
        logits, _ = twin(X, None if h is None else h.detach())
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), Y.reshape(-1))
        grads = torch.autograd.grad(loss, list(twin.parameters()))
        return loss.item(), grads


def _same_grads(got, want, tol):
    return all(g is not None and matches(g, w, **tol) for g, w in zip(got, want, strict=True))


def check_train_truncated_bptt(
    train_truncated_bptt,
    *,
    batch_size=3,
    num_steps=10,
    chunk_size=4,
    vocab_size=5,
    num_hiddens=6,
    seed=0,
):
    """train_truncated_bptt carries the state across chunks, detached, one update per chunk."""
    B, T, k, V = batch_size, num_steps, chunk_size, vocab_size
    g = torch.Generator().manual_seed(seed + 33)
    X = torch.randint(V, (B, T), generator=g)
    Y = torch.randint(V, (B, T), generator=g)
    model = RecordingRNN(V, num_hiddens, seed=seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.5, calls=model.calls)
    name = "train_truncated_bptt"
    try:
        losses = call_student(train_truncated_bptt, model, optimizer, X, Y, k)
    except CheckFailed as err:
        # Without a detach, backward() runs into the previous chunk's graph: freed (first
        # message), or kept with retain_graph=True but stale after the optimizer step (second).
        if any(
            m in str(err) for m in ("through the graph a second time", "by an inplace operation")
        ):
            raise CheckFailed(
                f"{err}\nThe state still carries the previous chunk's graph: detach it at the "
                "chunk boundary (h = h.detach()), so that the gradient stops there."
            ) from None
        raise
    calls, steps = model.calls, optimizer.steps
    num_chunks = math.ceil(T / k)
    if len(calls) != num_chunks:
        raise CheckFailed(
            f"the model was called {len(calls)} times for T = {T} and chunk_size = {k}; expected "
            f"{num_chunks}, once per chunk X[:, s:s + k] for s = 0, k, 2k, ... (the last chunk "
            "may be shorter)."
        )
    for c, call in enumerate(calls):
        want = X[:, c * k : (c + 1) * k]
        if not torch.equal(call["X"], want):
            raise CheckFailed(
                f"chunk {c} is not X[:, {c * k}:{(c + 1) * k}]: the chunks must be consecutive, "
                "in order, without overlap, and cover the whole sequence."
            )
        h_value = call["h_value"]
        if c == 0:
            if h_value is not None and bool(h_value.abs().max() > 0):
                raise CheckFailed("the first chunk must start from h = None (zeros).")
            continue
        if h_value is None or not bool(h_value.abs().max() > 0):
            raise CheckFailed(
                f"chunk {c} starts from zeros: the state is reset at each chunk boundary. Carry "
                "it: pass the last state the model returned for the previous chunk."
            )
        if not torch.equal(h_value, calls[c - 1]["h_last"]):
            raise CheckFailed(
                f"chunk {c} starts from a state that is not the one the model returned for "
                f"chunk {c - 1}: pass h_last of the previous chunk."
            )
    tol = tolerances(torch.float64)
    reference = [
        model.chunk_loss_and_grads(
            call["params"], call["X"], Y[:, c * k : (c + 1) * k], call["h_value"]
        )
        for c, call in enumerate(calls)
    ]
    if not isinstance(losses, list | tuple) or len(losses) != num_chunks:
        got = f"{len(losses)} values" if isinstance(losses, list | tuple) else type(losses).__name__
        raise CheckFailed(
            f"{name} should return a list of {num_chunks} losses, one per chunk; got {got}."
        )
    for c, (loss, (want_loss, _)) in enumerate(zip(losses, reference, strict=True)):
        if not isinstance(loss, float):
            raise CheckFailed(
                f"losses[{c}] is a {type(loss).__name__}; return Python floats (loss.item())."
            )
        if not math.isclose(loss, want_loss, rel_tol=1e-9):
            raise CheckFailed(
                f"losses[{c}] = {loss:.6g}; expected {want_loss:.6g}, the mean cross-entropy of "
                f"chunk {c} against Y[:, {c * k}:{(c + 1) * k}] (F.cross_entropy on "
                "(B * k, V) logits and (B * k,) targets)."
            )
    if len(steps) != num_chunks or [s.after_call for s in steps] != list(range(1, num_chunks + 1)):
        raise CheckFailed(
            f"optimizer.step() was called {len(steps)} times; expected once per chunk, after "
            "that chunk's forward and backward pass."
        )
    for c, (step, (_, want_grads)) in enumerate(zip(steps, reference, strict=True)):
        if _same_grads(step.grads, want_grads, tol):
            continue
        summed = [sum(r[1][i] for r in reference[: c + 1]) for i in range(len(want_grads))]
        if c > 0 and _same_grads(step.grads, summed, tol):
            hint = "gradients accumulate across chunks: call optimizer.zero_grad() for every chunk."
        elif any(gr is None or not bool(gr.abs().max() > 0) for gr in step.grads):
            hint = "there is no gradient at the step: the order is zero_grad(), backward(), step()."
        else:
            hint = (
                "the update must use the gradient of this chunk's loss alone: zero_grad(), "
                "loss.backward(), step(), with the state detached at the boundary."
            )
        raise CheckFailed(f"at the update after chunk {c}, {hint}")
    print(
        f"train_truncated_bptt: {num_chunks} chunks of up to {k} steps, state carried and "
        "detached, one update per chunk with that chunk's gradient."
    )
