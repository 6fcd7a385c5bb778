"""Grade a class: import submissions, autograde in parallel, feedback, CSVs, a summary.

Submissions sit in ``<work>/submitted/<student>/<lesson>/<lesson>.ipynb`` (nbgrader's layout);
``importing`` puts a folder or a zip of any common layout there. ``batch`` does the grading
(parallel workers, limits, the integrity pass); this module is the API the CLI and tests use.
"""

import shutil
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook

from rnncourse_grader import batch, importing, late, lms, pipeline
from rnncourse_grader.outcome import GraderFault


def submitted(root: Path = pipeline.ROOT, env: dict | None = None) -> dict[str, list[str]]:
    """lesson id -> students with a submission for it."""
    folder = pipeline.work_dir(root, env) / "submitted"
    found: dict[str, list[str]] = {}
    for lesson in sorted(folder.glob("*/*")) if folder.is_dir() else []:
        if lesson.is_dir():
            found.setdefault(lesson.name, []).append(lesson.parent.name)
    return found


def scores(root: Path = pipeline.ROOT, env: dict | None = None) -> dict[tuple[str, str], tuple]:
    """(student, lesson) -> (score, max_score) from the gradebook."""
    db = pipeline.work_dir(root, env) / "gradebook.db"
    result = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                result[(sub.student_id, assignment.name)] = (sub.score, sub.max_score)
    return result


def import_submissions(
    source: Path,
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    export: lms.Source | None = None,
):
    """Place a folder or zip of submissions into ``<work>/submitted``; return the report.

    ``export``: the source is an LMS's export, placed through its roster (``lms.source``);
    the lessons' due dates come from the gradebook.
    """
    lessons, work = pipeline.lesson_ids(root), pipeline.work_dir(root, env)
    scratch = Path(tempfile.mkdtemp(prefix="rnncourse-import-"))
    try:
        place, notes = None, []
        if export is not None:
            due = late.due_dates(work / "gradebook.db", lessons)
            place = importing.lms_placer(export, lessons, due, notes)
        found = importing.scan(Path(source), lessons, scratch=scratch, place=place)
        found.notes += notes
        importing.install(found, work)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return found


def grade(
    ids: list[str] | None = None,
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    **options,
):
    """Autograde every submission of the given lessons; return (scores, nbgrader's grades.csv).

    ``options`` go to ``batch.grade_class`` (workers, students, limit_overrides, salt, ...).
    """
    options.setdefault("progress", False)
    run = batch.grade_class(root=root, env=env, lessons=ids or None, **options)
    return scores(root, env), run.csv


def grade_all(
    ids: list[str] | None = None,
    source: Path | None = None,
    students: list[str] | None = None,
    workers: int | None = None,
    limit_overrides: dict | None = None,
    export: lms.Source | None = None,
) -> int:
    """The ``course grade`` command: import (optional), grade, print the summary table.

    Exits non-zero when anything is not as it should be: a submission not graded (the
    grader failed: nothing was written for it), a lesson whose reference canary lost points
    (nothing of it was published), a gradebook changed during the run, or a grading run
    that could not finish (a full disk, say).
    """
    if source is not None:
        found = import_submissions(source, export=export)
        print("\n".join(found.lines()))
    if not submitted():
        print(f"No submissions in {pipeline.work_dir() / 'submitted'}/<student>/<lesson>/.")
        return 1
    try:
        run = batch.grade_class(
            lessons=ids or None,
            students=students or None,
            workers=workers,
            limit_overrides=limit_overrides,
        )
    except (GraderFault, OSError) as err:  # the work folder's disk, most often
        print(f"course grade: the grading run failed ({err}); no new grades were published.")
        return 2
    print(run.summary)
    withheld = {(r.student, r.lesson) for r in run.not_graded}
    for r in run.results:
        score, max_score = r.totals()
        shown = (
            "  not graded"
            if (r.student, r.lesson) in withheld
            else f"{score:6.1f} / {max_score:.1f}"
        )
        if r.late_penalty and (r.student, r.lesson) not in withheld:
            shown += f" (late: {r.penalised():.1f} after the penalty)"
        print(f"{r.student:20s} {r.lesson:24s} {shown}  {r.status}")
    work = pipeline.work_dir()
    print(
        f"\n{len(run.results)} notebook(s) in {run.seconds:.0f} s with {run.workers} worker(s)"
        f", {run.retries} retried\n"
        f"grades: {run.csv}, {run.by_notebook.name}, {run.by_cell.name}\n"
        f"feedback: {work / 'feedback'}"
    )
    if run.lms_files:
        print("back to the LMS: " + ", ".join(p.name for p in run.lms_files))
    for lesson, why in run.refused.items():
        print(f"NOT PUBLISHED: {lesson}: {why}")
    for r in run.not_graded:
        print(f"REGRADE: course grade --student {r.student} {r.lesson}")
    return 0 if run.ok else 1
