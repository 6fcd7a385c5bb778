"""Lesson 08's figures: a series with its split shaded, forecasts against what happened,
error against the forecast horizon, and the cross-correlation that exposes a lagged copy."""

from collections.abc import Mapping

import numpy as np
import torch

from rnncourse.plots.diagrams import _axes

SPLIT_COLOURS = {"validation": "tab:orange", "test": "tab:red"}


def plot_split(series, ax=None, *, title=""):
    """The whole series, validation and test periods shaded (a ``rnncourse.data.Series``)."""
    ax = _axes(ax, (11, 3.2))
    times, values = series.times, series.values.numpy()
    ax.plot(times, values, lw=0.6, color="tab:blue")
    split = series.split
    for name, (a, b) in {
        "validation": (split.train_end, split.valid_end),
        "test": (split.valid_end, len(values)),
    }.items():
        ax.axvspan(times[a], times[b - 1], color=SPLIT_COLOURS[name], alpha=0.12, label=name)
    ax.set(title=title or series.name, ylabel=series.unit)
    ax.legend(loc="upper left")
    return ax


def plot_forecasts(
    times, actual, forecasts: Mapping[str, torch.Tensor], ax=None, *, unit="", title=""
):
    """What happened (black) and each method's forecast over the same steps."""
    ax = _axes(ax, (11, 3.6))
    ax.plot(times, np.asarray(actual), color="black", lw=1.6, label="actual")
    for name, values in forecasts.items():
        ax.plot(times, torch.as_tensor(values).double().numpy(), lw=1.0, label=name)
    ax.set(title=title, ylabel=unit)
    ax.legend(ncol=3, fontsize=8, loc="upper left")
    return ax


def plot_error_by_horizon(
    errors: Mapping[str, torch.Tensor],
    ax=None,
    *,
    steps_per_day=None,
    unit="",
    title="RMSE against forecast horizon",
    logy=True,
):
    """Each method's RMSE at horizon h = 1..H (over the walk-forward origins), on a log scale by
    default so that methods ten times apart and methods 10 % apart both show."""
    ax = _axes(ax, (10, 3.6))
    for name, values in errors.items():
        values = torch.as_tensor(values).double().numpy()
        steps = np.arange(1, len(values) + 1)
        x = steps / steps_per_day if steps_per_day else steps
        ax.plot(x, values, lw=1.2, label=name)
    ax.set(
        title=title,
        xlabel="days ahead" if steps_per_day else "steps ahead",
        ylabel=f"RMSE ({unit})" if unit else "RMSE",
    )
    if logy:
        ax.set_yscale("log")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return ax


def cross_correlation(a, b, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """corr(a[t], b[t - lag]) for lag = 0..max_lag: how much ``a`` follows ``b`` ``lag`` steps
    later. a, b: (N,) aligned series. Returns (lags, correlations)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    lags = np.arange(max_lag + 1)
    corr = [np.corrcoef(a[lag:], b[: len(b) - lag])[0, 1] for lag in lags]
    return lags, np.asarray(corr)


def plot_cross_correlation(
    curves: Mapping[str, np.ndarray],
    ax=None,
    *,
    title="Which change does the prediction follow?",
):
    """Each model's predicted change against the true change ``lag`` steps earlier: a peak at
    lag 0 means it forecasts the change to come, at lag 1 that it repeats the last one."""
    ax = _axes(ax, (7, 3.2))
    for name, corr in curves.items():
        ax.plot(np.arange(len(corr)), corr, marker="o", ms=3, label=name)
    ax.axvline(1, color="grey", lw=0.8, ls=":")
    ax.set(
        title=title,
        xlabel="k: the true change k steps before the one predicted",
        ylabel="correlation with the predicted change",
    )
    ax.legend(fontsize=8)
    return ax
