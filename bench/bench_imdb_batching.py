"""Batching side by side: padded + random, padded + bucketed, packed + bucketed.

Times training batches of the lesson's model (its own code: Batches, SentimentRNN,
train_one_epoch) on the same reviews, with the same initial weights, for each batching
choice, and reports real (unpadded) tokens per second, the share of padding and the ratio to
padded + bucketed. Appends one JSON line per run to bench/results/imdb_batching.jsonl.

    .venv/bin/python bench/bench_imdb_batching.py --config cpu --threads 1
    .venv/bin/python bench/bench_imdb_batching.py --config gpu --device cuda
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_imdb_train import lesson_definitions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "imdb_batching.jsonl"
VARIANTS = {
    "padded+random": (False, False),
    "padded+bucketed": (False, True),
    "packed+bucketed": (True, True),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="default: gpu on CUDA, else cpu")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reviews", type=int, default=8000, help="training reviews sampled")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per variant")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = args.config or ("gpu" if device.type == "cuda" else "cpu")
    lesson = lesson_definitions()
    config = lesson["CONFIGS"][name]
    from rnncourse.data import load_imdb

    train = load_imdb(verbose=False).train
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.reviews]
    sample = train.subset(pick)
    tokens = [lesson["tokenize"](t) for t in sample.texts]
    vocab = lesson["build_vocab"](tokens, min_freq=config["min_freq"], max_size=config["max_vocab"])
    ids = [lesson["clip"](lesson["encode"](t, vocab), config["max_len"]) for t in tokens]
    keys = ("embed_size", "num_hiddens", "num_layers", "cell", "dropout")
    model_config = {"vocab_size": len(vocab)} | {k: config[k] for k in keys}
    results = {}
    load_before = os.getloadavg()
    for variant, (packed, bucket) in VARIANTS.items():
        torch.manual_seed(0)
        model = lesson["SentimentRNN"](**model_config, packed=packed).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
        scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        batches = lesson["Batches"](ids, sample.labels, config["batch_size"], bucket=bucket, seed=1)
        chosen = [b for b, _ in zip(batches, range(args.batches + 2), strict=False)]
        lesson["train_one_epoch"](model, chosen[:2], optimizer, scaler)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        lesson["train_one_epoch"](model, chosen[2:], optimizer, scaler)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        real = sum(int(lengths.sum()) for _, lengths, _ in chosen[2:])
        padded = sum(X.numel() for X, _, _ in chosen[2:])
        results[variant] = {
            "tokens_per_second": round(real / seconds),
            "padding_share": round(1 - real / padded, 4),
            "seconds": round(seconds, 3),
        }
    reference = results["padded+bucketed"]["tokens_per_second"]
    for row in results.values():
        row["speed_vs_padded_bucketed"] = round(row["tokens_per_second"] / reference, 3)
    row = {
        "bench": "imdb_batching",
        "metric": "training_tokens_per_second",
        "value": results,
        "config_name": name,
        "config": config,
        "timed_batches": args.batches,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    line = json.dumps(row)
    print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
