"""Autograde submitted notebooks with nbgrader, write feedback, export grades, summarise.

Submissions sit in ``<work>/submitted/<student>/<lesson>/<lesson>.ipynb`` (nbgrader's layout).
"""

from pathlib import Path

from nbgrader.api import Gradebook

from rnncourse_grader import pipeline


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


def grade(ids: list[str] | None = None, root: Path = pipeline.ROOT, env: dict | None = None):
    """Autograde and write feedback for every submission of the given lessons; export a CSV."""
    by_lesson = submitted(root, env)
    for lesson_id in ids or sorted(by_lesson):
        pipeline.nbgrader("autograde", lesson_id, "--force", root=root, env=env)
        pipeline.nbgrader("generate_feedback", lesson_id, "--force", root=root, env=env)
    csv = pipeline.work_dir(root, env) / "grades.csv"
    pipeline.nbgrader("export", "--to", str(csv), root=root, env=env)
    return scores(root, env), csv


def grade_all(ids: list[str] | None = None) -> int:
    """The ``course grade`` command: grade, then print one line per submission."""
    if not submitted():
        print(f"No submissions in {pipeline.work_dir() / 'submitted'}/<student>/<lesson>/.")
        return 1
    results, csv = grade(ids)
    for (student, lesson), (score, max_score) in sorted(results.items()):
        print(f"{student:20s} {lesson:24s} {score:6.1f} / {max_score:.1f}")
    print(f"grades: {csv}\nfeedback: {pipeline.work_dir() / 'feedback'}")
    return 0
