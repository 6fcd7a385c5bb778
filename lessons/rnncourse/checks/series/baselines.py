"""Lesson 08's checks of the baselines and the error metrics, on series short enough to
work out by hand (each expected value is written next to the case)."""

import math

import torch

from rnncourse.checks._core import CheckFailed, call_student, expect_tensor
from rnncourse.checks.series.windows import _as_float

# 7 values, a season of 3: the last season is (8, 3, 7)
HISTORY = torch.tensor([5.0, 1.0, 4.0, 2.0, 8.0, 3.0, 7.0], dtype=torch.float64)


def _forecast(name, fn, expected, *args, hint=""):
    got = call_student(fn, HISTORY, *args, name=name)
    expect_tensor(f"{name}(history, ...)", got, expected.shape, "(horizon,)")
    if not torch.allclose(got.double(), expected):
        raise CheckFailed(
            f"{name} gave {[round(v, 4) for v in got.tolist()]} for history "
            f"{HISTORY.tolist()}; expected {[round(v, 4) for v in expected.tolist()]}. {hint}"
        )


def check_naive_forecast(naive_forecast):
    """naive_forecast(history, horizon): the last value, horizon times."""
    for horizon in (1, 4):
        _forecast(
            "naive_forecast",
            naive_forecast,
            torch.full((horizon,), 7.0).double(),
            horizon,
            hint="Every step repeats history[-1].",
        )
    print("naive_forecast repeats the last value.")


def check_seasonal_naive_forecast(seasonal_naive_forecast):
    """The value one season before each forecast step; past one season, the last season again."""
    cases = (
        (3, 3, [8.0, 3.0, 7.0]),
        (2, 3, [8.0, 3.0]),
        (7, 3, [8.0, 3.0, 7.0, 8.0, 3.0, 7.0, 8.0]),
        (3, 1, [7.0, 7.0, 7.0]),
        (4, 7, [5.0, 1.0, 4.0, 2.0]),
    )
    for horizon, season, want in cases:
        hint = (
            "Step h (from 0) repeats history[len(history) - season + h % season]: past one "
            "season, the last season starts again."
        )
        _forecast(
            "seasonal_naive_forecast",
            seasonal_naive_forecast,
            torch.tensor(want, dtype=torch.float64),
            horizon,
            season,
            hint=hint,
        )
    print("seasonal_naive_forecast repeats the last season, also for horizons past one season.")


def check_drift_forecast(drift_forecast):
    """The last value plus h times the average step from the first value to the last."""
    slope = (7.0 - 5.0) / 6  # (last - first) / (T - 1)
    want = torch.tensor([7.0 + h * slope for h in (1, 2, 3)], dtype=torch.float64)
    hint = (
        "Step h = 1, 2, ... is history[-1] + h * (history[-1] - history[0]) / (T - 1): the line "
        "through the first and last values, continued."
    )
    _forecast("drift_forecast", drift_forecast, want, 3, hint=hint)
    print("drift_forecast continues the line through the first and last values.")


Y = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
Y_HAT = torch.tensor([[2.0, 2.0], [5.0, 0.0]], dtype=torch.float64)  # errors 1, 0, 2, -4


def check_mae_rmse(mae, rmse):
    """mae = mean |y - y_hat| = 7/4; rmse = sqrt(mean (y - y_hat)^2) = sqrt(21/4), over every
    entry, returned as numbers."""
    for name, fn, want, hint in (
        (
            "mae",
            mae,
            7 / 4,
            "mean of |y - y_hat| over every entry (the sign of an error must not cancel another).",
        ),
        (
            "rmse",
            rmse,
            math.sqrt(21 / 4),
            "the square root of the mean squared error, over "
            "every entry (not the mean of per-row roots).",
        ),
    ):
        got = _as_float(name, call_student(fn, Y, Y_HAT, name=name))
        if not math.isclose(got, want, rel_tol=1e-9):
            raise CheckFailed(f"{name}(y, y_hat) = {got:.6g}; expected {want:.6g}: {hint}")
        if not math.isclose(
            _as_float(name, call_student(fn, Y[0], Y_HAT[0], name=name)),
            0.5 if name == "mae" else math.sqrt(1 / 2),
            rel_tol=1e-9,
        ):
            raise CheckFailed(f"{name} is wrong on 1-D inputs: {hint}")
    print("mae and rmse average over every entry.")


# seasonal differences with season 2: 1, 3, 1, 3 (mean 2); with season 1 the mean is 3.2
TRAIN = torch.tensor([1.0, 3.0, 2.0, 6.0, 3.0, 9.0], dtype=torch.float64)


def check_mase(mase):
    """mase = MAE / mean |train[t] - train[t - season]|: the forecast's error in units of the
    in-sample seasonal-naive error; a ValueError when train has no more than season values."""
    got = _as_float("mase", call_student(mase, Y, Y_HAT, TRAIN, 2))
    want = (7 / 4) / 2
    if not math.isclose(got, want, rel_tol=1e-9):
        hints = {
            (7 / 4)
            / 3.2: "that scale uses one-step differences: use train[t] - train[t - season].",
            (7 / 4) / (8 / 6): "average over the len(train) - season differences, not len(train).",
            7 / 4: "divide the MAE by the in-sample seasonal-naive MAE.",
        }
        hint = next(
            (h for v, h in hints.items() if math.isclose(got, v, rel_tol=1e-9)),
            "the scale is the mean |train[t] - train[t - season]| over t >= season, "
            "computed on the training series, not on the test values.",
        )
        raise CheckFailed(
            f"mase(y, y_hat, train, season=2) = {got:.6g}; expected {want:.6g}: {hint}"
        )
    try:
        mase(Y, Y_HAT, TRAIN[:2], 2)
    except ValueError:
        pass
    except NotImplementedError:
        raise CheckFailed("mase is not implemented yet.") from None
    except Exception as err:
        raise CheckFailed(
            f"mase with len(train) <= season raised {type(err).__name__}; expected ValueError."
        ) from err
    else:
        raise CheckFailed(
            "mase with len(train) <= season has no seasonal difference to scale by: raise "
            "ValueError."
        )
    print("mase scales the MAE by the in-sample seasonal-naive error.")
