"""Lesson 06's language model: validation bits/char after a training budget, against n-grams.

Runs the lesson's own code (the reference solution's functions and CONFIGS, loaded from
solutions/06_language_model/06_language_model.py): the add-k n-gram baselines (orders 1-7,
k in 0.01, 0.1, 1, counted on the configuration's ``ngram_chars`` training characters),
then ``fit_lm`` for ``seconds`` of training (evaluation time excluded), then the bits per
character on the whole validation slice (500 held-out unlabelled reviews), training and
sampling speed in characters per second. Appends one JSON line per seed to
bench/results/lm.jsonl with the configuration, device, torch version, the curve and the load
average before and after (other processes may share the machine).

Examples:
    # two CPU cores, ten minutes of training (the issue's budget)
    .venv/bin/python bench/bench_lm.py --config cpu --seconds 600
    # one H100: the reference configuration
    .venv/bin/python bench/bench_lm.py --config gpu --device cuda --seconds 600
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
from bench_imdb_train import append_result, lesson_definitions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "lm.jsonl"
LESSON = "06_language_model"


def bits(log_probs: torch.Tensor) -> float:
    return -log_probs.mean().item() / math.log(2)


def ngram_baselines(lesson, corpus, num_chars: int) -> dict:
    """Validation bits/char of every (order, k) of the lesson's grid, and the time it took."""
    train, V = corpus.train[:num_chars], len(corpus.vocab)
    start = time.perf_counter()
    grid = {
        f"{order},{k}": bits(lesson["ngram_log_probs"](train, corpus.valid, order, k, V))
        for order in range(1, 8)
        for k in (0.01, 0.1, 1.0)
    }
    best = min(grid, key=grid.get)
    five = min(v for key, v in grid.items() if key.startswith("5,"))
    return {
        "ngram_best": best,
        "ngram_best_bits": round(grid[best], 4),
        "ngram_5gram_bits": round(five, 4),
        "unigram_bits": round(min(v for key, v in grid.items() if key.startswith("1,")), 4),
        "ngram_seconds": round(time.perf_counter() - start, 2),
        "ngram_train_chars": len(train),
    }


def sampling_speed(lesson, model, corpus, num_chars: int = 2000) -> float:
    """Characters per second of the lesson's ``sample`` (batch of one, on the model's device)."""
    g = torch.Generator().manual_seed(0)
    prompt = corpus.vocab.encode("This movie was ")
    start = time.perf_counter()
    lesson["sample"](model, prompt, num_chars, 0.8, None, g)
    return num_chars / (time.perf_counter() - start)


def run(lesson, corpus, config, *, device, seed, seconds, config_name) -> dict:
    load_before = os.getloadavg()
    start = time.perf_counter()
    baselines = ngram_baselines(lesson, corpus, config["ngram_chars"])
    torch.manual_seed(seed)
    batchify, stream_windows = lesson["batchify"], lesson["stream_windows"]
    train = corpus.train[: config["train_chars"]]
    rows = batchify(train, config["batch_size"])
    valid_windows = stream_windows(batchify(corpus.valid[: config["valid_chars"]], 32), 256)
    keys = ("embed_size", "num_hiddens", "num_layers", "cell", "dropout")
    model = lesson["CharLM"](len(corpus.vocab), **{k: config[k] for k in keys}).to(device)
    curve = lesson["fit_lm"](
        model,
        rows,
        valid_windows,
        lr=config["lr"],
        num_steps=config["num_steps"],
        max_norm=config["max_norm"],
        seconds=seconds,
        max_updates=None if seconds else config["max_updates"],
    )
    trained, updates, _ = curve[-1]
    B, T = config["batch_size"], config["num_steps"]
    full = lesson["evaluate_lm"](model, stream_windows(batchify(corpus.valid, 32), 256))
    return {
        "bench": "lm",
        "metric": "valid_bits_per_char",
        "value": round(full[0], 4),
        "perplexity": round(full[1], 3),
        "train_seconds": round(trained, 1),
        "updates": updates,
        "train_chars_per_second": round(updates * B * T / trained),
        "sample_chars_per_second": round(sampling_speed(lesson, model, corpus)),
        "beats_5gram_by_bits": round(baselines["ngram_5gram_bits"] - full[0], 4),
        **baselines,
        "curve": [(round(s, 1), u, round(b, 4)) for s, u, b in curve],
        "config_name": config_name,
        "config": config | {"seconds": seconds},
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "valid_chars": len(corpus.valid),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="a key of the lesson's CONFIGS")
    parser.add_argument("--seconds", type=float, default=None, help="training budget")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seeds", type=int, default=1, help="runs, with seeds 0, 1, ...")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    lesson = lesson_definitions(LESSON)
    from rnncourse.data import load_char_corpus

    corpus = load_char_corpus(verbose=False)
    name = args.config or ("gpu" if device.type == "cuda" else "cpu")
    config = dict(lesson["CONFIGS"][name])
    seconds = args.seconds if args.seconds is not None else config["seconds"]
    for seed in range(args.seeds):
        result = run(
            lesson, corpus, config, device=device, seed=seed, seconds=seconds, config_name=name
        )
        append_result(result, device, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
