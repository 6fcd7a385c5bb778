"""Lesson 08: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import math
import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
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
from tests.course import by_name
from tests.integrity_support import passes_probe

LESSON = "08_time_series"


# ----------------------------------------------------------------------------- make_windows
def windows_loop(series, lookback, horizon):
    """One slice pair per window, stacked."""
    xs, ys = [], []
    for i in range(len(series) - lookback - horizon + 1):
        xs.append(series[i : i + lookback])
        ys.append(series[i + lookback : i + lookback + horizon])
    return torch.stack(xs), torch.stack(ys)


def windows_index_grid(series, lookback, horizon):
    """An (N, L + H) grid of indices, then one gather."""
    N = series.shape[0] - lookback - horizon + 1
    idx = torch.arange(N)[:, None] + torch.arange(lookback + horizon)[None, :]
    grid = series[idx]
    return grid[:, :lookback], grid[:, lookback:]


def windows_two_unfolds(series, lookback, horizon):
    """Inputs and targets unfolded separately, each cut to the N windows."""
    N = len(series) - lookback - horizon + 1
    X = series[: N + lookback - 1].unfold(0, lookback, 1)
    Y = series[lookback:].unfold(0, horizon, 1)
    return X[:N].clone(), Y[:N].clone()


def windows_as_strided(series, lookback, horizon):
    """A strided view, made contiguous."""
    s = series.contiguous()
    N = s.numel() - lookback - horizon + 1
    both = s.as_strided((N, lookback + horizon), (1, 1)).clone()
    return both[:, :lookback], both[:, lookback:]


WINDOWS = [windows_loop, windows_index_grid, windows_two_unfolds, windows_as_strided]


# ----------------------------------------------------------------------------- fit_scaler
def fit_scaler_bessel(series, train_end):
    """torch.std's default: Bessel's correction (the checks accept both)."""
    train = series[:train_end]
    return Scaler(float(train.mean()), float(train.std()))


def fit_scaler_numpy(series, train_end):
    """numpy floats for mean and std."""
    train = series[:train_end].numpy()
    return Scaler(mean=np.mean(train), std=np.std(train))


def fit_scaler_loop(series, train_end):
    """Sums over the training values, by hand."""
    values = [float(v) for v in series[:train_end]]
    mean = math.fsum(values) / len(values)
    variance = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return Scaler(mean=mean, std=math.sqrt(variance))


def fit_scaler_var_mean(series, train_end):
    """torch.var_mean, 0-d tensors in the Scaler."""
    var, mean = torch.var_mean(series[:train_end], correction=0)
    return Scaler(mean=mean, std=var.sqrt())


FIT_SCALERS = [fit_scaler_bessel, fit_scaler_numpy, fit_scaler_loop, fit_scaler_var_mean]


# ----------------------------------------------------------------------------- transform
def transform_unpacked(x, scaler):
    mean, std = scaler
    return (x - mean) / std


def transform_methods(x, scaler):
    return x.sub(scaler.mean).div(scaler.std)


def transform_indexed(x, scaler):
    """The namedtuple by position; multiply by the reciprocal."""
    return (x - scaler[0]) * (1.0 / scaler[1])


TRANSFORMS = [transform_unpacked, transform_methods, transform_indexed]


# ----------------------------------------------------------------------------- inverse_transform
def inverse_unpacked(z, scaler):
    mean, std = scaler
    return mean + std * z


def inverse_addcmul(z, scaler):
    return torch.full_like(z, scaler.mean).addcmul(z, torch.full_like(z, scaler.std))


def inverse_methods(z, scaler):
    return z.mul(scaler[1]).add(scaler[0])


INVERSES = [inverse_unpacked, inverse_addcmul, inverse_methods]


# ----------------------------------------------------------------------------- naive_forecast
def naive_full(history, horizon):
    return torch.full((horizon,), history[-1].item(), dtype=history.dtype)


def naive_expand(history, horizon):
    return history[-1:].expand(horizon).clone()


def naive_list(history, horizon):
    """A list of the last value, as a tensor."""
    return torch.tensor([history[len(history) - 1].item()] * horizon, dtype=history.dtype)


def naive_ones(history, horizon):
    return torch.ones(horizon, dtype=history.dtype) * history[-1]


NAIVES = [naive_full, naive_expand, naive_list, naive_ones]


# ----------------------------------------------------------------------------- seasonal naive
def seasonal_loop(history, horizon, season):
    t = len(history)
    return torch.stack([history[t - season + h % season] for h in range(horizon)])


def seasonal_repeat(history, horizon, season):
    """The last season repeated enough times, cut to the horizon."""
    repeats = -(-horizon // season)  # ceil
    return history[-season:].repeat(repeats)[:horizon]


def seasonal_concatenated(history, horizon, season):
    """The last season again and again, a while loop."""
    last = history[len(history) - season :]
    out = last
    while len(out) < horizon:
        out = torch.cat([out, last])
    return out[:horizon].clone()


def seasonal_numpy(history, horizon, season):
    h = history.numpy()
    steps = np.arange(horizon)
    return torch.from_numpy(h[len(h) - season + steps % season].copy())


SEASONALS = [seasonal_loop, seasonal_repeat, seasonal_concatenated, seasonal_numpy]


# ----------------------------------------------------------------------------- drift_forecast
def drift_loop(history, horizon):
    first, last = history[0].item(), history[-1].item()
    slope = (last - first) / (len(history) - 1)
    return torch.tensor([last + h * slope for h in range(1, horizon + 1)], dtype=history.dtype)


def drift_linspace(history, horizon):
    """The line at steps 1..H, by linspace."""
    slope = (history[-1] - history[0]) / (history.numel() - 1)
    return history[-1] + slope * torch.linspace(1, horizon, horizon, dtype=history.dtype)


def drift_cumsum(history, horizon):
    """The average step, added up."""
    step = (history[-1] - history[0]) / (len(history) - 1)
    return history[-1] + step.repeat(horizon).cumsum(0)


DRIFTS = [drift_loop, drift_linspace, drift_cumsum]


# ----------------------------------------------------------------------------- mae
def mae_numpy(y_true, y_pred):
    """A numpy float."""
    return np.mean(np.abs(y_true.numpy() - y_pred.numpy()))


def mae_tensor(y_true, y_pred):
    """A 0-d tensor."""
    return F.l1_loss(y_pred, y_true)


def mae_loop(y_true, y_pred):
    pairs = zip(y_true.flatten().tolist(), y_pred.flatten().tolist(), strict=True)
    errors = [abs(a - b) for a, b in pairs]
    return sum(errors) / len(errors)


MAES = [mae_numpy, mae_tensor, mae_loop]


# ----------------------------------------------------------------------------- rmse
def rmse_mse_loss(y_true, y_pred):
    return math.sqrt(F.mse_loss(y_pred, y_true).item())


def rmse_norm(y_true, y_pred):
    """The vector norm of the errors over the root of their count, a 0-d tensor."""
    e = (y_true - y_pred).reshape(-1)
    return torch.linalg.vector_norm(e) / math.sqrt(e.numel())


def rmse_numpy(y_true, y_pred):
    return np.sqrt(np.mean(np.square(y_true.numpy() - y_pred.numpy())))


RMSES = [rmse_mse_loss, rmse_norm, rmse_numpy]


# ----------------------------------------------------------------------------- mase
def mase_loop(y_true, y_pred, train, season):
    """statistics.fmean of nothing raises StatisticsError, a ValueError."""
    t = train.tolist()
    scale = statistics.fmean(abs(t[s] - t[s - season]) for s in range(season, len(t)))
    pairs = zip(y_true.flatten().tolist(), y_pred.flatten().tolist(), strict=True)
    error = statistics.fmean(abs(a - b) for a, b in pairs)
    return error / scale


def mase_numpy(y_true, y_pred, train, season):
    if train.shape[0] - season < 1:
        raise ValueError("the training series must be longer than one season")
    train = train.numpy()
    scale = np.abs(train[season:] - train[:-season]).mean()
    return np.abs(y_true.numpy() - y_pred.numpy()).mean() / scale


def mase_tensor(y_true, y_pred, train, season):
    """A 0-d tensor; the seasonal differences by unfold."""
    if len(train) <= season:
        raise ValueError(f"need more than {season} training values")
    pairs = train.unfold(0, season + 1, 1)  # (t - season, season + 1)
    scale = (pairs[:, -1] - pairs[:, 0]).abs().mean()
    return F.l1_loss(y_pred, y_true) / scale


MASES = [mase_loop, mase_numpy, mase_tensor]


# ----------------------------------------------------------------------------- SeriesRNN
class SeriesRNNFinalState(nn.Module):
    """if/else for the cell; the head reads the final state h_n (the same, one layer)."""

    def __init__(self, input_size, num_hiddens, horizon, cell="gru"):
        super().__init__()
        if cell == "lstm":
            self.rnn = nn.LSTM(input_size, num_hiddens, batch_first=True)
        else:
            self.rnn = nn.GRU(input_size, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, horizon)

    def forward(self, X, state=None):
        _, state = self.rnn(X, state)
        h_n = state[0] if isinstance(state, tuple) else state  # (1, B, H)
        return self.head(h_n[-1]), state


class SeriesRNNGetattr(nn.Module):
    """getattr(nn, cell.upper()); the state passed only when there is one; select()."""

    def __init__(self, input_size, num_hiddens, horizon, cell="gru"):
        super().__init__()
        self.rnn = getattr(nn, cell.upper())(
            input_size=input_size, hidden_size=num_hiddens, batch_first=True
        )
        self.head = nn.Linear(in_features=num_hiddens, out_features=horizon)

    def forward(self, X, state=None):
        outputs, new_state = self.rnn(X) if state is None else self.rnn(X, state)
        return self.head(outputs.select(1, -1)), new_state


class SeriesRNNFLinear(nn.Module):
    """A dict of cells; F.linear with the head's weights, on the last step kept as (B, 1, H)."""

    CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, input_size, num_hiddens, horizon, cell="gru"):
        super().__init__()
        self.rnn = self.CELLS[cell](input_size, num_hiddens, 1, batch_first=True)
        self.head = nn.Linear(num_hiddens, horizon)

    def forward(self, X, state=None):
        H_all, state = self.rnn(X, state)
        last = H_all[:, -1:, :]  # (B, 1, H)
        return F.linear(last, self.head.weight, self.head.bias).squeeze(1), state


SERIES_RNNS = [SeriesRNNFinalState, SeriesRNNGetattr, SeriesRNNFLinear]


# ----------------------------------------------------------------------------- recursive_forecast
def recursive_cat(model, series, origin, steps):
    """Predictions collected with torch.cat; the model's device from its parameters."""
    device = next(model.parameters()).device
    model.eval()
    x = series[:origin].to(device).view(1, origin, 1)
    state, out = None, []
    with torch.no_grad():
        for _ in range(steps):
            y_hat, state = model(x, state)
            out.append(y_hat.reshape(1))
            x = y_hat.reshape(1, 1, 1)
    return torch.cat(out)


def recursive_whole_history(model, series, origin, steps):
    """No state: the whole history and the predictions so far read again at every step."""
    known = series[:origin].clone()
    predictions = []
    with torch.no_grad():
        for _ in range(steps):
            y_hat, _ = model(known[None, :, None])
            predictions.append(y_hat[0, 0])
            known = torch.cat([known, y_hat[0]])
    return torch.stack(predictions)


def recursive_floats(model, series, origin, steps):
    """Python floats collected, one tensor at the end; inference mode."""
    values = []
    with torch.inference_mode():
        y_hat, state = model(series[:origin].unsqueeze(0).unsqueeze(-1), None)
        while len(values) < steps:
            values.append(y_hat.item())
            y_hat, state = model(torch.tensor([[[values[-1]]]], dtype=series.dtype), state)
    return torch.tensor(values, dtype=series.dtype)


RECURSIVES = [recursive_cat, recursive_whole_history, recursive_floats]


# ----------------------------------------------------------------------------- walk_forward
def walk_while(forecaster, series, start, end, horizon, stride):
    origins, forecasts = [], []
    origin = start
    while origin + horizon <= end:
        origins.append(origin)
        forecasts.append(forecaster(series[:origin], horizon))
        origin += stride
    return origins, torch.stack(forecasts)


def walk_preallocated(forecaster, series, start, end, horizon, stride):
    """The number of origins worked out first; forecasts written into one tensor."""
    n = (end - horizon - start) // stride + 1
    origins = [start + i * stride for i in range(n)]
    forecasts = torch.empty(n, horizon, dtype=series.dtype)
    for i, o in enumerate(origins):
        forecasts[i] = forecaster(series[:o].clone(), horizon)
    return origins, forecasts


def walk_vstack(forecaster, series, start, end, horizon, stride):
    """Origins filtered from a range up to end; the forecasts stacked row by row."""
    origins = [o for o in range(start, end, stride) if o + horizon <= end]
    rows = [forecaster(series[:o], horizon).reshape(1, -1) for o in origins]
    return origins, torch.vstack(rows)


WALKS = [walk_while, walk_preallocated, walk_vstack]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", WINDOWS, ids=by_name)
def test_make_windows_alternatives_pass(answer):
    check_make_windows(answer)
    passes_probe(LESSON, "make_windows", answer)


@pytest.mark.parametrize("answer", FIT_SCALERS, ids=by_name)
def test_fit_scaler_alternatives_pass(answer):
    check_fit_scaler(answer)
    passes_probe(LESSON, "fit_scaler", answer)


@pytest.mark.parametrize("answer", TRANSFORMS, ids=by_name)
def test_transform_alternatives_pass(answer):
    check_transform_roundtrip(answer, inverse_unpacked)
    passes_probe(LESSON, "transform", answer)


@pytest.mark.parametrize("answer", INVERSES, ids=by_name)
def test_inverse_transform_alternatives_pass(answer):
    check_transform_roundtrip(transform_unpacked, answer)
    passes_probe(LESSON, "inverse_transform", answer)


@pytest.mark.parametrize("answer", NAIVES, ids=by_name)
def test_naive_forecast_alternatives_pass(answer):
    check_naive_forecast(answer)
    passes_probe(LESSON, "naive_forecast", answer)


@pytest.mark.parametrize("answer", SEASONALS, ids=by_name)
def test_seasonal_naive_forecast_alternatives_pass(answer):
    check_seasonal_naive_forecast(answer)
    passes_probe(LESSON, "seasonal_naive_forecast", answer)


@pytest.mark.parametrize("answer", DRIFTS, ids=by_name)
def test_drift_forecast_alternatives_pass(answer):
    check_drift_forecast(answer)
    passes_probe(LESSON, "drift_forecast", answer)


@pytest.mark.parametrize("answer", MAES, ids=by_name)
def test_mae_alternatives_pass(answer):
    check_mae_rmse(answer, rmse_mse_loss)
    passes_probe(LESSON, "mae", answer)


@pytest.mark.parametrize("answer", RMSES, ids=by_name)
def test_rmse_alternatives_pass(answer):
    check_mae_rmse(mae_loop, answer)
    passes_probe(LESSON, "rmse", answer)


@pytest.mark.parametrize("answer", MASES, ids=by_name)
def test_mase_alternatives_pass(answer):
    check_mase(answer)
    passes_probe(LESSON, "mase", answer)


@pytest.mark.parametrize("answer", SERIES_RNNS, ids=by_name)
def test_series_rnn_alternatives_pass(answer):
    check_series_rnn(answer)
    passes_probe(LESSON, "SeriesRNN", answer)


@pytest.mark.parametrize("answer", RECURSIVES, ids=by_name)
def test_recursive_forecast_alternatives_pass(answer):
    check_recursive_forecast(answer)
    passes_probe(LESSON, "recursive_forecast", answer)


@pytest.mark.parametrize("answer", WALKS, ids=by_name)
def test_walk_forward_alternatives_pass(answer):
    check_walk_forward(answer)
    passes_probe(LESSON, "walk_forward", answer)


@pytest.mark.parametrize("answer", RECURSIVES, ids=by_name)
def test_recursive_alternatives_agree_on_a_real_gru(answer):
    """With a SeriesRNN (not the checks' stand-in), every style gives the same forecast."""
    torch.manual_seed(0)
    model = SeriesRNNGetattr(1, 6, 1).double().eval()
    series = torch.randn(12, dtype=torch.float64)
    want = recursive_cat(model, series, 9, 5)
    assert torch.allclose(answer(model, series, 9, 5), want, atol=1e-12)
