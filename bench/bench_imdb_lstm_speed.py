"""Tokens per second: lesson 03's scratch LSTM against torch.nn.LSTM, on the same IMDB batch.

Takes one length-bucketed batch of real reviews (the lesson-05 pipeline: tokenize, vocabulary,
clip), embeds it, and times forward + backward of (a) the reference solution's
``lstm_forward`` from lesson 03 (a Python loop over time steps) and (b) ``nn.LSTM`` with the
same weights (one fused kernel: oneDNN on a CPU, cuDNN on a GPU). Checks first that both
compute the same states. Appends one JSON line to bench/results/imdb_lstm_speed.jsonl.

    .venv/bin/python bench/bench_imdb_lstm_speed.py [--device cuda] [--batch-size 64]
"""

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "imdb_lstm_speed.jsonl"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_imdb_train import lesson_definitions  # noqa: E402


def scratch_lstm():
    """lesson 03's lstm_gates, lstm_cell_forward and lstm_forward (its answer cells)."""
    path = ROOT / "solutions" / "03_lstm" / "03_lstm.py"
    namespace = {"torch": torch, "nn": nn}
    wanted = {"lstm_gates", "lstm_cell_forward", "lstm_forward"}
    for cell in jupytext.read(path, fmt="py:percent").cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in wanted:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, "<03_lstm>", "exec"), namespace)
    return namespace["lstm_forward"]


def timed(fn, repeats, device):
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--embed-size", type=int, default=128)
    parser.add_argument("--num-hiddens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    lesson = lesson_definitions()
    lstm_forward = scratch_lstm()
    from rnncourse.data import load_imdb

    torch.manual_seed(0)
    texts = load_imdb(verbose=False).train.texts[:2000]
    tokens = [lesson["tokenize"](t) for t in texts]
    vocab = lesson["build_vocab"](tokens, min_freq=2)
    ids = [lesson["clip"](lesson["encode"](t, vocab), args.max_len) for t in tokens]
    lengths = torch.tensor([len(x) for x in ids])
    index = lesson["bucket_batches"](lengths, args.batch_size, torch.Generator().manual_seed(0))
    batch = max(index, key=lambda b: int(lengths[b].max()))  # a batch of long reviews
    X, lens, _ = lesson["collate"]([(ids[i], 0) for i in batch.tolist()])
    embedding = nn.Embedding(len(vocab), args.embed_size, padding_idx=0).to(device)
    lstm = nn.LSTM(args.embed_size, args.num_hiddens, batch_first=True).to(device)
    params = dict(lstm.named_parameters())
    ours = {k.removesuffix("_l0"): v for k, v in params.items()}
    E = embedding(X.to(device)).detach().requires_grad_()  # (B, T, e)

    with torch.no_grad():
        H_ours, _ = lstm_forward(E, None, ours)
        H_torch, _ = lstm(E)
    max_diff = float((H_ours - H_torch).abs().max())

    def step(forward):
        def run():
            H, _ = forward()
            H.sum().backward()

        return run

    load_before = os.getloadavg()
    seconds = {
        "scratch lstm_forward (lesson 03)": timed(
            step(lambda: lstm_forward(E, None, ours)), args.repeats, device
        ),
        "nn.LSTM": timed(step(lambda: lstm(E)), args.repeats, device),
    }
    real = int(lens.sum())
    result = {
        "bench": "imdb_lstm_speed",
        "metric": "tokens_per_second_forward_backward",
        "value": {name: round(real / s) for name, s in seconds.items()},
        "speedup_nn_lstm": round(
            seconds["scratch lstm_forward (lesson 03)"] / seconds["nn.LSTM"], 1
        ),
        "padded_tokens": X.numel(),
        "real_tokens": real,
        "batch_shape": list(X.shape),
        "embed_size": args.embed_size,
        "num_hiddens": args.num_hiddens,
        "max_abs_difference": max_diff,
        "repeats": args.repeats,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    line = json.dumps(result)
    print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
