"""Lesson 08's forecasts of electricity demand: every method walk-forward, week ahead.

Runs the lesson's own code (the reference solution's functions and CONFIG, loaded from
solutions/08_time_series/08_time_series.py) on the lesson's series and split:

- ``--select``: the direct model's settings chosen on the *validation* weeks. Each candidate
  (learning rate x epochs) trains on the training weeks only and is scored walk-forward over
  weeks 9-10 (an origin per day, 336 steps ahead) against seasonal naive, for every seed.
- default: the test weeks, once. The direct model (CONFIG's settings) trains on training and
  validation windows, the one-step model on the training windows; naive, seasonal naive,
  drift, Holt-Winters, the recursive GRU and the direct GRU are scored walk-forward over weeks
  11-12: MAE, RMSE, MASE, RMSE relative to seasonal naive, per seed, and training time.

Appends one JSON line per run to bench/results/series.jsonl with the configuration, device,
torch version, threads and the load average before and after.

Examples:
    .venv/bin/python bench/bench_series.py --select
    .venv/bin/python bench/bench_series.py --seeds 3
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_imdb_train import append_result, lesson_definitions

from rnncourse.data import load_electricity

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "series.jsonl"
LESSON = "08_time_series"


def scores(lesson, forecasts, targets, train, season) -> dict:
    return {
        "mae": round(lesson["mae"](targets, forecasts), 2),
        "rmse": round(lesson["rmse"](targets, forecasts), 2),
        "mase": round(lesson["mase"](targets, forecasts, train, season), 4),
    }


def walk(lesson, forecaster, y, start, end, season, stride):
    origins, forecasts = lesson["walk_forward"](forecaster, y, start, end, season, stride)
    return forecasts, torch.stack([y[o : o + season] for o in origins])


def train_direct(lesson, z32, first, last, season, seed, lr, epochs):
    L = lesson["CONFIG"]["lookback"]
    X, Y = lesson["direct_windows"](z32, first, last, L, season)
    model = lesson["new_direct_model"](seed, season)
    start = time.perf_counter()
    lesson["fit"](model, X, Y, epochs, lr, seed)
    return model, time.perf_counter() - start


def select(lesson, series, seeds, candidates) -> dict:
    """Validation walk-forward RMSE / seasonal naive's for each (lr, epochs) and seed."""
    y, season, day = series.values, series.season, series.steps_per_day
    train_end, valid_end = series.split.train_end, series.split.valid_end
    scaler = lesson["fit_scaler"](y, train_end)
    z32 = lesson["transform"](y, scaler).float()
    L = lesson["CONFIG"]["lookback"]
    snaive = walk(
        lesson,
        lambda h, H: lesson["seasonal_naive_forecast"](h, H, season),
        y,
        train_end,
        valid_end,
        season,
        day,
    )
    base = lesson["rmse"](snaive[1], snaive[0])
    table, chosen_hiddens = [], lesson["CONFIG"]["num_hiddens"]
    for lr, epochs, hiddens in candidates:
        lesson["CONFIG"]["num_hiddens"] = hiddens  # new_direct_model reads it
        ratios = []
        for seed in range(seeds):
            model, _ = train_direct(
                lesson, z32, season + L, train_end - season, season, seed, lr, epochs
            )
            f = lesson["direct_forecaster"](model, scaler, L, season)
            forecasts, targets = walk(lesson, f, y, train_end, valid_end, season, day)
            ratios.append(round(lesson["rmse"](targets, forecasts) / base, 4))
        table.append(
            {
                "lr": lr,
                "epochs": epochs,
                "num_hiddens": hiddens,
                "valid_rmse_ratio": ratios,
                "median": statistics.median(ratios),
            }
        )
        print(table[-1], flush=True)
    lesson["CONFIG"]["num_hiddens"] = chosen_hiddens
    best = min(table, key=lambda row: row["median"])
    return {
        "metric": "validation walk-forward RMSE / seasonal naive's (direct GRU)",
        "snaive_valid_rmse": round(base, 2),
        "candidates": table,
        "chosen": {k: best[k] for k in ("lr", "epochs", "num_hiddens")},
    }


def test(lesson, series, seeds) -> dict:
    """Every method on the test weeks, walk-forward, with the lesson's CONFIG."""
    c = lesson["CONFIG"]
    y, season, day = series.values, series.season, series.steps_per_day
    train_end, valid_end = series.split.train_end, series.split.valid_end
    scaler = lesson["fit_scaler"](y, train_end)
    z32 = lesson["transform"](y, scaler).float()
    L, train = c["lookback"], y[:train_end]
    methods = {
        "naive": lesson["naive_forecast"],
        "seasonal naive": lambda h, H: lesson["seasonal_naive_forecast"](h, H, season),
        "drift": lesson["drift_forecast"],
        "Holt-Winters": lesson["holt_winters_forecaster"](y[:valid_end], season),
    }
    torch.manual_seed(0)
    X, Y = lesson["make_windows"](z32[:train_end], L, 1)
    one_step = lesson["SeriesRNN"](1, c["num_hiddens"], 1)
    start = time.perf_counter()
    lesson["fit"](one_step, X[..., None], Y, c["one_step_epochs"], c["one_step_lr"])
    one_step_seconds = time.perf_counter() - start
    methods["recursive GRU"] = lesson["recursive_forecaster"](one_step, scaler, 7 * day)
    out = {"methods": {}, "direct_seconds": []}
    for name, f in methods.items():
        out["methods"][name] = scores(
            lesson, *walk(lesson, f, y, valid_end, len(y), season, day), train, season
        )
    direct = []
    for seed in range(seeds):
        model, seconds = train_direct(
            lesson,
            z32,
            season + L,
            valid_end - season,
            season,
            seed,
            c["direct_lr"],
            c["direct_epochs"],
        )
        f = lesson["direct_forecaster"](model, scaler, L, season)
        direct.append(
            scores(lesson, *walk(lesson, f, y, valid_end, len(y), season, day), train, season)
        )
        out["direct_seconds"].append(round(seconds, 1))
    base = out["methods"]["seasonal naive"]["rmse"]
    ratios = [round(d["rmse"] / base, 4) for d in direct]
    return out | {
        "metric": "test walk-forward, 336 steps ahead, an origin per day",
        "direct_per_seed": direct,
        "direct_rmse_ratio": ratios,
        "direct_rmse_ratio_median": statistics.median(ratios),
        "one_step_seconds": round(one_step_seconds, 1),
    }


# (learning rate, epochs, hidden units) of the direct model, tried on the validation weeks
CANDIDATES = [(1e-3, e, h) for h in (8, 32) for e in (3, 6, 10)] + [(1e-3, 20, 32), (3e-3, 6, 32)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--select", action="store_true", help="choose lr/epochs on validation")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lesson = lesson_definitions(LESSON)
    series = load_electricity()
    load_before = os.getloadavg()
    start = time.perf_counter()
    if args.select:
        result = select(lesson, series, args.seeds, CANDIDATES)
    else:
        result = test(lesson, series, args.seeds)
    result |= {
        "config": {k: v for k, v in lesson["CONFIG"].items()},
        "seeds": args.seeds,
        "seconds": round(time.perf_counter() - start, 1),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }
    append_result(result, torch.device("cpu"), RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
