"""What a graded function may not call (a lesson's manifest: ``forbid = "rnn"``), refused while
it runs: the built-in module it re-implements, or autograd where gradients are written by hand.
"""

import contextlib
import functools
from collections.abc import Callable, Iterable
from unittest import mock

import torch

from rnncourse.checks import CheckFailed


def _targets(module: str, *ops: str) -> list[tuple[object, str]]:
    """The module, its cell, and the fused ops behind them (also reachable via torch._VF)."""
    layer, cell = getattr(torch.nn, module), getattr(torch.nn, f"{module}Cell")
    fused = [(owner, name) for name in ops for owner in (torch, torch._VF)]
    return [(layer, "forward"), (cell, "forward"), *fused]


# What each lesson re-implements, patched to raise while the student's function runs. The
# fused ops are patched too, so that a call through torch._VF is caught like the module's.
FORBIDDEN = {
    "rnn": _targets("RNN", "rnn_tanh", "rnn_tanh_cell", "rnn_relu", "rnn_relu_cell"),
    "lstm": _targets("LSTM", "lstm", "lstm_cell"),
    "gru": _targets("GRU", "gru", "gru_cell"),
    # backward(), torch.autograd.grad and what is built on them (torch.autograd.functional,
    # torch.func) all run the engine through _engine_run_backward, looked up in these modules.
    "autograd": [
        (torch.autograd, "_engine_run_backward"),
        (torch.autograd.graph, "_engine_run_backward"),
    ],
}


def refusal(kind: str, who: str) -> str:
    """The message of a call that ``FORBIDDEN[kind]`` refuses."""
    if kind == "autograd":
        return (
            f"{who} calls autograd (backward() or torch.autograd.grad): compute the gradients "
            "by hand, with tensor operations."
        )
    return (
        f"{who} calls PyTorch's built-in {kind.upper()}: write the equations yourself with "
        "tensor operations."
    )


@contextlib.contextmanager
def forbid(kind: str, who: str):
    """Inside the block, calling what ``FORBIDDEN[kind]`` lists raises CheckFailed."""

    def refuse(*args, **kwargs):
        raise CheckFailed(refusal(kind, who))

    with contextlib.ExitStack() as stack:
        for owner, name in FORBIDDEN[kind]:
            stack.enter_context(mock.patch.object(owner, name, refuse))
        yield


def forbidding(fn: Callable, kind: str) -> Callable:
    """``fn`` wrapped so that each call runs inside ``forbid(kind)``."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        with forbid(kind, getattr(fn, "__name__", "your function")):
            return fn(*args, **kwargs)

    return guarded


def run_cases(check: Callable, student, cases: Iterable[dict], **common) -> None:
    """Run ``check(student, **case, **common)`` for every case; name the case that fails."""
    for case in cases:
        try:
            check(student, **case, **common)
        except CheckFailed as err:
            shown = ", ".join(f"{k}={v}" for k, v in case.items())
            raise CheckFailed(f"[hidden case {shown}] {err}") from None
