"""Benchmark: grade a synthetic class with 1 and with 2 workers, in one run.

A class of N submissions per lesson (default 60 of lesson 01: half reference, a quarter stubs,
a quarter with one typical bug each) is exported as a flat LMS zip, imported, and graded
twice in fresh scratch courses: once with one worker, once with two. Prints and appends to
bench/results/grading.jsonl one JSON line per run and one for the comparison:

- seconds per submission (wall time of the run / submissions);
- per notebook: its own compute (the time its cells ran) and the overhead beyond it (kernel
  start, sanitizing, nbgrader's bookkeeping, integrity pass, feedback), from the workers' timings;
- the speed-up of two workers over one (target >= 1.7 on two cores), and whether both runs
  gave the same grades;
- the CPU seconds the run used and how many cores it got (CPU / wall), and the load average
  before and after each run: other work on a shared machine takes cores from the second worker;
- how many grader failures were retried, how many submissions ended not graded, and whether
  the reference canary (one more notebook per lesson, in the wall time) got full marks.

    .venv/bin/python bench/bench_grading.py [--count 60] [--lessons 01_rnn_forward]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from rnncourse_grader import batch, grading, pipeline  # noqa: E402
from tests.course import make_submission, scratch_course, solution_cells  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "grading.jsonl"
BUGS_01 = {
    "no_bias": (
        "rnn_cell_forward",
        "x_t @ W_xh + h_prev @ W_hh + b_h",
        "x_t @ W_xh + h_prev @ W_hh",
    ),
    "h0_ignored": ("rnn_forward", "h0 if h0 is not None else ", ""),
    "one_bias": ("rnn_params_from_torch", "rnn.bias_ih_l0 + rnn.bias_hh_l0", "rnn.bias_ih_l0"),
    "count": ("rnn_num_params", "2 * H", "H"),
    "loss_sum": ("sequence_loss", " / weights.sum()", ""),
    "no_zero_grad": ("train_step", "optimizer.zero_grad()\n    ", ""),
}


def synthetic_class(lesson: str, count: int) -> dict[str, dict]:
    """student -> answers: half reference, a quarter stubs, a quarter with one bug each."""
    reference = solution_cells(lesson)
    bugs = list(BUGS_01.values()) if lesson == "01_rnn_forward" else []
    students = {}
    for i in range(count):
        kind = i % 4
        if kind in (0, 1):
            students[f"ref{i:03d}"] = reference
        elif kind == 2 or not bugs:
            students[f"stub{i:03d}"] = {}
        else:
            cell, old, new = bugs[(i // 4) % len(bugs)]
            students[f"bug{i:03d}"] = {**reference, cell: reference[cell].replace(old, new)}
    return students


def export_zip(course: Path, lessons: list[str], count: int, target: Path) -> int:
    n = 0
    with zipfile.ZipFile(target, "w") as zf, tempfile.TemporaryDirectory() as tmp:
        for lesson in lessons:
            released = course / "lessons" / lesson / f"{lesson}.ipynb"
            for student, answers in synthetic_class(lesson, count).items():
                nb = make_submission(released, answers, Path(tmp) / f"{student}_{lesson}.ipynb")
                zf.write(nb, nb.name)
                n += 1
    return n


def grade_once(lessons: list[str], count: int, workers: int, scratch: Path) -> tuple[dict, dict]:
    root, env = scratch_course(scratch / f"w{workers}", with_sources=False)
    pipeline.release(lessons, root=root, env=env)
    archive = scratch / f"class-w{workers}.zip"
    n = export_zip(root, lessons, count, archive)
    grading.import_submissions(archive, root, env)
    load_before = os.getloadavg()
    cpu_before = _children_cpu()
    start = time.perf_counter()
    run = batch.grade_class(root=root, env=env, workers=workers, salt="bench", progress=True)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before  # workers, kernels, integrity runs, nbgrader export
    load_after = os.getloadavg()
    timings = [r.timing for r in run.results]

    def mean(key):
        values = [getattr(t, key) for t in timings if getattr(t, key) is not None]
        return round(statistics.mean(values), 3) if values else None

    own = mean("cells_s")
    total = mean("total_s")
    record = {
        "metric": "grading_seconds_per_submission",
        "value": round(wall / n, 3),
        "config": {"lessons": lessons, "submissions": n, "workers": workers},
        "wall_s": round(wall, 2),
        "own_compute_s_per_nb": own,
        "overhead_s_per_nb": round(total - own, 3) if total and own is not None else None,
        "kernel_start_s_per_nb": mean("kernel_start_s"),
        "integrity_s_per_nb": mean("integrity_s"),
        "feedback_s_per_nb": mean("feedback_s"),
        "worker_total_s_per_nb": total,
        "cpu_s": round(cpu, 1),
        "cpu_s_per_nb": round(cpu / n, 3),
        # how many of the machine's cores the run got: ~workers when it had them to itself
        "cores_used": round(cpu / wall, 2),
        "statuses": dict(Counter(str(r.status) for r in run.results)),
        "not_graded": len(run.not_graded),
        "retries": run.retries,  # grader failures tried again (kernel start, dead worker, ...)
        "canaries": len(run.canaries),  # the lessons' reference notebooks, graded in the run
        "canaries_full_marks": all(c.full_marks() for c in run.canaries),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        **environment(),
    }
    grades = {(r.student, r.lesson): r.final for r in run.results}
    return record, grades


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def environment() -> dict:
    return {
        "device": f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=60, help="submissions per lesson")
    parser.add_argument("--lessons", nargs="+", default=["01_rnn_forward"])
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        results = {}
        for workers in (1, 2):
            record, grades = grade_once(args.lessons, args.count, workers, Path(tmp))
            results[workers] = grades
            records.append(record)
            print(json.dumps(record), flush=True)
    one, two = records
    records.append(
        {
            "metric": "grading_speedup_2_workers",
            "value": round(one["wall_s"] / two["wall_s"], 3),
            "config": {"lessons": args.lessons, "submissions": one["config"]["submissions"]},
            "same_grades": results[1] == results[2],
            # what the same work would give with both cores to itself (CPU-bound, no serial part)
            "speedup_if_uncontended": round(2 * one["cpu_s"] / two["cpu_s"], 3),
            "cores_used": [one["cores_used"], two["cores_used"]],
            "wall_s": round(one["wall_s"] + two["wall_s"], 2),
            "target": 1.7,
            **environment(),
        }
    )
    print(json.dumps(records[-1]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
