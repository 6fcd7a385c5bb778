"""nbgrader's exchange on one machine: the instructor and each student as separate identities.

The loop (nbgrader's own commands; the instructor's run from ``autograder/``)::

    instructor  nbgrader release_assignment ID     lessons/ID -> <exchange>/rnn-course/outbound
    student     nbgrader fetch_assignment ID       -> ./ID/ in the student's folder
    student     nbgrader submit ID                 ./ID/ -> <exchange>/rnn-course/inbound
    instructor  nbgrader collect ID                -> <work>/submitted/<student>/ID/
    instructor  course grade ID                    autograde + generate_feedback + grades.csv
    instructor  nbgrader release_feedback ID       -> <exchange>/rnn-course/feedback
    student     nbgrader fetch_feedback ID         -> ./ID/feedback/<timestamp>/ID.html

The instructor's settings (course id, course directory, gradebook, ``Exchange.root``) are in
``autograder/nbgrader_config.py``. A student needs only the course id and the exchange:
``autograder/jupyterhub/everyone/nbgrader_config.py``, which the course's JupyterHub puts on
every user's config path (on a lab server without a hub: ``/etc/jupyter/nbgrader_config.py``).
Submissions are filed under the JupyterHub user's name, else the OS account's. ``Student``
below simulates students who share one OS account (a rehearsal before the term, and the
tests): each gets a private HOME, so a private Jupyter config and submission cache, and a
name, given to nbgrader as JupyterHub gives it (``JUPYTERHUB_USER``).
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rnncourse_grader import pipeline

COURSE_ID = "rnn-course"
STUDENT_CONFIG = pipeline.ROOT / "autograder" / "jupyterhub" / "everyone" / "nbgrader_config.py"
# Environment variables that would let a student's nbgrader read someone else's configuration.
_INSTRUCTOR_ONLY = ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "RNNCOURSE_WORK")


def exchange_root(root: Path = pipeline.ROOT, env: dict | None = None) -> Path:
    """The exchange the course's config uses: $RNNCOURSE_EXCHANGE, else <work>/exchange."""
    override = (env or {}).get("RNNCOURSE_EXCHANGE") or os.environ.get("RNNCOURSE_EXCHANGE")
    return Path(override).resolve() if override else pipeline.work_dir(root, env) / "exchange"


def release_assignment(lesson_id: str, root: Path = pipeline.ROOT, env: dict | None = None):
    """Publish lessons/<id> to the exchange (the lesson must have been released with nbgrader)."""
    return pipeline.nbgrader("release_assignment", lesson_id, "--force", root=root, env=env)


def collect(lesson_id: str, root: Path = pipeline.ROOT, env: dict | None = None):
    """Copy every student's latest submission into <work>/submitted/ (newer ones replace old)."""
    return pipeline.nbgrader("collect", lesson_id, "--update", root=root, env=env)


def release_feedback(lesson_id: str, root: Path = pipeline.ROOT, env: dict | None = None):
    """Publish the feedback HTML of <work>/feedback/*/<id>/ to the exchange."""
    return pipeline.nbgrader("release_feedback", lesson_id, root=root, env=env)


@dataclass
class Student:
    """One student identity on a shared OS account: own HOME, Jupyter config and course folder.

    ``exchange`` is the shared exchange root; ``home`` a private folder for this student.
    """

    name: str
    home: Path
    exchange: Path

    @property
    def folder(self) -> Path:
        """Where the student works: lessons are fetched into it and submitted from it."""
        return self.home / "rnn-course"

    def setup(self) -> "Student":
        """Install the students' nbgrader config in this identity's Jupyter config folder."""
        config_dir = self.home / ".jupyter"
        config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(STUDENT_CONFIG, config_dir / "nbgrader_config.py")
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in _INSTRUCTOR_ONLY}
        data = self.home / ".local" / "share" / "jupyter"
        env.update(
            HOME=str(self.home),
            JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
            JUPYTER_DATA_DIR=str(data),  # nbgrader's submission cache lives here
            JUPYTER_RUNTIME_DIR=str(data / "runtime"),
            RNNCOURSE_EXCHANGE=str(self.exchange),
            JUPYTERHUB_USER=self.name,  # who submits (see everyone/nbgrader_config.py)
        )
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def nbgrader(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run nbgrader as this student, in the student's folder; raise with its output on error."""
        result = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{self.name}: nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def fetch(self, lesson_id: str) -> Path:
        """``nbgrader fetch_assignment``; return the fetched lesson folder."""
        self.nbgrader("fetch_assignment", lesson_id)
        return self.folder / lesson_id

    def submit(self, lesson_id: str) -> subprocess.CompletedProcess:
        return self.nbgrader("submit", lesson_id)

    def fetch_feedback(self, lesson_id: str) -> list[Path]:
        """``nbgrader fetch_feedback``; return the feedback HTML files the student now has."""
        self.nbgrader("fetch_feedback", lesson_id)
        return sorted((self.folder / lesson_id / "feedback").glob(f"*/{lesson_id}.html"))

    def list(self, *flags: str) -> str:
        """``nbgrader list`` (``--cached`` lists this student's submissions)."""
        result = self.nbgrader("list", *flags)
        return result.stdout + result.stderr
