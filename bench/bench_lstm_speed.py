"""Benchmark: the course's scratch LSTM against torch.nn.LSTM, same batch, same run.

The scratch LSTM is lesson 03's reference ``lstm_forward`` (a Python loop over time calling
``lstm_cell_forward``), taken by executing the solution's code cells as the tests do
(``tests.course.reference_namespace``), so the benchmark times exactly what the lesson
teaches. ``nn.LSTM`` runs PyTorch's fused kernel (cuDNN on a GPU) with the same weights; the
outputs are compared before anything is timed.

For every device (the CPU, and CUDA when available), configuration and pass (forward only,
and forward + backward) it prints and appends to ``bench/results/lstm_speed.jsonl`` one JSON
line per implementation (metric ``tokens_per_s``: B * T / median seconds per call) and one
for the comparison (metric ``speedup_nn_lstm_over_scratch``). Each line carries the config,
the device, the torch version, the wall seconds of the measurement and the load average
(other work on the machine skews CPU figures).

    .venv/bin/python bench/bench_lstm_speed.py [--device cpu|cuda|all] [--repeats 5]

CPU runs use one thread unless --threads says otherwise (the device field records it); the
two implementations are timed in alternation, so that a change of load hits both alike.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")  # the notebook's cells draw figures

from tests.course import reference_namespace  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "lstm_speed.jsonl"
# (batch_size, num_steps, input_size, num_hiddens): small enough for a shared 2-core CPU,
# larger on a GPU, where small batches only measure kernel-launch overhead.
CONFIGS = {
    "cpu": [(32, 50, 64, 128), (32, 100, 128, 256)],
    "cuda": [(64, 100, 128, 256), (256, 100, 256, 512)],
}


def reference_lstm_forward():
    """Lesson 03's lstm_forward, from the solution's code cells (smoke configuration)."""
    with mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "bench"}):
        namespace = reference_namespace("03_lstm")
    return namespace["lstm_forward"], namespace["layer_params"]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def median_seconds(fns, device, repeats, warmup=2):
    """Median wall seconds per call of each ``fns[name]()``, calls alternating between them.

    Returns ({name: median seconds}, {name: wall seconds spent on its calls, warm-up included}).
    """
    times = {name: [] for name in fns}
    wall = dict.fromkeys(fns, 0.0)
    for k in range(warmup + repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
            wall[name] += elapsed
            if k >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}, wall


def run_config(lstm_forward, layer_params, device, config, repeats):
    """Time both implementations on one config; return the JSON records."""
    B, T, D, H = config
    torch.manual_seed(0)
    lstm = nn.LSTM(D, H, batch_first=True).to(device)
    X = torch.randn(B, T, D, device=device)
    named = {name: p for name, p in lstm.named_parameters()}
    params = layer_params(named)

    with torch.no_grad():  # same numbers before timing (float32 rounding only)
        ours, _ = lstm_forward(X, None, params)
        theirs, _ = lstm(X)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)

    def forward(impl):
        def call():
            with torch.no_grad():
                return lstm_forward(X, None, params) if impl == "scratch" else lstm(X)

        return call

    def forward_backward(impl):
        def call():
            lstm.zero_grad(set_to_none=True)
            out = lstm_forward(X, None, params)[0] if impl == "scratch" else lstm(X)[0]
            out.sum().backward()

        return call

    base = {
        "batch_size": B,
        "num_steps": T,
        "input_size": D,
        "num_hiddens": H,
        "dtype": "float32",
        "repeats": repeats,
    }
    records = []
    for pass_name, make in (("forward", forward), ("forward_backward", forward_backward)):
        impls = ("scratch", "nn.LSTM")
        seconds, wall = median_seconds({impl: make(impl) for impl in impls}, device, repeats)
        rates = {impl: B * T / seconds[impl] for impl in impls}
        for impl in impls:
            records.append(
                {
                    "metric": "tokens_per_s",
                    "value": round(rates[impl], 1),
                    "config": {**base, "impl": impl, "pass": pass_name},
                    "wall_s": round(wall[impl], 3),
                }
            )
        records.append(
            {
                "metric": "speedup_nn_lstm_over_scratch",
                "value": round(rates["nn.LSTM"] / rates["scratch"], 2),
                "config": {**base, "pass": pass_name},
                "wall_s": round(sum(r["wall_s"] for r in records[-2:]), 3),
            }
        )
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if not devices:
        print("no CUDA device here; nothing to do", file=sys.stderr)
        return 1

    lstm_forward, layer_params = reference_lstm_forward()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        for device in devices:
            for config in CONFIGS[device.type]:
                load_before = os.getloadavg()[0]
                for record in run_config(lstm_forward, layer_params, device, config, args.repeats):
                    record.update(
                        device=device_name(device),
                        torch=torch.__version__,
                        load_avg=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                    )
                    line = json.dumps(record)
                    print(line)
                    out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
