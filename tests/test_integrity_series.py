"""The integrity pass for lesson 08, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

from tests import test_alternatives_series as alt
from tests.integrity_support import integrity_tests, sources

CORPUS = {
    "make_windows": alt.WINDOWS,
    "fit_scaler": alt.FIT_SCALERS,
    "transform": alt.TRANSFORMS,
    "inverse_transform": alt.INVERSES,
    "naive_forecast": alt.NAIVES,
    "seasonal_naive_forecast": alt.SEASONALS,
    "drift_forecast": alt.DRIFTS,
    "mae": alt.MAES,
    "rmse": alt.RMSES,
    "mase": alt.MASES,
    "SeriesRNN": alt.SERIES_RNNS,
    "recursive_forecast": alt.RECURSIVES,
    "walk_forward": alt.WALKS,
}
# The alternatives call nothing of each other's: only the imports the setup cell lacks
# (statistics; torch.nn.functional as F, in the header of ``sources``).
HELPERS = "import math\nimport statistics\n" + sources()  # what the setup cell lacks
CASCADES = {"mae": ["mase"]}  # the reference's mase calls mae

CHEATS = {
    "make_windows": (  # the last window dropped
        "def make_windows(series, lookback, horizon):\n"
        "    w = series.unfold(0, lookback + horizon, 1)[:-1]\n"
        "    return w[:, :lookback], w[:, lookback:]\n",
        "X has shape",
    ),
    "fit_scaler": (  # the whole series: the test part leaks in
        "def fit_scaler(series, train_end):\n"
        "    return Scaler(mean=series.mean().item(), std=series.std(correction=0).item())\n",
        "changing the values after train_end changed the scaler",
    ),
    "transform": (  # divided first, then the mean subtracted
        "def transform(x, scaler):\n    return x / scaler.std - scaler.mean\n",
        "the result: largest difference",
    ),
    "inverse_transform": (  # the mean added first, then multiplied
        "def inverse_transform(z, scaler):\n    return (z + scaler.mean) * scaler.std\n",
        "the result: largest difference",
    ),
    "naive_forecast": (  # the first value, not the last
        "def naive_forecast(history, horizon):\n    return history[0].repeat(horizon)\n",
        "the forecast: largest difference",
    ),
    "seasonal_naive_forecast": (  # no wrap past one season
        "def seasonal_naive_forecast(history, horizon, season):\n"
        "    return torch.stack([history[-season + h] for h in range(horizon)])\n",
        "horizon 8, season 3: the forecast: largest difference",
    ),
    "drift_forecast": (  # divided by t, not t - 1
        "def drift_forecast(history, horizon):\n"
        "    slope = (history[-1] - history[0]) / len(history)\n"
        "    return history[-1] + torch.arange(1, horizon + 1, dtype=history.dtype) * slope\n",
        "the forecast: largest difference",
    ),
    "mae": (  # no absolute value: errors of opposite signs cancel
        "def mae(y_true, y_pred):\n    return (y_true - y_pred).mean().item()\n",
        "the metric = ",
    ),
    "rmse": (  # the mean of per-row roots
        "def rmse(y_true, y_pred):\n"
        "    return (y_true - y_pred).pow(2).mean(-1).sqrt().mean().item()\n",
        "the metric = ",
    ),
    "mase": (  # scaled by one-step differences
        "def mase(y_true, y_pred, train, season):\n"
        "    if len(train) <= season:\n"
        "        raise ValueError('too short')\n"
        "    return mae(y_true, y_pred) / (train[1:] - train[:-1]).abs().mean().item()\n",
        "mase = ",
    ),
    "SeriesRNN": (  # the given state never reaches the encoder
        "class SeriesRNN(nn.Module):\n"
        "    def __init__(self, input_size, num_hiddens, horizon, cell='gru'):\n"
        "        super().__init__()\n"
        "        kind = {'gru': nn.GRU, 'lstm': nn.LSTM}[cell]\n"
        "        self.rnn = kind(input_size, num_hiddens, batch_first=True)\n"
        "        self.head = nn.Linear(num_hiddens, horizon)\n"
        "    def forward(self, X, state=None):\n"
        "        H_all, state = self.rnn(X)\n"
        "        return self.head(H_all[:, -1]), state\n",
        "Y_hat with the state carried across two calls",
    ),
    "recursive_forecast": (  # teacher forcing at forecast time: the ground truth fed back
        "def recursive_forecast(model, series, origin, steps):\n"
        "    out = []\n"
        "    with torch.no_grad():\n"
        "        Y_hat, state = model(series[:origin].reshape(1, -1, 1))\n"
        "        for k in range(steps):\n"
        "            out.append(Y_hat.reshape(()))\n"
        "            Y_hat, state = model(series[origin + k].reshape(1, 1, 1), state)\n"
        "    return torch.stack(out)\n",
        "it fed the model a value after the origin",
    ),
    "walk_forward": (  # the last origin, whose forecast ends exactly at end, dropped
        "def walk_forward(forecaster, series, start, end, horizon, stride):\n"
        "    origins = list(range(start, end - horizon, stride))\n"
        "    return origins, torch.stack([forecaster(series[:o], horizon) for o in origins])\n",
        "the last origin, whose forecast ends exactly at end, is missing",
    ),
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("08_time_series", CORPUS, HELPERS, CHEATS, CASCADES)
