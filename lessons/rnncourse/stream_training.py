"""The training loop of a language model read as one long stream (truncated BPTT), given in
lesson 06 and reused in lesson 07.

The loop holds no answer: the functions it calls (the stream's windows, one update, the
evaluation) are passed in. Lesson 06 passes the ones you write; ``rnncourse.lm.fit_lm``
passes rnncourse's own, so the loop exists once.
"""

import time
from collections.abc import Callable

import torch


def fit_stream_lm(
    model: torch.nn.Module,
    train_rows: torch.Tensor,
    valid_windows,
    *,
    stream_windows: Callable,
    train_window: Callable,
    evaluate_lm: Callable,
    lr: float,
    num_steps: int,
    max_norm: float,
    seconds: float | None,
    max_updates: int | None,
    evaluations: int = 10,
) -> list[tuple[float, int, float]]:
    """Adam on the windows of train_rows for ``seconds`` of training (evaluation excluded) or
    ``max_updates`` updates, whichever is given and comes first.

    Args:
        model: the language model.  train_rows: (B, L) int64, the stream in B rows.
        valid_windows: the validation windows, as ``evaluate_lm`` takes them.
        stream_windows(rows, num_steps) -> [(X, Y)] of (B, t) int64, in reading order.
        train_window(model, X, Y, state, optimizer, max_norm) -> (loss, detached state).
        evaluate_lm(model, windows) -> (validation loss, perplexity).
    Returns:
        the curve [(seconds trained, updates, validation loss)] at the start and at
        ``evaluations`` points along the way. When the windows run out, training starts
        again at the top of the rows with no state (a new pass over the text).
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    windows, state, updates, trained = iter(()), None, 0, 0.0
    curve = [(0.0, 0, evaluate_lm(model, valid_windows)[0])]
    while not ((seconds and trained >= seconds) or (max_updates and updates >= max_updates)):
        start = time.perf_counter()
        model.train()
        X_Y = next(windows, None)
        if X_Y is None:  # the end of the rows: a new pass from the top, with no state
            windows, state = iter(stream_windows(train_rows, num_steps)), None
            X_Y = next(windows)
        X, Y = (t.to(device) for t in X_Y)
        _, state = train_window(model, X, Y, state, optimizer, max_norm)
        updates += 1
        trained += time.perf_counter() - start
        if seconds:
            due = trained >= seconds * len(curve) / evaluations
        else:
            due = updates % max(max_updates // evaluations, 1) == 0
        if due:
            curve.append((trained, updates, evaluate_lm(model, valid_windows)[0]))
    return curve
