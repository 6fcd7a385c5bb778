"""Helpers for the grading tests (no tests here): a fast copy of lesson 01 and submissions.

The batch, limits and tamper tests grade many notebooks. Lesson 01's training exercise takes
most of its run time, so they use lesson 01 without section 5 (training): the same lesson id,
the same checks, hidden checks and integrity probes, five graded tests worth 10 points, and a
notebook that runs in a few seconds. The full lesson is graded in test_grading_e2e.py.
"""

import json
from pathlib import Path

import jupytext
import nbformat

from rnncourse_grader import pipeline
from tests.course import make_submission, scratch_course, solution_cells

LESSON = "01_rnn_forward"
TESTS = {  # grade id -> points, in the trimmed lesson
    "test_rnn_cell_forward_matches_torch": 2,
    "test_rnn_forward_matches_torch": 3,
    "test_rnn_params_from_torch_reproduces_outputs": 2,
    "test_rnn_num_params_matches_torch": 1,
    "test_sequence_loss_masks_padding": 2,
}
FULL = sum(TESTS.values())


def trimmed_course(tmp: Path, cuts: dict[str, str] | None = None) -> tuple[Path, dict, Path]:
    """A scratch course whose lessons stop before a section; returns (root, env, released).

    ``cuts``: lesson id -> the heading its source is cut at (default: lesson 01 before its
    training section). ``released`` is lesson 01's released notebook.
    """
    root, env = scratch_course(tmp, with_sources=False)
    cuts = cuts or {LESSON: "## 5."}
    for lesson, heading in cuts.items():
        source = root / "solutions" / lesson / f"{lesson}.py"
        nb = jupytext.read(source, fmt="py:percent")
        cut = next(
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and f"\n{heading}" in f"\n{c.source}"
        )
        nb.cells = nb.cells[:cut]
        jupytext.write(nb, source, fmt="py:percent")
    pipeline.release(list(cuts), root=root, env=env)
    released = root / "lessons" / LESSON / f"{LESSON}.ipynb"
    return root, env, released


def reference_answers() -> dict[str, str]:
    return {k: v for k, v in solution_cells(LESSON).items() if k != "train_step"}


def submit(
    root: Path, env: dict, released: Path, student: str, answers: dict, lesson: str = LESSON
) -> Path:
    """Write a submission with these answer cells into the course's submitted/ folder."""
    target = pipeline.work_dir(root, env) / "submitted" / student / lesson / f"{lesson}.ipynb"
    return make_submission(released, answers, target)


def edit(path: Path, change) -> Path:
    """Apply ``change(nb)`` to a submitted notebook (for tricks on cells and metadata)."""
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)
    return path


def cell_scores(root: Path, env: dict, student: str, lesson: str = LESSON) -> dict[str, float]:
    """grade id -> final score (overrides included) of a student's lesson (01 by default)."""
    from nbgrader.api import Gradebook

    db = pipeline.work_dir(root, env) / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        sub = gb.find_submission(lesson, student)
        return {g.name: g.score for nb in sub.notebooks for g in nb.grades}


def expected(**zeroed) -> dict[str, float]:
    """Full marks except the named tests (by a short name: cell, forward, params, count, loss)."""
    short = dict(zip(("cell", "forward", "params", "count", "loss"), TESTS, strict=True))
    return {
        gid: 0.0 if any(short[k] == gid for k in zeroed) else float(p) for gid, p in TESTS.items()
    }


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
