"""Hidden-check helpers: forbid the module being re-implemented, and run many cases."""

import contextlib
import functools
from collections.abc import Callable, Iterable
from unittest import mock

import torch

from rnncourse.checks import CheckFailed

# What each lesson re-implements, as (owner, attribute) pairs patched to raise while the
# student's function runs. The functional ops are patched too, so that a call through
# torch._VF or torch.rnn_tanh is caught as well as a call of the module.
FORBIDDEN = {
    "rnn": [
        (torch.nn.RNN, "forward"),
        (torch.nn.RNNCell, "forward"),
        (torch, "rnn_tanh"),
        (torch, "rnn_tanh_cell"),
        (torch._VF, "rnn_tanh"),
        (torch._VF, "rnn_tanh_cell"),
    ],
    "lstm": [
        (torch.nn.LSTM, "forward"),
        (torch.nn.LSTMCell, "forward"),
        (torch, "lstm"),
        (torch, "lstm_cell"),
        (torch._VF, "lstm"),
        (torch._VF, "lstm_cell"),
    ],
    "gru": [
        (torch.nn.GRU, "forward"),
        (torch.nn.GRUCell, "forward"),
        (torch, "gru"),
        (torch, "gru_cell"),
        (torch._VF, "gru"),
        (torch._VF, "gru_cell"),
    ],
}


@contextlib.contextmanager
def forbid(kind: str, who: str):
    """Inside the block, calling what ``FORBIDDEN[kind]`` lists raises CheckFailed."""

    def refuse(*args, **kwargs):
        raise CheckFailed(
            f"{who} calls PyTorch's built-in {kind.upper()}: write the equations "
            "yourself with tensor operations."
        )

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
