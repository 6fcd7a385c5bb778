"""Lesson 05's model on the full official IMDB split: accuracy, wall time, tokens per second.

Runs the lesson's own code (the reference solution's functions, loaded from
solutions/05_imdb_sentiment/05_imdb_sentiment.py) with one of its configurations, and
measures the test accuracy after every epoch (a benchmark may look; the lesson itself picks
the epoch on validation). Appends one JSON line per run to bench/results/imdb_train.jsonl
with the configuration, device, torch version, per-epoch history, wall seconds and the load
average (other processes may share the machine).

Examples:
    # two CPU cores: padded + bucketed batches against pack_padded_sequence, side by side
    .venv/bin/python bench/bench_imdb_train.py --config cpu --variants padded,packed
    # one H100: the reference configuration (time to >= 90% test accuracy)
    .venv/bin/python bench/bench_imdb_train.py --config gpu --device cuda --workers 8
"""

import argparse
import ast
import contextlib
import io
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "imdb_train.jsonl"
LESSON = "05_imdb_sentiment"


def lesson_definitions(lesson_id: str = LESSON) -> dict:
    """The solution's setup cell, answer cells and definition-only cells, executed."""
    path = ROOT / "solutions" / lesson_id / f"{lesson_id}.py"
    namespace: dict = {"__name__": f"lesson_{lesson_id}"}
    for cell in jupytext.read(path, fmt="py:percent").cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        body = ast.parse(cell.source).body
        only_definitions = body and all(
            isinstance(node, ast.FunctionDef | ast.ClassDef)
            or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict))
            for node in body
        )
        if meta.get("grade_id") == "setup" or meta.get("solution") or only_definitions:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, f"<{lesson_id}>", "exec"), namespace)
    return namespace


_TOKENIZE = None  # set before forking the tokenizer processes


def _tokenize_all(texts):
    return [_TOKENIZE(t) for t in texts]


def tokenize_many(tokenize, texts, workers: int):
    """Tokenize in ``workers`` forked processes (the lesson's tokenizer is plain Python)."""
    global _TOKENIZE
    if workers <= 1:
        return [tokenize(t) for t in texts]
    _TOKENIZE = tokenize
    chunk = math.ceil(len(texts) / workers)
    parts = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    with ProcessPoolExecutor(workers, mp_context=torch.multiprocessing.get_context("fork")) as ex:
        return [tokens for part in ex.map(_tokenize_all, parts) for tokens in part]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(lesson, data, config, *, device, packed, bucket, workers, seed, config_name, epochs):
    tokenize, encode, clip = lesson["tokenize"], lesson["encode"], lesson["clip"]
    Batches, SentimentRNN = lesson["Batches"], lesson["SentimentRNN"]
    train_one_epoch, evaluate = lesson["train_one_epoch"], lesson["evaluate"]
    torch.manual_seed(seed)
    load_before = os.getloadavg()
    start = time.perf_counter()
    train_split, valid_split = lesson["train_valid_split"](data.train, 0.1, seed=0)
    train_tokens = tokenize_many(tokenize, train_split.texts, workers)
    valid_tokens = tokenize_many(tokenize, valid_split.texts, workers)
    test_tokens = tokenize_many(tokenize, data.test.texts, workers)
    vocab = lesson["build_vocab"](
        train_tokens, min_freq=config["min_freq"], max_size=config["max_vocab"]
    )
    max_len = config["max_len"]
    train_ids = [clip(encode(t, vocab), max_len) for t in train_tokens]
    valid_ids = [clip(encode(t, vocab), max_len) for t in valid_tokens]
    test_ids = [clip(encode(t, vocab), max_len) for t in test_tokens]
    prep_seconds = time.perf_counter() - start

    keys = ("embed_size", "num_hiddens", "num_layers", "cell", "dropout")
    model_config = {"vocab_size": len(vocab), "packed": packed} | {k: config[k] for k in keys}
    model = SentimentRNN(**model_config).to(device)
    train_batches = Batches(
        train_ids, train_split.labels, config["batch_size"], bucket=bucket, seed=seed
    )
    valid_batches = Batches(valid_ids, valid_split.labels, 256, shuffle=False)
    test_batches = Batches(test_ids, data.test.labels, 256, shuffle=False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    num_epochs = epochs or config["num_epochs"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    real_tokens = sum(len(x) for x in train_ids)
    history, train_seconds = [], 0.0
    for epoch in range(num_epochs):
        sync(device)
        t0 = time.perf_counter()
        loss = train_one_epoch(model, train_batches, optimizer, scaler)
        sync(device)
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        scheduler.step()
        row = {
            "epoch": epoch + 1,
            "loss": round(loss, 5),
            "epoch_seconds": round(epoch_seconds, 2),
            "tokens_per_second": round(real_tokens / epoch_seconds),
            "valid_accuracy": evaluate(model, valid_batches),
            "test_accuracy": evaluate(model, test_batches),
            "elapsed_seconds": round(time.perf_counter() - start, 2),
        }
        history.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    best = max(history, key=lambda r: r["valid_accuracy"])
    first_90 = next((r for r in history if r["test_accuracy"] >= 0.90), None)
    return {
        "bench": "imdb_train",
        "metric": "test_accuracy_at_best_validation_epoch",
        "value": best["test_accuracy"],
        "best_epoch": best["epoch"],
        "max_test_accuracy": max(r["test_accuracy"] for r in history),
        "time_to_90_seconds": first_90["elapsed_seconds"] if first_90 else None,
        "config_name": config_name,
        "config": config | {"num_epochs": num_epochs},
        "batching": f"{'packed' if packed else 'padded'}+{'bucketed' if bucket else 'random'}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(vocab),
        "prep_seconds": round(prep_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "history": history,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def append_result(result: dict, device: torch.device, out: Path) -> None:
    """Print one run's JSON line, with the device and software it ran on, and append it."""
    result = result | {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    line = json.dumps(result)
    print(line, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(line + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config",
        default=None,
        help="a key of the lesson's CONFIGS (default: gpu on CUDA, else cpu)",
    )
    parser.add_argument(
        "--variants",
        default=None,
        help="comma-separated: padded (padded+bucketed), packed (packed+bucketed), random "
        "(padded+random batches); default: the configuration's own",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    parser.add_argument("--epochs", type=int, default=None, help="override num_epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting of the configuration, e.g. --set batch_size=512",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    lesson = lesson_definitions()
    from rnncourse.data import load_imdb, train_valid_split

    lesson["train_valid_split"] = train_valid_split
    args.config = args.config or ("gpu" if device.type == "cuda" else "cpu")
    config = dict(lesson["CONFIGS"][args.config])
    for item in args.set:
        key, value = item.split("=", 1)
        if key not in config:
            parser.error(f"--set {key}: not a setting of {args.config!r} ({sorted(config)})")
        kind = type(config[key])
        config[key] = value.lower() in ("1", "true") if kind is bool else kind(value)
    data = load_imdb(progress=False)
    variants = (args.variants or ("packed" if config["packed"] else "padded")).split(",")
    for variant in variants:
        packed, bucket = {
            "padded": (False, True),
            "packed": (True, True),
            "random": (False, False),
        }[variant]
        result = run(
            lesson,
            data,
            config,
            device=device,
            packed=packed,
            bucket=bucket,
            workers=args.workers,
            seed=args.seed,
            config_name=args.config,
            epochs=args.epochs,
        )
        append_result(result, device, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
