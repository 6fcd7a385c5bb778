"""Checks for lesson 08 (forecasting a time series): windows, the scaler, baselines,
metrics, the model, recursive forecasts and walk-forward evaluation.

Conventions: a series is a 1-D float tensor; windows are X (N, lookback) and Y (N, horizon);
models are batch first, X (B, T, D) -> (Y_hat (B, horizon), state). The checks use series
whose right answers can be worked out by hand (``arange`` windows, seven-value histories) or
stand-in models whose forecasts follow a known recurrence; none holds the exercises' answers.
"""

from rnncourse.checks.series.baselines import (
    check_drift_forecast,
    check_mae_rmse,
    check_mase,
    check_naive_forecast,
    check_seasonal_naive_forecast,
)
from rnncourse.checks.series.model import (
    RecursiveRun,
    RunningMeanModel,
    WalkRun,
    check_beats_persistence,
    check_recursive_forecast,
    check_series_rnn,
    check_walk_forward,
    recursive_problem,
    run_recursive,
    run_walk,
    running_mean_forecast,
    series_rnn_problem,
    walk_problem,
)
from rnncourse.checks.series.windows import (
    check_fit_scaler,
    check_make_windows,
    check_transform_roundtrip,
    scaler_problem,
    windows_problem,
)

__all__ = [
    "RecursiveRun",
    "RunningMeanModel",
    "WalkRun",
    "check_beats_persistence",
    "check_drift_forecast",
    "check_fit_scaler",
    "check_mae_rmse",
    "check_make_windows",
    "check_mase",
    "check_naive_forecast",
    "check_recursive_forecast",
    "check_seasonal_naive_forecast",
    "check_series_rnn",
    "check_transform_roundtrip",
    "check_walk_forward",
    "recursive_problem",
    "run_recursive",
    "run_walk",
    "running_mean_forecast",
    "scaler_problem",
    "series_rnn_problem",
    "walk_problem",
    "windows_problem",
]
