"""Restart and Run All of each lesson's reference notebook, as a student runs it (no nbgrader).

Builds ``solutions/<id>/<id>.ipynb`` from its jupytext source, copies it to a scratch folder
and executes every cell in a fresh kernel (nbclient), outside nbgrader, so that the lesson's
full configuration runs. Appends one JSON line per lesson to bench/results/notebooks.jsonl:
total seconds, the three slowest cells (their first line and seconds), the device, torch's
threads in this process (a kernel's default is the same) and the load average before and
after. Run it on an otherwise idle
machine: other processes on the same cores slow every cell.

Examples:
    .venv/bin/python bench/bench_notebooks.py                      # lessons 01-05 and 08
    .venv/bin/python bench/bench_notebooks.py 04_gru 08_time_series
    .venv/bin/python bench/bench_notebooks.py 05_imdb_sentiment --keep /tmp/run   # + outputs
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from bench_imdb_train import append_result
from nbclient import NotebookClient

from rnncourse_grader import pipeline

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "notebooks.jsonl"
# 06 and 07 train for minutes by design (their budgets are their own benchmarks)
DEFAULT = ["01_rnn_forward", "02_bptt", "03_lstm", "04_gru", "05_imdb_sentiment", "08_time_series"]


def cell_seconds(cell) -> float:
    """A cell's execution time from nbclient's timing metadata."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    from datetime import datetime

    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run_lesson(lesson_id: str, timeout: int, keep: Path | None = None) -> dict:
    """Execute one reference notebook; its bench line. ``keep``: save the executed copy there."""
    source = pipeline.build_source_notebook(lesson_id)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"bench-{lesson_id}-") as folder:
        path = Path(folder) / source.name
        shutil.copy2(source, path)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": folder}},
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / source.name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    slowest = sorted(code, key=cell_seconds, reverse=True)[:3]
    return {
        "metric": "Restart and Run All of the reference notebook, outside nbgrader",
        "lesson": lesson_id,
        "seconds": round(seconds, 1),
        "slowest_cells": [
            {
                "first_line": c.source.splitlines()[0][:80] if c.source else "",
                "seconds": round(cell_seconds(c), 1),
            }
            for c in slowest
        ],
        "code_cells": len(code),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", default=DEFAULT)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--keep", type=Path, help="save the executed notebooks (outputs) here")
    args = parser.parse_args(argv)
    for lesson_id in args.lessons:
        line = run_lesson(lesson_id, args.timeout, args.keep)
        append_result(line, torch.device("cpu"), RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
