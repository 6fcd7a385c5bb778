"""Test helpers: scratch copies of the course, the reference code, and submissions built from it.

Notebook tests never touch the working tree: each works on a scratch copy with its own
nbgrader work folder, so that they can run in parallel.
"""

import ast
import json
from pathlib import Path

import jupytext

from rnncourse_grader import batch, pipeline

ROOT = pipeline.ROOT


def scratch_course(tmp: Path, with_sources: bool = True) -> tuple[Path, dict]:
    """A copy of the course in ``tmp`` with its own work folder; return (root, env).

    With ``with_sources`` the solution notebooks are built too (for validating them).
    """
    root = pipeline.copy_course(tmp / "course")
    env = {"RNNCOURSE_WORK": str(tmp / "work")}
    if with_sources:
        for lesson_id in pipeline.lesson_ids(root):
            pipeline.build_source_notebook(lesson_id, root)
    return root, env


def solution_cells(lesson_id: str) -> dict[str, str]:
    """grade_id -> source of every answer cell in the reference solution."""
    nb = _solution(lesson_id)
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def _solution(lesson_id: str):
    return jupytext.read(ROOT / "solutions" / lesson_id / f"{lesson_id}.py", fmt="py:percent")


def _run_cells(lesson_id: str, keep) -> dict:
    """Execute the reference solution's code cells for which ``keep(cell)``; return the globals."""
    namespace: dict = {"__name__": f"reference_{lesson_id}"}
    for cell in _solution(lesson_id).cells:
        if cell.cell_type == "code" and keep(cell):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "cell")
            exec(compile(cell.source, f"<{lesson_id}:{grade_id}>", "exec"), namespace)
    return namespace


def reference_namespace(lesson_id: str, skip_graded_tests: bool = True) -> dict:
    """Execute the reference solution's code cells (not its test cells); return the globals.

    Gives tests the reference implementations without copying them into the tests.
    """
    return _run_cells(
        lesson_id, lambda c: not (skip_graded_tests and c.metadata.get("nbgrader", {}).get("grade"))
    )


def make_submission(released: Path, answers: dict[str, str], target: Path) -> Path:
    """Write the released notebook with the given answer cells filled in (by grade_id)."""
    return pipeline.fill_answers(released, answers, target)


def read_notebook_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def hidden_block(lesson_id: str, grade_id: str) -> str:
    """The code between BEGIN and END HIDDEN TESTS in a test cell of the reference solution."""
    cells = _solution(lesson_id).cells
    cell = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    begin, end = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
    return cell.source.split(begin, 1)[1].split(end, 1)[0]


def lesson_functions(lesson_id: str, *names: str) -> dict:
    """Run the reference solution's setup cell and only the cells that define ``names``.

    Much faster than ``reference_namespace`` (no training cells): for tests that need a few of
    a lesson's given or reference functions.
    """

    def keep(cell) -> bool:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "setup":
            return True
        defs = (ast.FunctionDef, ast.ClassDef)
        return any(isinstance(n, defs) and n.name in names for n in ast.parse(cell.source).body)

    namespace = _run_cells(lesson_id, keep)
    missing = [n for n in names if n not in namespace]
    assert not missing, f"{lesson_id} defines no {missing}"
    return namespace


def by_name(fn) -> str:
    """A function's name: test ids for parametrized corpora of answers."""
    return fn.__name__


def grade_one_student(root: Path, env: dict, points: float):
    """Grade the class (one student beside the lesson's canary, two workers): check that the
    run published and the canary got all ``points``; return (the student's result, the
    {test: score} of every test the student lost points on)."""
    run = batch.grade_class(root, env, workers=2, progress=False)
    assert run.ok, run.summary
    (canary,) = run.canaries
    assert canary.full_marks() and sum(c.max_score for c in canary.cells) == points
    (result,) = run.results
    return result, {g.grade_id: g.score for g in result.final if g.score < g.max_score}
