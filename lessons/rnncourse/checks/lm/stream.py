"""Lesson 06's checks of the stream: batchify, stream_windows, detach_state.

The streams are ``arange``s, so every id says where it came from: a row or a window that
starts at the wrong place shows up as a wrong number, and the message can say which.
"""

import torch

from rnncourse.checks._core import CheckFailed, call_student

# (N, B): divisible, a remainder, one row, one column per row
BATCHIFY_CASES = [(12, 3), (14, 3), (10, 1), (7, 7), (100, 8)]
# (B, L, T): L - 1 a multiple of T, a short last window, one window, T = 1, T >= L
WINDOW_CASES = [(2, 7, 3), (3, 11, 4), (2, 6, 5), (1, 5, 1), (2, 4, 9), (4, 50, 7)]


def batchify_problem(rows, ids: torch.Tensor, batch_size: int) -> str | None:
    """None when ``rows`` is the (B, N // B) layout of the stream ``ids``, else why not."""
    N, B = len(ids), batch_size
    L = N // B
    if not isinstance(rows, torch.Tensor):
        return f"batchify returned {type(rows).__name__}; expected a (B, L) tensor"
    if tuple(rows.shape) != (B, L):
        return (
            f"for N = {N} ids and B = {B}, rows has shape {tuple(rows.shape)}; expected "
            f"(B, N // B) = {(B, L)} (drop the last N - B * L ids)"
        )
    if rows.dtype != ids.dtype:
        return f"rows has dtype {rows.dtype}; expected {ids.dtype} like the ids"
    want = ids[: B * L].reshape(B, L)
    if torch.equal(rows, want):
        return None
    if L > 1 and B > 1 and torch.equal(rows, ids[: B * L].reshape(L, B).T):
        return (
            "the ids run down the columns: row b must be the consecutive ids "
            "ids[b * L : (b + 1) * L], so that each row is a continuous piece of text"
        )
    b = int((rows != want).any(1).nonzero()[0, 0])
    return f"row {b} is {rows[b].tolist()[:8]}...; expected ids[{b * L}:{(b + 1) * L}]"


def check_batchify(batchify) -> None:
    """batchify(ids, batch_size) -> (B, N // B): row b is ids[b * L : (b + 1) * L]."""
    for N, B in BATCHIFY_CASES:
        ids = torch.arange(100, 100 + N)
        rows = call_student(batchify, ids, B, name="batchify")
        problem = batchify_problem(rows, ids, B)
        if problem:
            raise CheckFailed(f"batchify(arange({N}) + 100, {B}): {problem}.")
    print("batchify cuts the stream into consecutive rows.")


def windows_problem(windows, rows: torch.Tensor, num_steps: int) -> str | None:
    """None when ``windows`` are the truncated-BPTT windows of ``rows``, else why not."""
    B, L = rows.shape
    try:
        windows = list(windows)
    except TypeError:
        return f"stream_windows returned {type(windows).__name__}; expected (X, Y) pairs"
    starts = list(range(0, L - 1, num_steps))
    for n, window in enumerate(windows):
        if not isinstance(window, tuple | list) or len(window) != 2:
            return f"window {n} is not an (X, Y) pair"
        X, Y = window
        if not isinstance(X, torch.Tensor) or not isinstance(Y, torch.Tensor):
            return f"window {n}: X and Y should be tensors"
        if n >= len(starts):
            return f"{len(windows)} windows; expected {len(starts)} (no column twice)"
        i = starts[n]
        t = min(num_steps, L - 1 - i)
        if tuple(X.shape) != (B, t) or tuple(Y.shape) != (B, t):
            return (
                f"window {n} (columns {i}..) has X {tuple(X.shape)}, Y {tuple(Y.shape)}; "
                f"expected (B, t) = {(B, t)}"
                + (" (the last window is shorter)" if t < num_steps else "")
            )
        if not torch.equal(X, rows[:, i : i + t]):
            return f"window {n}: X should be rows[:, {i}:{i + t}]"
        if not torch.equal(Y, rows[:, i + 1 : i + 1 + t]):
            if torch.equal(Y, X):
                return f"window {n}: Y equals X: the targets are the next characters"
            return f"window {n}: Y should be rows[:, {i + 1}:{i + 1 + t}], X shifted by one"
    if len(windows) < len(starts):
        i = starts[len(windows)]
        return (
            f"{len(windows)} windows; expected {len(starts)}: columns {i + 1}..{L - 1} are never "
            "a target (keep the shorter last window)"
        )
    return None


def check_stream_windows(stream_windows) -> None:
    """stream_windows(rows, T) -> (X, Y) windows: Y is X shifted by one, every column once."""
    for B, L, T in WINDOW_CASES:
        rows = torch.arange(B * L).reshape(B, L) + 1000
        windows = call_student(stream_windows, rows, T, name="stream_windows")
        problem = windows_problem(windows, rows, T)
        if problem:
            raise CheckFailed(f"stream_windows on rows of shape {(B, L)}, T = {T}: {problem}.")
    print("stream_windows covers every target once, in order.")


# ----------------------------------------------------------------------------- detach_state
def _states(g: torch.Generator):
    """States as the layers give them, each with a graph: (name, state) pairs."""
    w = torch.randn(3, generator=g, requires_grad=True)
    h = torch.randn(2, 4, 3, generator=g) * w  # (num_layers, B, H), on w's graph
    c = torch.randn(2, 4, 3, generator=g) * w
    return [
        ("None (before the first window)", None),
        ("a GRU state", h),
        ("an LSTM (h, c)", (h, c)),
        ("an LSTM state as a list [h, c]", [h, c]),  # the docstring's "tuple (or list)"
    ]


def detach_problem(got, state) -> str | None:
    """None when ``got`` is ``state`` with the same values, cut from its graph."""
    if state is None:
        return None if got is None else f"returned {type(got).__name__}; expected None"
    if isinstance(state, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"returned {type(got).__name__}; expected a tensor"
        if got.requires_grad or got.grad_fn is not None:
            return "the tensor still has a graph (requires_grad): call .detach()"
        if got.shape != state.shape or not torch.equal(got, state.detach()):
            return "the values changed: detach keeps the numbers, it only drops the history"
        return None
    if not isinstance(got, tuple | list) or len(got) != len(state):
        return (
            f"returned {type(got).__name__}; expected a tuple of {len(state)} tensors like the "
            "state (an LSTM's state is (h, c): detach both)"
        )
    for i, (g, s) in enumerate(zip(got, state, strict=True)):
        problem = detach_problem(g, s)
        if problem:
            return f"part {i}: {problem}"
    return None


def check_detach_state(detach_state) -> None:
    """detach_state keeps values and structure and cuts the graph, for None, GRU and LSTM."""
    g = torch.Generator().manual_seed(6)
    for what, state in _states(g):
        got = call_student(detach_state, state, name="detach_state")
        problem = detach_problem(got, state)
        if problem:
            raise CheckFailed(f"detach_state on {what}: {problem}.")
    print("detach_state cuts the graph and keeps the state.")
