"""Integrity probes for lesson 08 (forecasting a time series): the same properties as its
tests, checked outside the kernel.

Plain functions (windows, scaler, baselines, metrics) run in the sandboxed runner on series
drawn here; the expected values are worked out here from their definitions. ``SeriesRNN`` is
built in the runner and loaded with weights made here, then compared with ``nn.GRU`` /
``nn.LSTM`` and ``nn.Linear`` holding the same weights. ``recursive_forecast`` and
``walk_forward`` are recording runs (``rnncourse.checks.series.run_recursive`` and
``run_walk``) judged here by the rules the notebook's tests use (``recursive_problem``,
``walk_problem``). The one-step model's outcome test reads what the notebook trained and has
no probe.
"""

import math

import numpy as np
import torch
from torch import nn

from rnncourse.checks.series import (
    RecursiveRun,
    WalkRun,
    recursive_problem,
    run_recursive,
    run_walk,
    series_rnn_problem,
    walk_problem,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    case_sizes,
    compare_tensor,
    describe,
    fields_of,
    plain_real,
    record_from,
)

F32 = np.float32


def _series(rng, T, dtype=np.float64):
    """A random walk with a daily-like cycle: values that no off-by-one can reproduce."""
    t = np.arange(T)
    return (np.cumsum(rng.standard_normal(T)) + 3 * np.sin(t / 2.0) + 10).astype(dtype)


def _number(name, got):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if type(got) is not float and type(got) is not int:
        return None, f"{name} returned {describe(got)}; expected a number"
    return float(got), None


def _close(name, got, want, rel=1e-6):
    value, why = _number(name, got)
    if why:
        return why
    if isinstance(want, str):
        return f"{name} returned {value:.6g}; expected it to raise ValueError"
    return (
        None
        if math.isclose(value, want, rel_tol=rel, abs_tol=1e-12)
        else (f"{name} = {value:.6g}; expected {want:.6g}")
    )


# ----------------------------------------------------------------------------- make_windows
WINDOW_SIZES = [
    {"T": 12, "L": 3, "H": 1},
    {"T": 6, "L": 1, "H": 1},  # lookback 1
    {"T": 9, "L": 4, "H": 5},  # exactly one window
    {"T": 20, "L": 5, "H": 4, "dtype": F32},
]


def window_cases(rng):
    cases = []
    for s in case_sizes(rng, WINDOW_SIZES):
        T = max(s["T"], s["L"] + s["H"])
        cases.append({"label": s["label"], "args": [_series(rng, T, s["dtype"]), s["L"], s["H"]]})
    return cases


def window_expected(case):
    series, L, H = case["args"]
    w = as_tensor(series).unfold(0, L + H, 1)
    return w[:, :L], w[:, L:]


def window_compare(got, want, case):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"make_windows returned {describe(got)}; expected a pair (X, Y)"
    return compare_tensor("X", got[0], want[0], exact_dtype=False) or compare_tensor(
        "Y", got[1], want[1], exact_dtype=False
    )


# ----------------------------------------------------------------------------- the scaler
def scaler_cases(rng):
    cases = []
    for T, train_end in ((10, 6), (7, 2), (30, 29)):
        cases.append(
            {"label": f"T = {T}, train_end = {train_end}", "args": [_series(rng, T), train_end]}
        )
    return cases


def fit_twice(ns, function, case):
    """The scaler of the series, and of the series with everything after train_end changed."""
    series, train_end = case["args"]
    first = ns[function](series.clone(), train_end)
    changed = series.clone()
    changed[train_end:] = changed[train_end:] * 100 + 1000
    second = ns[function](changed, train_end)
    return [float(v) for s in (first, second) for v in (s.mean, s.std)]


def scaler_expected(case):
    series, train_end = case["args"]
    train = series[:train_end]
    return float(train.mean()), [float(train.std(ddof=d)) for d in (0, 1)]


def scaler_compare(got, want, case):
    mean, stds = want
    if not isinstance(got, list) or len(got) != 4:
        return f"fit_scaler gave {describe(got)}; expected a Scaler(mean, std)"
    if got[2:] != got[:2]:
        return "changing the values after train_end changed the scaler: read series[:train_end]"
    if not math.isclose(got[0], mean, rel_tol=1e-9, abs_tol=1e-12):
        return f"mean = {got[0]:.6g}; expected the training part's, {mean:.6g}"
    if not any(math.isclose(got[1], s, rel_tol=1e-9) for s in stds if s == s):
        return f"std = {got[1]:.6g}; expected the training part's, {stds[0]:.6g}"
    return None


def scaled(ns, function, case):
    from rnncourse.data.series import Scaler

    x, mean, std = case["args"]
    return ns[function](x, Scaler(mean=mean, std=std))


def scale_cases(rng):
    cases = []
    for shape, dtype in (((5,), np.float64), ((3, 4), np.float64), ((2, 6), F32)):
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        mean, std = float(rng.normal() * 10), float(rng.uniform(0.5, 4))
        label = f"shape {shape}, {np.dtype(dtype).name}"
        cases.append({"label": label, "args": [x, mean, std]})
    return cases


def transform_expected(case):
    x, mean, std = case["args"]
    return (as_tensor(x) - mean) / std


def inverse_expected(case):
    x, mean, std = case["args"]
    return as_tensor(x) * std + mean


def scale_compare(got, want, case):
    return compare_tensor("the result", got, want, exact_dtype=False, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- baselines
def forecast_cases(rng, seasonal=False):
    fixed = [(7, 1, 3), (7, 8, 3), (12, 30, 12), (4, 4, 4), (9, 5, 1), (2, 3, 2)]
    cases = []
    for T, horizon, season in fixed:
        history = _series(rng, T)
        args = [history, horizon, season] if seasonal else [history, horizon]
        words = f"history of {T}, horizon {horizon}" + (f", season {season}" if seasonal else "")
        cases.append({"label": words, "args": args})
    history = _series(rng, 10, F32)
    args = [history, 6, 4] if seasonal else [history, 6]
    cases.append({"label": "history of 10 in float32, horizon 6", "args": args})
    return cases


def naive_expected(case):
    history, horizon = case["args"]
    return as_tensor(history)[-1:].repeat(horizon)


def seasonal_expected(case):
    history, horizon, season = case["args"]
    h = as_tensor(history)
    return h[len(h) - season + torch.arange(horizon) % season]


def drift_expected(case):
    history, horizon = case["args"]
    h = as_tensor(history)
    slope = (h[-1] - h[0]) / (len(h) - 1)
    return h[-1] + torch.arange(1, horizon + 1, dtype=h.dtype) * slope


def forecast_compare(got, want, case):
    return compare_tensor("the forecast", got, want, exact_dtype=False, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- metrics
def metric_cases(rng):
    cases = []
    for shape in ((6,), (3, 5), (1,), (4, 1)):
        y, y_hat = _series(rng, int(np.prod(shape))), _series(rng, int(np.prod(shape)))
        cases.append({"label": f"shape {shape}", "args": [y.reshape(shape), y_hat.reshape(shape)]})
    return cases


def mae_expected(case):
    y, y_hat = case["args"]
    return float(np.abs(y - y_hat).mean())


def rmse_expected(case):
    y, y_hat = case["args"]
    return float(np.sqrt(((y - y_hat) ** 2).mean()))


def metric(ns, function, case):
    """The student's metric, a number of any kind (a numpy float too) as a Python float so
    that it can come back from the runner; anything else as it is."""
    return plain_real(ns[function](*case["args"]))


def metric_compare(got, want, case):
    return _close("the metric", got, want)


def mase_cases(rng):
    cases = []
    for shape, T, season in (((6,), 10, 2), ((3, 4), 20, 7), ((2,), 5, 1), ((3,), 4, 4)):
        n = int(np.prod(shape))
        args = [
            _series(rng, n).reshape(shape),
            _series(rng, n).reshape(shape),
            _series(rng, T),
            season,
        ]
        cases.append({"label": f"shape {shape}, train of {T}, season {season}", "args": args})
    return cases


def mase_or_error(ns, function, case):
    """The student's MASE, or "ValueError" when it raised one (the right answer for a training
    series no longer than the season)."""
    try:
        return plain_real(ns[function](*case["args"]))
    except ValueError:
        return "ValueError"


def mase_expected(case):
    y, y_hat, train, season = case["args"]
    if len(train) <= season:
        return "ValueError"
    return float(np.abs(y - y_hat).mean() / np.abs(train[season:] - train[:-season]).mean())


def mase_compare(got, want, case):
    if got == "ValueError":
        return None if want == "ValueError" else "mase raised ValueError on a valid training series"
    return _close("mase", got, want)


# ----------------------------------------------------------------------------- SeriesRNN
RNN_SIZES = [
    ("gru", 1, 4, 3, 2, 5),  # cell, D, H, horizon, B, T
    ("lstm", 3, 2, 6, 1, 4),
    ("gru", 2, 5, 1, 3, 1),  # T = 1
]


def rnn_cases(rng):
    cases = []
    for cell, D, H, horizon, B, T in RNN_SIZES:
        torch.manual_seed(int(rng.integers(1 << 30)))
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](D, H, batch_first=True).double()
        head = nn.Linear(H, horizon).double()
        weights = {f"rnn.{k}": v.detach().numpy() for k, v in rnn.state_dict().items()}
        weights |= {f"head.{k}": v.detach().numpy() for k, v in head.state_dict().items()}
        X = rng.standard_normal((B, T, D))
        label = f"cell = {cell}, D = {D}, H = {H}, horizon = {horizon}, B = {B}, T = {T}"
        cases.append({"label": label, "args": [cell, [D, H, horizon], weights, X]})
    return cases


def build_and_run(ns, function, case):
    """The student's SeriesRNN with the grader's weights: its outputs on X in one call and in
    two (the state carried), or what is wrong with its layers."""
    cell, sizes, weights, X = case["args"]
    model = ns[function](*sizes, cell).double()
    why = series_rnn_problem(model, cell, tuple(sizes))
    if why:
        return why
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        whole, _ = model(X)
        cut = max(1, X.shape[1] // 2)
        first, state = model(X[:, :cut])
        rest = model(X[:, cut:], state)[0] if cut < X.shape[1] else first
    return [whole, rest]


def rnn_expected(case):
    cell, (D, H, horizon), weights, X = case["args"]
    rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](D, H, batch_first=True).double()
    head = nn.Linear(H, horizon).double()
    rnn.load_state_dict({k[4:]: as_tensor(v) for k, v in weights.items() if k.startswith("rnn.")})
    head.load_state_dict({k[5:]: as_tensor(v) for k, v in weights.items() if k.startswith("head")})
    with torch.no_grad():
        return head(rnn(as_tensor(X))[0][:, -1])


def rnn_compare(got, want, case):
    if isinstance(got, str):
        return got
    if not isinstance(got, list) or len(got) != 2:
        return f"SeriesRNN gave {describe(got)}"
    return compare_tensor("Y_hat", got[0], want, exact_dtype=False) or compare_tensor(
        "Y_hat with the state carried across two calls", got[1], want, exact_dtype=False
    )


# ----------------------------------------------------------------------------- recursive_forecast
def recursive_cases(rng):
    cases = []
    for T, origin, steps, dtype in (
        (9, 5, 3, np.float64),
        (4, 1, 2, np.float64),
        (6, 6, 4, np.float64),
        (12, 7, 5, F32),
    ):
        label = f"origin {origin}, steps {steps}, {np.dtype(dtype).name}"
        cases.append({"label": label, "args": [_series(rng, T, dtype), origin, steps]})
    return cases


def record_recursive(ns, function, case):
    series, origin, steps = case["args"]
    return fields_of(run_recursive(ns[function], series, origin, steps))


def recursive_expected(case):
    return None  # the rule is the expectation


def recursive_compare(got, want, case):
    run = record_from(RecursiveRun, got)
    if run is None:
        return f"recursive_forecast gave {describe(got)}"
    series, origin, steps = case["args"]
    return recursive_problem(run, [float(v) for v in series[:origin]], steps)


# ----------------------------------------------------------------------------- walk_forward
def walk_cases(rng):
    cases = []
    for T, start, end, horizon, stride in (
        (20, 10, 20, 3, 2),
        (15, 5, 15, 1, 1),
        (30, 8, 25, 5, 7),
        (12, 6, 10, 4, 3),
    ):
        label = f"start {start}, end {end}, horizon {horizon}, stride {stride}"
        cases.append({"label": label, "args": [_series(rng, T), start, end, horizon, stride]})
    return cases


def record_walk(ns, function, case):
    return fields_of(run_walk(ns[function], *case["args"]))


def walk_expected(case):
    return None


def walk_compare(got, want, case):
    run = record_from(WalkRun, got)
    if run is None:
        return f"walk_forward gave {describe(got)}"
    series, *rest = case["args"]
    return walk_problem(run, torch.from_numpy(series), *rest)


# answer -> how to probe it (the tests it carries: lesson.toml)
PROBES = {
    "make_windows": Method("call", window_cases, window_expected, window_compare),
    "fit_scaler": Method("fit_twice", scaler_cases, scaler_expected, scaler_compare),
    "transform": Method("scaled", scale_cases, transform_expected, scale_compare),
    "inverse_transform": Method("scaled", scale_cases, inverse_expected, scale_compare),
    "naive_forecast": Method("call", forecast_cases, naive_expected, forecast_compare),
    "seasonal_naive_forecast": Method(
        "call",
        lambda rng: forecast_cases(rng, seasonal=True),
        seasonal_expected,
        forecast_compare,
    ),
    "drift_forecast": Method("call", forecast_cases, drift_expected, forecast_compare),
    "mae": Method("metric", metric_cases, mae_expected, metric_compare),
    "rmse": Method("metric", metric_cases, rmse_expected, metric_compare),
    "mase": Method("mase_or_error", mase_cases, mase_expected, mase_compare),
    "SeriesRNN": Method("build_and_run", rnn_cases, rnn_expected, rnn_compare),
    "recursive_forecast": Method(
        "record_recursive", recursive_cases, recursive_expected, recursive_compare
    ),
    "walk_forward": Method("record_walk", walk_cases, walk_expected, walk_compare),
}
