"""nbgrader configuration for the course (read from this folder: run nbgrader here).

Maps nbgrader's course directory onto the repository: source -> solutions/, release ->
lessons/, and every work folder under autograder/work/ (gitignored).
"""

import os
from pathlib import Path

from rnncourse_grader.manifest import handed_in_by_lesson

c = get_config()  # noqa: F821

ROOT = Path(__file__).resolve().parent.parent
# RNNCOURSE_WORK moves grading state elsewhere (tests and batch workers use private folders).
WORK = Path(os.environ.get("RNNCOURSE_WORK", ROOT / "autograder" / "work")).resolve()
# The gradebook's folder must exist before nbgrader opens it.
WORK.mkdir(parents=True, exist_ok=True)
# nbgrader's exchange (release_assignment, fetch, submit, collect, feedback): a folder that the
# instructor and every student can write. RNNCOURSE_EXCHANGE points at a shared one on a lab
# server or JupyterHub (e.g. /srv/nbgrader/exchange, mode 1777); by default it is private.
EXCHANGE = Path(os.environ.get("RNNCOURSE_EXCHANGE", WORK / "exchange")).resolve()
try:
    EXCHANGE.mkdir(parents=True, exist_ok=True)
except OSError:
    pass  # a shared exchange the admin has not created yet: nbgrader says so when it is used

c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.submitted_directory = str(WORK / "submitted")
c.CourseDirectory.autograded_directory = str(WORK / "autograded")
c.CourseDirectory.feedback_directory = str(WORK / "feedback")
c.CourseDirectory.db_url = f"sqlite:///{WORK / 'gradebook.db'}"
# generate_assignment copies every non-notebook file of solutions/<id>/ to students; the
# jupytext sources (*.py) are the instructor's answers and must never be copied.
# The lesson's manifest (lesson.toml) is the grader's.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "*.py",
    "lesson.toml",
]
# Files a lesson grades beside the notebook (its manifest's `handed_in`, e.g. lesson 05's
# checkpoint): the instructor's own (left beside the solution by running it) must never be
# copied over the student's at autograde. (Not in `ignore`: nbgrader applies that list to the
# student's files too, and would drop theirs.)
c.Autograde.exclude_overwriting = handed_in_by_lesson(ROOT)
c.Exchange.root = str(EXCHANGE)
# Where the instructor's own assignment list (the student view in `make lab`) fetches lessons:
# a gitignored folder, not the repository root. Students have their own config (see
# autograder/jupyterhub/everyone/nbgrader_config.py) and fetch into their working folder.
c.Exchange.assignment_dir = str(WORK / "student")
(WORK / "student").mkdir(exist_ok=True)  # the assignment list changes into it before fetching
# The instructor's commands act on every student, whatever a global config names.
c.CourseDirectory.student_id = "*"

# Every released notebook starts with the course header (name, how to submit).
c.IncludeHeaderFooter.header = str(ROOT / "autograder" / "header.ipynb")

# Training cells need more than nbgrader's default 30 s per cell: lesson 05's smoke training
# took 259 s on two busy CPU cores. (`course grade` applies its own per-lesson limits.)
c.Execute.timeout = 600
# A harmless library warning on stderr must not zero a correct answer at autograde.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\b[A-Za-z]*Warning: "  # e.g. "UserWarning: ..." from warnings.warn
