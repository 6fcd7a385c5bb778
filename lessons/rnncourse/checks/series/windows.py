"""Lesson 08's checks of the data pipeline: windows, and a scaler fitted on training data only.

The windows are cut from ``arange`` series, so every value says where it came from; the
scaler's series has a test part unlike its training part, so statistics that read it show.
"""

import math

import torch

from rnncourse.checks._core import CheckFailed, call_student, expect_tensor


def _as_float(name: str, value) -> float:
    """A Python number, a 0-d tensor or a numpy scalar, as a float; anything else fails."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a number; got {type(value).__name__}.") from None


def windows_problem(X, Y, T: int, lookback: int, horizon: int) -> str | None:
    """None when (X, Y) are the windows of ``arange(T)``; else what is wrong with them."""
    N = T - lookback - horizon + 1
    for name, value, width in (("X", X, lookback), ("Y", Y, horizon)):
        if not isinstance(value, torch.Tensor):
            return f"{name} should be a tensor; got {type(value).__name__}"
        if value.dim() != 2 or value.shape[1] != width:
            dims = "(N, lookback)" if name == "X" else "(N, horizon)"
            return f"{name} has shape {tuple(value.shape)}; expected {dims} = ({N}, {width})"
    if X.shape[0] == N - 1:
        return (
            f"{N - 1} windows; expected {N}: the last window, whose targets end on the "
            "series' last value, is missing (N = T - lookback - horizon + 1)"
        )
    if X.shape[0] != N or Y.shape[0] != N:
        return f"{X.shape[0]} inputs and {Y.shape[0]} targets; expected N = {N}"
    starts = X[:, 0].double()
    if not torch.equal(starts, torch.arange(N, dtype=torch.float64)):
        return "window i should start at series[i] (stride 1, in order)"
    if not torch.equal(X.double() - starts[:, None], torch.arange(lookback).double().expand(N, -1)):
        return "each input window should be lookback consecutive values"
    first_target = Y[:, 0].double() - starts
    if torch.equal(first_target, torch.full_like(first_target, lookback - 1)):
        return (
            "the first target is the window's own last input: targets start at "
            "series[i + lookback], right after the window"
        )
    if not torch.equal(
        Y.double() - starts[:, None], (torch.arange(horizon).double() + lookback).expand(N, -1)
    ):
        return "Y[i] should be the horizon values right after X[i]: series[i + lookback + k]"
    return None


WINDOW_CASES = ((10, 3, 1), (10, 2, 3), (7, 1, 1), (10, 4, 6), (12, 5, 2))


def check_make_windows(make_windows, cases=WINDOW_CASES):
    """make_windows(series, lookback, horizon) -> X (N, lookback), Y (N, horizon), for
    arange series (each value is its own index): in order, stride 1, last window included."""
    for T, lookback, horizon in cases:
        series = torch.arange(T, dtype=torch.float64)
        got = call_student(make_windows, series, lookback, horizon)
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise CheckFailed("make_windows should return a pair (X, Y).")
        why = windows_problem(*got, T, lookback, horizon)
        if why:
            raise CheckFailed(
                f"make_windows(arange({T}), lookback={lookback}, horizon={horizon}): {why}."
            )
    print(f"make_windows cuts the right windows in {len(cases)} cases, the last one included.")


def scaler_series(train_end: int = 6) -> torch.Tensor:
    """A training part of mean 2, then a test part of much larger values."""
    train = torch.tensor([1.0, 3.0, 1.0, 3.0, 2.0, 2.0], dtype=torch.float64)[:train_end]
    return torch.cat([train, torch.tensor([50.0, 70.0, 90.0], dtype=torch.float64)])


def scaler_problem(got, series: torch.Tensor, train_end: int) -> str | None:
    """None when ``got`` holds the mean and standard deviation of ``series[:train_end]``."""
    try:
        mean, std = _as_float("mean", got.mean), _as_float("std", got.std)
    except AttributeError:
        return f"fit_scaler should return a Scaler(mean, std); got {type(got).__name__}"
    train, whole = series[:train_end], series
    if math.isclose(mean, whole.mean().item()) and not math.isclose(mean, train.mean().item()):
        return (
            "the mean is the whole series' mean: fit on series[:train_end] only, or the test "
            "part leaks into every input the model sees"
        )
    if not math.isclose(mean, train.mean().item(), rel_tol=1e-9, abs_tol=1e-12):
        return f"mean = {mean:.6g}; expected the training part's, {train.mean().item():.6g}"
    stds = [train.std(correction=c).item() for c in (0, 1)]
    if not any(math.isclose(std, s, rel_tol=1e-9) for s in stds):
        return (
            f"std = {std:.6g}; expected the training part's standard deviation, "
            f"{stds[0]:.6g} (or {stds[1]:.6g} with Bessel's correction)"
        )
    return None


def check_fit_scaler(fit_scaler):
    """fit_scaler(series, train_end) -> Scaler: the training part's statistics, unchanged by
    anything after train_end."""
    for train_end in (6, 4):
        series = scaler_series(train_end)
        got = call_student(fit_scaler, series, train_end)
        why = scaler_problem(got, series, train_end)
        if why:
            raise CheckFailed(f"fit_scaler(series, train_end={train_end}): {why}.")
        changed = series.clone()
        changed[train_end:] = -changed[train_end:]
        again = call_student(fit_scaler, changed, train_end)
        if (_as_float("mean", again.mean), _as_float("std", again.std)) != (
            _as_float("mean", got.mean),
            _as_float("std", got.std),
        ):
            raise CheckFailed(
                "changing the values after train_end changed the scaler: it must read "
                "series[:train_end] only."
            )
    print("fit_scaler reads the training part only, and changing the test part changes nothing.")


def check_transform_roundtrip(transform, inverse_transform):
    """transform: (x - mean) / std; inverse_transform undoes it; shapes and dtypes kept."""
    from rnncourse.data.series import Scaler

    scaler = Scaler(mean=2.0, std=4.0)
    x = torch.tensor([[2.0, 6.0, -2.0], [10.0, 0.0, 4.0]], dtype=torch.float64)
    z = call_student(transform, x, scaler)
    expect_tensor("transform(x)", z, x.shape)
    want = torch.tensor([[0.0, 1.0, -1.0], [2.0, -0.5, 0.5]], dtype=torch.float64)
    if not torch.allclose(z, want):
        hint = ""
        if torch.allclose(z, x / 4.0 - 2.0):
            hint = " Subtract the mean first, then divide: (x - mean) / std."
        elif torch.allclose(z, (x - 2.0) * 4.0):
            hint = " Divide by std; do not multiply."
        raise CheckFailed(f"transform(x) = {z.tolist()}; expected {want.tolist()}.{hint}")
    back = call_student(inverse_transform, want, scaler)
    expect_tensor("inverse_transform(z)", back, x.shape)
    if not torch.allclose(back, x):
        hint = (
            " Multiply by std first, then add the mean."
            if torch.allclose(back, (want + 2.0) * 4.0)
            else ""
        )
        raise CheckFailed(
            f"inverse_transform(transform(x)) = {back.tolist()}; expected x = {x.tolist()}.{hint}"
        )
    print("transform and inverse_transform undo each other and scale as (x - mean) / std.")
