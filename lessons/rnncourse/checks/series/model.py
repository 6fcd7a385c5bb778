"""Lesson 08's checks of the model and of forecasting with it.

``SeriesRNN`` is compared with its own submodules (the encoder's last state through the head).
``recursive_forecast`` runs on ``RunningMeanModel``, whose prediction is the mean of everything
it has read, state included, plus one: the right forecast is worked out by that recurrence, and
feeding the whole history again, or a slice of it, or any value after the origin, gives another
one. (The plus one matters: the mean alone is a fixed point of its own recurrence, so every
prediction would equal the history's mean, and reading the history twice, or returning the
predictions one step late, would not show.)
``walk_forward`` runs a recording forecaster that keeps the history it was given.
"""

import dataclasses
import math

import torch
from torch import nn

from rnncourse.checks._core import CheckFailed, call_student

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def _pair(name, got):
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(f"{name} should return a pair (Y_hat, state); got {type(got).__name__}.")
    return got


def series_rnn_problem(model, cell: str, sizes: tuple[int, int, int]) -> str | None:
    """None when the student's SeriesRNN(D, H, horizon, cell) is an encoder + linear head."""
    D, H, horizon = sizes
    rnn, head = getattr(model, "rnn", None), getattr(model, "head", None)
    if not isinstance(rnn, CELLS[cell]):
        return (
            f"model.rnn should be an nn.{cell.upper()} for cell={cell!r}; got {type(rnn).__name__}"
        )
    if (rnn.input_size, rnn.hidden_size, rnn.batch_first) != (D, H, True):
        return (
            f"model.rnn should be nn.{cell.upper()}({D}, {H}, batch_first=True); got "
            f"input_size={rnn.input_size}, hidden_size={rnn.hidden_size}, "
            f"batch_first={rnn.batch_first}"
        )
    if not isinstance(head, nn.Linear) or (head.in_features, head.out_features) != (H, horizon):
        return f"model.head should be nn.Linear({H}, {horizon}): one output per forecast step"
    return None


def check_series_rnn(SeriesRNN):
    """SeriesRNN(input_size, num_hiddens, horizon, cell): forward(X, state=None) ->
    (Y_hat (B, horizon), state), Y_hat = head(the encoder's last hidden state); the state
    carried across two calls gives the same as one call."""
    for cell, sizes in (("gru", (3, 5, 4)), ("lstm", (1, 6, 2))):
        torch.manual_seed(0)
        model = call_student(SeriesRNN, *sizes, cell, name="SeriesRNN").double()
        why = series_rnn_problem(model, cell, sizes)
        if why:
            raise CheckFailed(f"SeriesRNN(*{sizes}, cell={cell!r}): {why}.")
        X = torch.randn(2, 7, sizes[0], dtype=torch.float64)
        Y_hat, _ = _pair("forward", call_student(model, X, name="SeriesRNN.forward"))
        H_all, _ = model.rnn(X)
        want = model.head(H_all[:, -1])
        if not isinstance(Y_hat, torch.Tensor) or Y_hat.shape != want.shape:
            shape = tuple(Y_hat.shape) if isinstance(Y_hat, torch.Tensor) else type(Y_hat)
            hint = (
                " The head reads the last step only." if getattr(Y_hat, "dim", int)() == 3 else ""
            )
            raise CheckFailed(
                f"Y_hat has shape {shape}; expected (B, horizon) = {tuple(want.shape)}.{hint}"
            )
        if not torch.allclose(Y_hat, want, atol=1e-10):
            raise CheckFailed(
                "Y_hat is not head(the last hidden state): apply model.head to H_all[:, -1] "
                "(batch first: time is dimension 1)."
            )
        _, state = _pair("forward", call_student(model, X[:, :4], name="SeriesRNN.forward"))
        again, _ = _pair("forward", call_student(model, X[:, 4:], state, name="SeriesRNN.forward"))
        if not torch.allclose(again, want, atol=1e-10):
            raise CheckFailed(
                "forward(X[:, 4:], state) after forward(X[:, :4]) should equal forward(X): "
                "pass the given state to the encoder and return the encoder's new state."
            )
    print("SeriesRNN reads the last hidden state through its head and carries its state.")


class RunningMeanModel(nn.Module):
    """A stand-in one-step model: predicts the mean of every value read so far, plus one.

    forward(X (B, t, 1), state=None) -> (Y_hat (B, 1), state); state is (sum, count), (B, 2).
    It records every input it was given (``self.seen``).
    """

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # next(model.parameters()) works
        self.seen: list[torch.Tensor] = []

    def forward(self, X, state=None):
        self.seen.append(X.detach().clone())
        total = X.sum(dim=(1, 2))
        count = torch.full_like(total, X.shape[1])
        if state is not None:
            total, count = total + state[:, 0], count + state[:, 1]
        return (total / count + 1)[:, None], torch.stack([total, count], dim=1)


def running_mean_forecast(history: list[float], steps: int) -> list[float]:
    """The right recursive forecast of RunningMeanModel, by its recurrence."""
    total, count, out = sum(history), len(history), []
    for _ in range(steps):
        out.append(total / count + 1)
        total, count = total + out[-1], count + 1
    return out


@dataclasses.dataclass
class RecursiveRun:
    """What recursive_forecast returned and what it fed the model (every input value)."""

    forecast: list[float]
    fed: list[float]


def run_recursive(recursive_forecast, series: torch.Tensor, origin: int, steps: int):
    """The student's forecast on RunningMeanModel, the future after ``origin`` made NaN so that a
    value read from it shows."""
    model = RunningMeanModel()
    hidden = series.clone()
    hidden[origin:] = math.nan
    got = call_student(recursive_forecast, model, hidden, origin, steps, name="recursive_forecast")
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"recursive_forecast should return a tensor; got {type(got).__name__}.")
    fed = torch.cat([x.reshape(-1) for x in model.seen]) if model.seen else torch.zeros(0)
    return RecursiveRun(got.detach().double().reshape(-1).tolist(), fed.double().tolist())


def recursive_problem(run: RecursiveRun, history: list[float], steps: int) -> str | None:
    """None when the run is the recursive forecast; else what went wrong."""
    if any(math.isnan(v) for v in run.fed):
        return (
            "it fed the model a value after the origin (the ground truth it must forecast): "
            "use series[:origin] and the model's own predictions only"
        )
    if len(run.forecast) != steps:
        return f"{len(run.forecast)} values; expected steps = {steps}"
    want = running_mean_forecast(history, steps)
    pairs = zip(run.forecast, want, strict=True)
    if all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in pairs):  # float32 too
        return None
    if len(run.fed) > len(history) + steps:
        return (
            "the model read some values twice: after the history, feed only the newest "
            "prediction with the state returned by the previous call"
        )
    return (
        "the forecast differs from the model's: read series[:origin] once, then feed each "
        "prediction back as the next input (shape (1, 1, 1)), carrying the state"
    )


def check_recursive_forecast(recursive_forecast):
    """recursive_forecast(model, series, origin, steps) -> (steps,): the model reads
    series[:origin], then its own predictions, one at a time, with the state carried; nothing
    after the origin is ever fed (the check makes it NaN)."""
    series = torch.tensor([2.0, 4.0, 9.0, 1.0, 5.0, 3.0, 8.0], dtype=torch.float64)
    for origin, steps in ((4, 3), (1, 2), (7, 1)):
        run = run_recursive(recursive_forecast, series, origin, steps)
        why = recursive_problem(run, series[:origin].tolist(), steps)
        if why:
            raise CheckFailed(
                f"recursive_forecast(model, series, origin={origin}, steps={steps}): {why}."
            )
    print("recursive_forecast feeds back its own predictions and never the ground truth.")


@dataclasses.dataclass
class WalkRun:
    """What walk_forward returned, and the length of each history the forecaster got."""

    origins: list[int]
    forecasts: list[list[float]]
    seen: list[int]


def run_walk(walk_forward, series, start, end, horizon, stride) -> WalkRun:
    seen = []

    def forecaster(history, steps):  # the last value plus 1, 2, ...: says which history it had
        seen.append(len(history))
        return history[-1] + torch.arange(1, steps + 1, dtype=history.dtype)

    got = call_student(
        walk_forward, forecaster, series, start, end, horizon, stride, name="walk_forward"
    )
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed("walk_forward should return a pair (origins, forecasts).")
    origins, forecasts = got
    origins = [int(o) for o in (origins.tolist() if isinstance(origins, torch.Tensor) else origins)]
    if isinstance(forecasts, list | tuple):
        forecasts = torch.stack(list(forecasts)) if forecasts else torch.zeros(0, horizon)
    return WalkRun(origins, forecasts.detach().double().tolist(), seen)


def walk_problem(run: WalkRun, series, start, end, horizon, stride) -> str | None:
    want = list(range(start, end - horizon + 1, stride))
    if run.origins != want:
        hint = ""
        if run.origins == want[:-1]:
            hint = ": the last origin, whose forecast ends exactly at end, is missing"
        elif any(o + horizon > end for o in run.origins):
            hint = ": a forecast from that origin runs past end"
        return f"origins {run.origins}; expected {want}{hint}"
    if run.seen != want:
        if run.seen == [o + 1 for o in want]:
            return (
                "the forecaster saw series[origin], the first value it must forecast: "
                "give it series[:origin]"
            )
        return f"the forecaster was given histories of lengths {run.seen}; expected {want}"
    expected = [[float(series[o - 1]) + k for k in range(1, horizon + 1)] for o in want]
    if run.forecasts != expected:
        return "forecasts[i] should be the forecaster's output from origins[i], (N, horizon)"
    return None


def check_walk_forward(walk_forward):
    """walk_forward(forecaster, series, start, end, horizon, stride) -> (origins, forecasts):
    an origin every stride steps from start, the last one whose forecast ends by end; the
    forecaster gets series[:origin] and the horizon."""
    series = torch.arange(20, dtype=torch.float64) * 10
    for start, end, horizon, stride in ((10, 20, 3, 2), (10, 20, 3, 1), (5, 12, 7, 4)):
        run = run_walk(walk_forward, series, start, end, horizon, stride)
        why = walk_problem(run, series, start, end, horizon, stride)
        if why:
            raise CheckFailed(
                f"walk_forward(start={start}, end={end}, horizon={horizon}, "
                f"stride={stride}): {why}."
            )
    print("walk_forward moves the origin through the period and never shows the future.")


def check_beats_persistence(model, X_valid, Y_valid, max_ratio=0.8):
    """The trained one-step model's validation RMSE is below max_ratio x persistence's (the
    last input value repeated), on scaled windows X (N, lookback), Y (N, 1)."""
    model.eval()
    with torch.no_grad():
        Y_hat, _ = model(X_valid[..., None].to(next(model.parameters()).dtype))
    ours = (Y_hat.double() - Y_valid.double()).pow(2).mean().sqrt().item()
    persistence = (X_valid[:, -1:].double() - Y_valid.double()).pow(2).mean().sqrt().item()
    if not ours <= max_ratio * persistence:
        raise CheckFailed(
            f"one step ahead the model's RMSE is {ours:.4f}, persistence's {persistence:.4f} "
            f"(scaled units); it should be at most {max_ratio} x. Did training run, on the "
            "training windows, with the loss going down?"
        )
    print(
        f"one step ahead: model RMSE {ours:.4f} vs persistence {persistence:.4f} "
        f"({ours / persistence:.2f} x)."
    )
