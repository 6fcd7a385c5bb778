"""Lesson 08's checks: the reference passes every one, and each typical bug fails with its hint."""

import math

import pytest
import torch
from torch import nn

from rnncourse.checks import (
    CheckFailed,
    check_beats_persistence,
    check_drift_forecast,
    check_fit_scaler,
    check_mae_rmse,
    check_make_windows,
    check_mase,
    check_naive_forecast,
    check_recursive_forecast,
    check_seasonal_naive_forecast,
    check_series_rnn,
    check_transform_roundtrip,
    check_walk_forward,
)
from rnncourse.data import Scaler
from tests.course import lesson_functions
from tests.integrity_support import passes_probe, rejection

LESSON = "08_time_series"
ANSWERS = (
    "make_windows",
    "fit_scaler",
    "transform",
    "inverse_transform",
    "naive_forecast",
    "seasonal_naive_forecast",
    "drift_forecast",
    "mae",
    "rmse",
    "mase",
    "SeriesRNN",
    "recursive_forecast",
    "walk_forward",
)


@pytest.fixture(scope="module")
def ref():
    """The reference answers: the setup cell and the answer cells, without the training cells."""
    return lesson_functions(LESSON, *ANSWERS)


def fails(check, *args, match=None, **kwargs):
    """Assert that a check rejects the student object, with ``match`` in its message."""
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_visible_and_hidden_checks(ref):
    check_make_windows(ref["make_windows"])
    check_fit_scaler(ref["fit_scaler"])
    check_transform_roundtrip(ref["transform"], ref["inverse_transform"])
    check_naive_forecast(ref["naive_forecast"])
    check_seasonal_naive_forecast(ref["seasonal_naive_forecast"])
    check_drift_forecast(ref["drift_forecast"])
    check_mae_rmse(ref["mae"], ref["rmse"])
    check_mase(ref["mase"])
    check_series_rnn(ref["SeriesRNN"])
    check_recursive_forecast(ref["recursive_forecast"])
    check_walk_forward(ref["walk_forward"])
    for function in ANSWERS:
        passes_probe(LESSON, function, ref[function])


@pytest.mark.parametrize(
    "check, args",
    [
        (check_make_windows, ()),
        (check_fit_scaler, ()),
        (check_transform_roundtrip, (lambda z, s: z,)),
        (check_naive_forecast, ()),
        (check_seasonal_naive_forecast, ()),
        (check_drift_forecast, ()),
        (check_mae_rmse, (lambda y, p: 0.0,)),
        (check_mase, ()),
        (check_series_rnn, ()),
        (check_recursive_forecast, ()),
        (check_walk_forward, ()),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_stub_fails_with_a_clear_message(check, args):
    fails(check, not_implemented, *args, match="not implemented yet")


# ----------------------------------------------------------------------------- make_windows
def windows(series, lookback, horizon, *, n_less=0, target_shift=0, stride=1):
    """Windows with switches for typical bugs (defaults: the right ones)."""
    N = len(series) - lookback - horizon + 1 - n_less
    starts = range(0, N * stride, stride)
    X = torch.stack([series[i : i + lookback] for i in starts])
    first = lookback + target_shift
    Y = torch.stack([series[i + first : i + first + horizon] for i in starts])
    return X, Y


def test_the_switchable_windows_default_to_the_right_ones():
    check_make_windows(windows)


WINDOW_BUGS = {
    "missing the last window": (
        lambda s, L, H: windows(s, L, H, n_less=1),
        "the last window, whose targets end on the series' last value, is missing",
    ),
    "first target inside the window": (
        lambda s, L, H: windows(s, L, H, target_shift=-1),
        "the first target is the window's own last input",
    ),
    "stride of the horizon": (
        lambda s, L, H: tuple(w[::H] for w in windows(s, L, H)),
        r"the last window|expected N|should start at series\[i\]",
    ),
    "X and Y swapped": (
        lambda s, L, H: windows(s, L, H)[::-1],
        r"X has shape \(\d+, \d+\); expected \(N, lookback\)",
    ),
    "X only": (lambda s, L, H: windows(s, L, H)[0], "should return a pair"),
    "a list of windows": (
        lambda s, L, H: (windows(s, L, H)[0].tolist(), windows(s, L, H)[1]),
        "X should be a tensor; got list",
    ),
}


@pytest.mark.parametrize("name", WINDOW_BUGS)
def test_make_windows_check_catches(name):
    fn, hint = WINDOW_BUGS[name]
    fails(check_make_windows, fn, match=hint)


def test_the_graders_windows_probe_rejects_them_too():
    rejection(LESSON, "make_windows", WINDOW_BUGS["missing the last window"][0], "X has shape")
    rejection(LESSON, "make_windows", WINDOW_BUGS["first target inside the window"][0], "Y: ")


# ----------------------------------------------------------------------------- the scaler
def scaler_of(values, correction=0):
    return Scaler(mean=values.mean().item(), std=values.std(correction=correction).item())


SCALER_BUGS = {
    "fitted on the whole series": (lambda s, e: scaler_of(s), "whole series' mean"),
    "one value too many": (
        lambda s, e: scaler_of(s[: e + 1]),
        "mean = .*; expected the training part's",
    ),
    "the variance for the std": (
        lambda s, e: Scaler(s[:e].mean().item(), s[:e].var(correction=0).item()),
        "expected the training part's standard deviation",
    ),
    "std of the whole series": (
        lambda s, e: Scaler(s[:e].mean().item(), s.std().item()),
        "Bessel's correction",
    ),
    "a plain pair": (
        lambda s, e: (s[:e].mean().item(), s[:e].std().item()),
        r"should return a Scaler\(mean, std\); got tuple",
    ),
    "None": (lambda s, e: Scaler(None, None), "mean should be a number; got NoneType"),
}


@pytest.mark.parametrize("name", SCALER_BUGS)
def test_fit_scaler_check_catches(name):
    fn, hint = SCALER_BUGS[name]
    fails(check_fit_scaler, fn, match=hint)


def test_the_scaler_check_catches_a_peek_at_the_test_part():
    """Right statistics on the check's series, but changed by the values after train_end."""

    def peeks(series, train_end):  # a leak too small for the first comparison to see
        right = scaler_of(series[:train_end])
        return right._replace(mean=right.mean + 1e-12 * series[train_end:].sum().item())

    fails(check_fit_scaler, peeks, match="changing the values after train_end changed")
    rejection(LESSON, "fit_scaler", peeks, "changing the values after train_end changed")


def test_the_graders_scaler_probe_rejects_the_whole_series():
    whole = SCALER_BUGS["fitted on the whole series"][0]
    rejection(LESSON, "fit_scaler", whole, "changing the values after train_end changed")


# ----------------------------------------------------------------------------- transform
def transform(x, s):
    return (x - s.mean) / s.std


def inverse(z, s):
    return z * s.std + s.mean


TRANSFORM_BUGS = {
    "divide, then subtract": (
        lambda x, s: x / s.std - s.mean,
        inverse,
        "Subtract the mean first, then divide",
    ),
    "multiply by std": (lambda x, s: (x - s.mean) * s.std, inverse, "Divide by std; do not"),
    "inverse adds, then multiplies": (
        transform,
        lambda z, s: (z + s.mean) * s.std,
        "Multiply by std first, then add the mean",
    ),
    "inverse is the transform again": (
        transform,
        transform,
        r"inverse_transform\(transform\(x\)\) = .*; expected x",
    ),
    "transform flattens": (lambda x, s: transform(x, s).reshape(-1), inverse, "has shape"),
    "transform returns a list": (
        lambda x, s: transform(x, s).tolist(),
        inverse,
        "should be a torch.Tensor; got list",
    ),
}


@pytest.mark.parametrize("name", TRANSFORM_BUGS)
def test_transform_check_catches(name):
    fn, inv, hint = TRANSFORM_BUGS[name]
    fails(check_transform_roundtrip, fn, inv, match=hint)


def test_the_graders_transform_probes_reject_the_swapped_orders():
    rejection(LESSON, "transform", TRANSFORM_BUGS["divide, then subtract"][0], "largest diff")
    rejection(
        LESSON, "inverse_transform", TRANSFORM_BUGS["inverse adds, then multiplies"][1], "largest"
    )


# ----------------------------------------------------------------------------- baselines
NAIVE_BUGS = {
    "the first value": (lambda h, H: h[0].repeat(H), r"Every step repeats history\[-1\]"),
    "a scalar": (lambda h, H: h[-1], r"has shape \(\); expected \(horizon,\) = \(1,\)"),
    "the last H values": (lambda h, H: h[-H:], r"Every step repeats history\[-1\]"),
}


@pytest.mark.parametrize("name", NAIVE_BUGS)
def test_naive_check_catches(name):
    fn, hint = NAIVE_BUGS[name]
    fails(check_naive_forecast, fn, match=hint)


SEASONAL_BUGS = {
    "no wrap past one season": (
        lambda h, H, m: torch.stack([h[-m + k] for k in range(H)]),
        "past one season, the last season starts again",
    ),
    "cut at one season": (
        lambda h, H, m: h[-m:][:H],
        r"has shape \(3,\); expected \(horizon,\) = \(7,\)",
    ),
    "one step late": (
        lambda h, H, m: h[-m - 1 : -1].repeat(H)[:H],
        r"Step h \(from 0\) repeats history\[len\(history\) - season \+ h % season\]",
    ),
    "the first season": (
        lambda h, H, m: h[:m].repeat(H)[:H],
        r"expected \[8.0, 3.0, 7.0\]",
    ),
}


@pytest.mark.parametrize("name", SEASONAL_BUGS)
def test_seasonal_naive_check_catches(name):
    fn, hint = SEASONAL_BUGS[name]
    fails(check_seasonal_naive_forecast, fn, match=hint)


def drift(history, horizon, *, denominator=None, first_step=1):
    n = len(history) - 1 if denominator is None else denominator(history)
    slope = (history[-1] - history[0]) / n
    return history[-1] + torch.arange(first_step, first_step + horizon).to(history) * slope


DRIFT_BUGS = {
    "divided by T": (
        lambda h, H: drift(h, H, denominator=len),
        r"history\[-1\] \+ h \* \(history\[-1\] - history\[0\]\) / \(T - 1\)",
    ),
    "steps from 0": (lambda h, H: drift(h, H, first_step=0), "the line through the first and"),
    "slope from the last two values": (
        lambda h, H: h[-1] + torch.arange(1, H + 1).to(h) * (h[-1] - h[-2]),
        "continued",
    ),
}


def test_the_switchable_drift_defaults_to_the_right_one():
    check_drift_forecast(drift)


@pytest.mark.parametrize("name", DRIFT_BUGS)
def test_drift_check_catches(name):
    fn, hint = DRIFT_BUGS[name]
    fails(check_drift_forecast, fn, match=hint)


def test_the_graders_baseline_probes_reject_them_too():
    rejection(LESSON, "naive_forecast", NAIVE_BUGS["the first value"][0], "largest difference")
    no_wrap = SEASONAL_BUGS["no wrap past one season"][0]
    rejection(LESSON, "seasonal_naive_forecast", no_wrap, "horizon 8, season 3")
    rejection(LESSON, "drift_forecast", DRIFT_BUGS["divided by T"][0], "largest difference")


# ----------------------------------------------------------------------------- metrics
def mae(y, p):
    return (y - p).abs().mean().item()


def rmse(y, p):
    return (y - p).pow(2).mean().sqrt().item()


METRIC_BUGS = {
    "mae without abs": (
        lambda y, p: (y - p).mean().item(),
        rmse,
        "the sign of an error must not cancel",
    ),
    "mae as a sum": (lambda y, p: (y - p).abs().sum().item(), rmse, r"mae\(y, y_hat\) = 7"),
    "rmse as the mean of per-row roots": (
        mae,
        lambda y, p: (y - p).pow(2).mean(-1).sqrt().mean().item(),
        "not the mean of per-row roots",
    ),
    "rmse without the root": (
        mae,
        lambda y, p: (y - p).pow(2).mean().item(),
        "the square root of the mean squared error",
    ),
    "rmse as the root of the mean absolute error": (
        mae,
        lambda y, p: math.sqrt(mae(y, p)),
        r"rmse\(y, y_hat\) = 1.32288",
    ),
    "mae per row": (lambda y, p: (y - p).abs().mean(-1), rmse, "mae should be a number"),
    "rmse in a list": (mae, lambda y, p: [rmse(y, p)], "rmse should be a number; got list"),
}


@pytest.mark.parametrize("name", METRIC_BUGS)
def test_mae_rmse_check_catches(name):
    mae_fn, rmse_fn, hint = METRIC_BUGS[name]
    fails(check_mae_rmse, mae_fn, rmse_fn, match=hint)


def test_the_metrics_check_needs_1d_inputs_right():
    def mae_2d_only(y, p):
        return ((y - p).abs().sum() / (y.shape[0] * y.shape[-1])).item()

    fails(check_mae_rmse, mae_2d_only, rmse, match="mae is wrong on 1-D inputs")


def test_the_graders_metric_probes_reject_them_too():
    rejection(LESSON, "mae", METRIC_BUGS["mae without abs"][0], "the metric = ")
    per_row = METRIC_BUGS["rmse as the mean of per-row roots"][1]
    rejection(LESSON, "rmse", per_row, r"case shape \(3, 5\): the metric = ")


def mase(y, p, train, season, *, lag=None, count=None, check_length=True, scale_on=None):
    """MASE with switches for typical bugs (defaults: the right one)."""
    if check_length and len(train) <= season:
        raise ValueError("too short")
    lag = season if lag is None else lag
    data = train if scale_on is None else scale_on(y, p)
    diffs = (data[lag:] - data[:-lag]).abs()
    n = len(diffs) if count is None else count(data)
    return mae(y, p) / (diffs.sum() / n).item()  # no differences: NaN, no error


def test_the_switchable_mase_defaults_to_the_right_one():
    check_mase(mase)


def _zero_division(y, p, train, season):
    scale = [abs(train[s] - train[s - season]) for s in range(season, len(train))]
    return mae(y, p) / (sum(scale) / len(scale)).item()


MASE_BUGS = {
    "season 1 differences": (
        lambda y, p, t, m: mase(y, p, t, m, lag=1),
        "that scale uses one-step differences",
    ),
    "divided by len(train)": (
        lambda y, p, t, m: mase(y, p, t, m, count=len),
        r"not len\(train\)",
    ),
    "the MAE only": (lambda y, p, t, m: mae(y, p), "divide the MAE by the in-sample"),
    "scaled on the test values": (
        lambda y, p, t, m: mase(y, p, t, m, scale_on=lambda y, p: p.reshape(-1)),
        "computed on the training series, not on the test values",
    ),
    "no ValueError": (
        lambda y, p, t, m: mase(y, p, t, m, check_length=False),
        "has no seasonal difference to scale by: raise ValueError",
    ),
    "ZeroDivisionError": (_zero_division, "raised ZeroDivisionError; expected ValueError"),
    "None": (lambda y, p, t, m: None, "mase should be a number; got NoneType"),
}


@pytest.mark.parametrize("name", MASE_BUGS)
def test_mase_check_catches(name):
    fn, hint = MASE_BUGS[name]
    fails(check_mase, fn, match=hint)


def test_the_graders_mase_probe_rejects_them_too():
    rejection(LESSON, "mase", MASE_BUGS["season 1 differences"][0], "mase = ")
    rejection(LESSON, "mase", MASE_BUGS["divided by len(train)"][0], "mase = ")
    rejection(LESSON, "mase", MASE_BUGS["no ValueError"][0], "expected it to raise ValueError")
    rejection(LESSON, "mase", _zero_division, "ZeroDivisionError")


# ----------------------------------------------------------------------------- SeriesRNN
class Model(nn.Module):
    """SeriesRNN with switches for typical bugs (defaults: the right one)."""

    def __init__(self, input_size, num_hiddens, horizon, cell="gru", *, bug=None):
        super().__init__()
        kind = nn.GRU if bug == "always a GRU" else {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = kind(input_size, num_hiddens, batch_first=bug != "time major")
        self.head = nn.Linear(num_hiddens, horizon)
        self.bug = bug

    def forward(self, X, state=None):
        given = state
        if self.bug == "ignores the state":
            state = None
        H_all, state = self.rnn(X, state)
        if self.bug == "head on every step":
            return self.head(H_all), state
        if self.bug == "the first step":
            return self.head(H_all[:, 0]), state
        if self.bug == "returns the given state":
            return self.head(H_all[:, -1]), given
        if self.bug == "Y_hat only":
            return self.head(H_all[:, -1])
        return self.head(H_all[:, -1]), state


def model_with(bug):
    def build(*args):
        return Model(*args, bug=bug)

    return build


def test_the_switchable_model_defaults_to_the_right_one():
    check_series_rnn(model_with(None))


class NamedFc(Model):
    def __init__(self, input_size, num_hiddens, horizon, cell="gru"):
        super().__init__(input_size, num_hiddens, horizon, cell)
        self.fc = self.head
        del self.head

    def forward(self, X, state=None):
        H_all, state = self.rnn(X, state)
        return self.fc(H_all[:, -1]), state


class HeadOnCellState(Model):
    """An LSTM's head on c_n: right for a GRU, whose state is h_n."""

    def forward(self, X, state=None):
        H_all, state = self.rnn(X, state)
        last = state[1][-1] if isinstance(state, tuple) else H_all[:, -1]
        return self.head(last), state


MODEL_BUGS = {
    "head on every step": (model_with("head on every step"), "The head reads the last step only"),
    "ignores the state": (
        model_with("ignores the state"),
        "pass the given state to the encoder",
    ),
    "returns the given state": (
        model_with("returns the given state"),
        "return the encoder's new state",
    ),
    "the first step": (model_with("the first step"), r"apply model.head to H_all\[:, -1\]"),
    "time major": (model_with("time major"), "batch_first=True"),
    "always a GRU": (model_with("always a GRU"), "model.rnn should be an nn.LSTM for cell='lstm'"),
    "Y_hat only": (model_with("Y_hat only"), r"should return a pair \(Y_hat, state\)"),
    "the head named fc": (NamedFc, r"model.head should be nn.Linear\(5, 4\)"),
    "the head on c_n": (HeadOnCellState, "Y_hat is not head"),
}


@pytest.mark.parametrize("name", MODEL_BUGS)
def test_series_rnn_check_catches(name):
    fn, hint = MODEL_BUGS[name]
    fails(check_series_rnn, fn, match=hint)


def test_the_graders_model_probe_rejects_them_too():
    rejection(LESSON, "SeriesRNN", MODEL_BUGS["head on every step"][0], "Y_hat has shape")
    rejection(LESSON, "SeriesRNN", MODEL_BUGS["ignores the state"][0], "the state carried")
    rejection(LESSON, "SeriesRNN", HeadOnCellState, "cell = lstm.*Y_hat: largest difference")


# ----------------------------------------------------------------------------- recursive_forecast
def recursive(model, series, origin, steps, *, bug=None):
    """recursive_forecast with switches for typical bugs (defaults: the right one)."""
    out = []
    with torch.no_grad():
        y_hat, state = model(series[:origin].reshape(1, -1, 1))
        for k in range(steps):
            out.append(y_hat.reshape(()))
            if bug == "ground truth":
                x = series[origin + k].reshape(1, 1, 1)
            elif bug == "the last known value":
                x = series[origin - 1].reshape(1, 1, 1)
            else:
                x = y_hat.reshape(1, 1, 1)
            if bug == "history again with the state":
                x = torch.cat([series[:origin], torch.stack(out)]).reshape(1, -1, 1)
            if bug == "a sliding window":
                window = torch.cat([series[:origin], torch.stack(out)])[-origin:]
                y_hat, state = model(window.reshape(1, -1, 1))
            else:
                y_hat, state = model(x, state)
    if bug == "one too many":
        out.append(y_hat.reshape(()))
    return torch.stack(out)


def recursive_one_step_late(model, series, origin, steps):
    """Feeds each prediction back before keeping it: the first forecast is lost."""
    out = []
    with torch.no_grad():
        y_hat, state = model(series[:origin].reshape(1, -1, 1))
        for _ in range(steps):
            y_hat, state = model(y_hat.reshape(1, 1, 1), state)
            out.append(y_hat.reshape(()))
    return torch.stack(out)


def recursive_with(bug):
    def forecast(model, series, origin, steps):
        return recursive(model, series, origin, steps, bug=bug)

    return forecast


def test_the_switchable_recursive_forecast_defaults_to_the_right_one():
    check_recursive_forecast(recursive)


RECURSIVE_BUGS = {
    "ground truth": (
        recursive_with("ground truth"),
        "it fed the model a value after the origin",
    ),
    "history again with the state": (
        recursive_with("history again with the state"),
        "the model read some values twice",
    ),
    "a sliding window": (recursive_with("a sliding window"), "read some values twice"),
    "the last known value": (
        recursive_with("the last known value"),
        "then feed each prediction back as the next input",
    ),
    "one step late": (recursive_one_step_late, "the forecast differs from the model's"),
    "one too many": (recursive_with("one too many"), "4 values; expected steps = 3"),
    "a list": (
        lambda *args: recursive(*args).tolist(),
        "should return a tensor; got list",
    ),
}


@pytest.mark.parametrize("name", RECURSIVE_BUGS)
def test_recursive_forecast_check_catches(name):
    fn, hint = RECURSIVE_BUGS[name]
    fails(check_recursive_forecast, fn, match=hint)


def test_the_graders_recursive_probe_rejects_them_too():
    names = (
        "ground truth",
        "history again with the state",
        "the last known value",
        "one step late",
    )
    for name in names:
        fn, hint = RECURSIVE_BUGS[name]
        rejection(LESSON, "recursive_forecast", fn, hint)


# ----------------------------------------------------------------------------- walk_forward
def walk(forecaster, series, start, end, horizon, stride, *, last=1, seen=0):
    origins = list(range(start, end - horizon + last, stride))
    forecasts = [forecaster(series[: o + seen], horizon) for o in origins]
    return origins, torch.stack(forecasts)


def test_the_switchable_walk_defaults_to_the_right_one():
    check_walk_forward(walk)


WALK_BUGS = {
    "missing the last origin": (
        lambda *a: walk(*a, last=0),
        "the last origin, whose forecast ends exactly at end, is missing",
    ),
    "shows series[origin]": (
        lambda *a: walk(*a, seen=1),
        r"the forecaster saw series\[origin\], the first value it must forecast",
    ),
    "runs past end": (lambda *a: walk(*a, last=a[4]), "a forecast from that origin runs past end"),
    "the whole series": (
        lambda f, s, *rest: walk(f, s, *rest, seen=len(s)),
        "the forecaster was given histories of lengths",
    ),
    "forecasts in reverse": (
        lambda *a: (lambda origins, forecasts: (origins, forecasts.flip(0)))(*walk(*a)),
        r"forecasts\[i\] should be the forecaster's output from origins\[i\]",
    ),
    "forecasts only": (lambda *a: walk(*a)[1], r"should return a pair \(origins, forecasts\)"),
}


@pytest.mark.parametrize("name", WALK_BUGS)
def test_walk_forward_check_catches(name):
    fn, hint = WALK_BUGS[name]
    fails(check_walk_forward, fn, match=hint)


def test_the_graders_walk_probe_rejects_them_too():
    for name in ("missing the last origin", "shows series[origin]", "runs past end"):
        fn, hint = WALK_BUGS[name]
        rejection(LESSON, "walk_forward", fn, hint)


# ----------------------------------------------------------------------------- beats persistence
FREQUENCY = 2 * math.pi / 48  # a daily cycle of half-hours


def sine_windows(lookback=12, n=200):
    """One-step windows of a pure sine, whose next value is 2 cos(w) y_t - y_(t-1)."""
    series = torch.sin(FREQUENCY * torch.arange(n + lookback, dtype=torch.float64)).float()
    windows = series.unfold(0, lookback + 1, 1)
    return windows[:, :lookback], windows[:, lookback:]


class Oracle(nn.Module):
    """Predicts the sine's next value exactly, from the last two inputs."""

    def __init__(self, lag=0):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))
        self.lag = lag

    def forward(self, X, state=None):
        x = X[..., 0]
        if self.lag:  # a lagged copy: the last value, repeated
            return x[:, -1:], state
        return 2 * math.cos(FREQUENCY) * x[:, -1:] - x[:, -2:-1], state


def test_beats_persistence_passes_a_model_that_predicts_the_truth(capsys):
    check_beats_persistence(Oracle(), *sine_windows())
    assert "(0.00 x)" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["untrained", "lagged copy"])
def test_beats_persistence_fails_a_model_that_has_not_learned(ref, model):
    if model == "untrained":
        torch.manual_seed(0)
        model = ref["SeriesRNN"](1, 8, 1)
    else:
        model = Oracle(lag=1)
    fails(check_beats_persistence, model, *sine_windows(), match="Did training run")
