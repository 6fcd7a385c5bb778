"""What a lesson needs before any of its notebooks is graded, made once by the grader.

A grading kernel runs with a file-size limit, a memory cap and no network, and may run as an
unprivileged user: it must find its data ready, not build it. Lesson 05's parsed IMDB cache
(134 MB) is larger than the kernel's file-size limit, so a kernel that had to write it failed
every data cell, for every student. ``prepare`` runs the code of the lesson manifest's
``prepare`` (idempotent, quick when done) in a subprocess with the grading environment (the
same ``RNNCOURSE_DATA_DIR`` and archive the kernels will see) before the workers start. A
lesson whose preparation fails is not graded (the grader's failure).
"""

import subprocess
import sys
from pathlib import Path

from rnncourse_grader import manifest, pipeline


def prepare(
    lessons: list[str], env: dict | None = None, root: Path = pipeline.ROOT, timeout: float = 1800
) -> dict[str, str]:
    """Prepare each lesson that needs it; return lesson -> why it failed (empty: all ready)."""
    failed = {}
    for lesson in lessons:
        code = manifest.load(lesson, root).prepare
        if code is None:
            continue
        try:
            done = subprocess.run(
                [sys.executable, "-c", code],
                env=pipeline.tool_env(env),
                cwd=Path(pipeline.ROOT),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            failed[lesson] = f"preparing its data took over {timeout:.0f} s"
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
            failed[lesson] = f"preparing its data failed: {last[:300]}"
    return failed
