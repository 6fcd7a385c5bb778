"""Grade a class in parallel on top of nbgrader, with exactly the grades a serial run gives.

nbgrader grades one submission after another, and its SQLite gradebook is not made for
concurrent writers. Here N worker processes (``worker``) each grade in a private folder with a
private gradebook, one submission at a time, and stage what they made in the run's outbox;
this process is the only writer of the main gradebook. A submission's grade depends only on
that submission, so any N gives the same grades.

A run has four stages, each with one place where a failure is classified (``outcome``):

1. ``plan``: the submissions, one job each, plus a *reference canary* per lesson (the
   lesson's reference answers, graded like a student, in the same workers and limits);
2. ``prepare``: what the lessons need before any kernel runs (lesson 05's data cache);
3. ``Pool.run``: the jobs on N workers. A ``grader`` outcome (the kernel never started, the
   worker died or hung, the integrity runner failed, the disk is full) is retried on a
   fresh worker with back-off, up to ``MAX_ATTEMPTS``; if it persists it stays *not graded*;
4. ``publish``: a lesson whose canary did not get full marks is not published at all (its
   limits or its environment are broken, so every grade of it would be suspect); otherwise
   every ``graded`` and ``student`` result is merged (replacing the student's earlier
   submission), and the *not graded* ones are written nowhere: not in the gradebook, not as
   points in a CSV, not in the feedback. ``course grade`` exits non-zero naming them.
"""

import dataclasses
import json
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from rnncourse_grader import late, lms_grades, pipeline, report, sandbox
from rnncourse_grader import limits as limits_mod
from rnncourse_grader.outcome import FinalGrade, GradeResult, GraderFault, Job, Status
from rnncourse_grader.prepare import prepare

MAX_ATTEMPTS = 3  # a grader failure is tried this many times in all
BACKOFF_S = (2.0, 8.0)  # wait before the 2nd and the 3rd attempt (a busy machine recovers)
CANARY = "reference-canary"  # the student id of the lessons' reference submissions


@dataclasses.dataclass
class Run:
    results: list[GradeResult]  # the students' (canaries apart), sorted by lesson and student
    canaries: list[GradeResult]
    refused: dict[str, str]  # lesson -> why none of its grades were published
    csv: Path
    by_notebook: Path
    by_cell: Path
    summary: str
    seconds: float
    workers: int
    tampered: list[str]
    retries: int  # grader failures that were tried again
    lms_files: list[Path] = dataclasses.field(default_factory=list)  # grades and feedback back

    @property
    def not_graded(self) -> list[GradeResult]:
        """Submissions for which nothing was written: to regrade."""
        return [r for r in self.results if not r.written or r.lesson in self.refused]

    @property
    def ok(self) -> bool:
        return not (self.tampered or self.refused or self.not_graded)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def submissions(work: Path, lessons: list[str] | None, students: list[str] | None):
    """(student, lesson, notebook path) under ``work/submitted``."""
    found = []
    for nb in sorted((work / "submitted").glob("*/*/*.ipynb")):
        student, lesson = nb.parent.parent.name, nb.parent.name
        if nb.stem != lesson:
            continue
        if (lessons and lesson not in lessons) or (students and student not in students):
            continue
        found.append((student, lesson, nb))
    return found


def ensure_assignments(lessons: list[str], root: Path, env: dict | None) -> None:
    """Record lessons missing from the gradebook (what `course release` does) without touching
    lessons/: generate_assignment writes into a scratch release folder. A lesson recorded
    without its notebooks (``nbgrader db assignment add ID --duedate=...`` before any release)
    is completed the same way; its due date stays."""
    from nbgrader.api import Gradebook, MissingEntry

    db = pipeline.work_dir(root, env) / "gradebook.db"
    missing = []
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            for lesson in lessons:
                try:
                    if not gb.find_assignment(lesson).notebooks:
                        missing.append(lesson)
                except MissingEntry:
                    missing.append(lesson)
    else:
        missing = list(lessons)
    for lesson in missing:
        pipeline.build_source_notebook(lesson, root)
        with tempfile.TemporaryDirectory() as scratch:
            pipeline.nbgrader(
                "generate_assignment",
                lesson,
                "--force",
                f"--CourseDirectory.release_directory={scratch}",
                root=root,
                env=env,
            )


def template_gradebook(main_db: Path, target: Path) -> None:
    """A copy of the gradebook with the lessons and no students (what each worker starts from)."""
    from nbgrader.api import Gradebook

    shutil.copyfile(main_db, target)
    with Gradebook(f"sqlite:///{target}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)


# ----------------------------------------------------------------------------- 1. plan
def plan(root, work, run_dir, lessons, students, limit_overrides, salt) -> list[Job]:
    """One job per submission, and a canary per lesson first (a broken lesson shows early)."""
    from rnncourse_grader import integrity

    found = submissions(work, lessons, students)
    lessons_found = sorted({lesson for _, lesson, _ in found})
    entries = [(CANARY, lesson, _canary(root, run_dir, lesson)) for lesson in lessons_found]
    jobs = []
    for i, (student, lesson, path) in enumerate(entries + found):
        lim = limits_mod.for_lesson(lesson, root, **(limit_overrides or {}))
        jobs.append(
            Job(
                job=i,
                student=student,
                lesson=lesson,
                notebook=str(path),
                limits=dataclasses.asdict(lim),
                seed=integrity.seed_for(salt, student, lesson),
                timestamp=None if i < len(entries) else _timestamp(path.parent),
                canary=i < len(entries),
            )
        )
    return jobs


def _canary(root: Path, run_dir: Path, lesson: str) -> Path:
    target = run_dir / "canary" / lesson / f"{lesson}.ipynb"
    return pipeline.reference_submission(lesson, target, root)


# ----------------------------------------------------------------------------- 3. the pool
class WorkerProcess:
    def __init__(self, index: int, cfg: dict, run_dir: Path, env: dict):
        self.index, self.cfg, self.run_dir, self.env = index, cfg, run_dir, env
        self.proc = None
        self.start()

    def start(self) -> None:
        self.kill()
        cfg_path = self.run_dir / f"worker-{self.index}.json"
        cfg_path.write_text(json.dumps(self.cfg))
        log = (self.run_dir / f"worker-{self.index}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnncourse_grader.worker", str(cfg_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self.env,
            start_new_session=True,
        )
        log.close()

    def ask(self, job: Job, timeout: float) -> GradeResult:
        """Send one job and wait for its result; no answer is a ``grader`` result."""
        try:
            self.proc.stdin.write((job.to_json() + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return _failed(job, self.death())
        deadline = time.monotonic() + timeout
        fd, buffer = self.proc.stdout.fileno(), b""
        while not buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return _failed(job, f"the grading worker took over {timeout:.0f} s and was stopped")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return _failed(job, self.death())
                buffer += chunk
        try:
            return GradeResult.from_json(buffer)
        except (ValueError, TypeError, KeyError):
            self.kill()
            return _failed(job, "the grading worker sent a garbled reply")

    def death(self) -> str:
        self.kill()
        code = self.proc.returncode
        how = f"status {code}" if code is None or code >= 0 else signal.Signals(-code).name
        return f"the grading worker died ({how})"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        if self.proc:
            self.proc.wait()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _failed(job: Job, why: str) -> GradeResult:
    result = GradeResult(job.job, job.student, job.lesson, canary=job.canary)
    return result.fail(Status.GRADER, why)


class Pool:
    """N worker threads, each driving one worker process; retries grader failures.

    ``refuse(lesson, why)`` stops a lesson: its jobs not yet started end as not graded
    at once (used when its canary fails: nothing of it will be published anyway).
    """

    def __init__(self, n: int, worker_cfg, run_dir: Path, env: dict):
        self.n, self.worker_cfg, self.run_dir, self.env = n, worker_cfg, run_dir, env
        self.todo: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        self.refused: dict[str, str] = {}
        self.retries = 0
        self._open = 0
        self._lock = threading.Lock()

    def run(self, jobs: list[Job]):
        """Yield each job's final result as it is ready (in no particular order)."""
        self._open = len(jobs)
        for job in jobs:
            self.todo.put((0.0, job))
        threads = [
            threading.Thread(target=self._serve, args=(i,), daemon=True) for i in range(self.n)
        ]
        for t in threads:
            t.start()
        for _ in jobs:
            yield self.done.get()
        for t in threads:
            t.join()

    def refuse(self, lesson: str, why: str) -> None:
        self.refused.setdefault(lesson, why)

    def _serve(self, index: int) -> None:
        proc = WorkerProcess(index, self.worker_cfg(index), self.run_dir, self.env)
        try:
            while (item := self._next()) is not None:
                not_before, job = item
                time.sleep(max(0.0, not_before - time.monotonic()))
                result = self._grade(proc, job)
                if result.status is Status.GRADER:
                    proc.start()  # a fresh worker for whatever comes next
                    if job.attempts + 1 < MAX_ATTEMPTS and job.lesson not in self.refused:
                        job.attempts += 1
                        with self._lock:
                            self.retries += 1
                        self.todo.put((time.monotonic() + BACKOFF_S[job.attempts - 1], job))
                        continue
                with self._lock:
                    self._open -= 1
                self.done.put(result)
        finally:
            proc.close()

    def _next(self):
        while True:
            try:
                return self.todo.get(timeout=0.2)
            except queue.Empty:
                with self._lock:
                    if self._open == 0:
                        return None

    def _grade(self, proc: WorkerProcess, job: Job) -> GradeResult:
        if job.lesson in self.refused:
            return _failed(job, f"not graded: {self.refused[job.lesson]}")
        lim = job.limits
        timeout = lim["notebook_timeout"] + lim["integrity_timeout"] + 300
        try:
            result = proc.ask(job, timeout)
        except Exception as err:  # this process's own failure: never the student's
            result = _failed(job, f"grader error: {type(err).__name__}: {err}")
        result.attempts, result.timestamp, result.canary = (
            job.attempts + 1,
            job.timestamp,
            job.canary,
        )
        return result


# ----------------------------------------------------------------------------- 4. publish
def canary_problem(canary: GradeResult) -> str | None:
    """Why a lesson's reference did not get full marks (None: it did)."""
    if canary.full_marks():
        return None
    if canary.status is Status.GRADER:
        return f"its reference notebook could not be graded: {canary.message}"
    if canary.events:  # a limit acted on the reference: every student would pay for it
        notes = "; ".join(e.note() for e in canary.events)
        return f"its reference notebook lost points to the grader's limits ({notes})"
    lost = [c for c in canary.cells if c.score < c.max_score]
    why = "; ".join(f"{c.grade_id}: {c.overridden or c.message or 'no points'}" for c in lost)
    return f"its reference notebook lost points (is its environment complete?): {why}"


def merge(gb, result: GradeResult, main_work: Path, config) -> None:
    """Write one graded submission into the main gradebook (replacing any earlier one), with
    the late penalty the course's plugin gives its final scores (``config``: nbgrader's)."""
    from nbgrader.api import MissingEntry
    from nbgrader.utils import parse_utc
    from sqlalchemy.exc import SAWarning

    student, lesson = result.student, result.lesson
    gb.update_or_create_student(student)
    try:
        gb.remove_submission(lesson, student)
    except MissingEntry:
        pass
    stamp = {}
    if result.timestamp:
        try:
            stamp = {"timestamp": parse_utc(result.timestamp)}
        except ValueError:
            pass
    with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy 2's autoflush
        warnings.simplefilter("ignore", SAWarning)
        sub = gb.add_submission(lesson, student, **stamp)
    for folder in ("autograded", "feedback"):
        target = main_work / folder / student / lesson
        if target.exists():
            shutil.rmtree(target)
        source = Path(result.outputs) / folder if result.outputs else None
        if source and source.is_dir():
            shutil.copytree(source, target)
    if result.unreadable:
        _zero(sub, main_work, result)
    else:
        _scores(gb, sub, result)
    gb.db.commit()
    lateness = late.assess(gb, lesson, student, config)
    gb.db.commit()
    result.seconds_late, result.late_penalty = lateness.seconds_late, lateness.penalty
    result.final = final_grades(gb, lesson, student)


def _scores(gb, sub, result: GradeResult) -> None:
    top = {(nb.name, g.name): g.max_score for nb in sub.notebooks for g in nb.grades}
    for c in result.cells:
        grade = gb.find_grade(c.grade_id, c.notebook, result.lesson, result.student)
        grade.auto_score = _clamp(c.auto_score, top[(c.notebook, c.grade_id)])
        grade.manual_score = _clamp(c.manual_score, top[(c.notebook, c.grade_id)])
        grade.needs_manual_grade = c.needs_manual_grade
    for c in result.comments:
        comment = gb.find_comment(c.grade_id, c.notebook, result.lesson, result.student)
        comment.auto_comment, comment.manual_comment = c.auto_comment, c.manual_comment
    for nb in sub.notebooks:
        nb.flagged = result.flagged


def _zero(sub, main_work: Path, result: GradeResult) -> None:
    """An unreadable notebook: zero for every cell, and a feedback page saying why."""
    for nb in sub.notebooks:
        for g in nb.grades:
            g.auto_score, g.needs_manual_grade = 0.0, False
        page = main_work / "feedback" / result.student / result.lesson / f"{nb.name}.html"
        report.unreadable_feedback(page, result.student, result.lesson, result.message)


def _clamp(value, top: float):
    """A score from a worker, kept within the gradebook's own points for that cell."""
    return None if value is None else min(max(float(value), 0.0), top)


def final_grades(gb, lesson: str, student: str) -> list[FinalGrade]:
    sub = gb.find_submission(lesson, student)
    return [
        FinalGrade(nb.name, g.name, g.score, g.max_score) for nb in sub.notebooks for g in nb.grades
    ]


def status_line(result: GradeResult) -> str | None:
    """One line per submission that did not simply run: errors, limits, integrity."""
    who = f"{result.student}/{result.lesson}"
    if result.status is Status.GRADER:
        tries = f" (after {result.attempts} attempts)" if result.attempts > 1 else ""
        return f"{who}: NOT GRADED{tries}: {result.message}"
    if result.unreadable:
        return f"{who}: unreadable: {result.message}"
    problems = [e.kind.replace("_", " ") for e in result.events]
    problems += [f"integrity failed: {f}" for f in result.integrity_failures()]
    if result.stray_processes_killed:
        problems.append(f"{result.stray_processes_killed} leftover process(es) killed")
    if result.attempts > 1:
        problems.append(f"graded at attempt {result.attempts}")
    return f"{who}: " + "; ".join(problems) if problems else None


@dataclasses.dataclass
class Published:
    """What ``publish`` wrote."""

    tampered: list[str]
    csv: Path  # nbgrader's grades.csv
    by_notebook: Path
    by_cell: Path
    lms_files: list[Path]  # grade files and feedback bundles for the LMSs submissions came from


def publish(results, refused, root, env, main_db: Path) -> Published:
    """Merge what may be written; the CSVs, and the files that take grades back to an LMS."""
    from nbgrader.api import Gradebook

    work = pipeline.work_dir(root, env)
    written = [r for r in results if r.written and r.lesson not in refused]
    withheld = {(r.student, r.lesson) for r in results if r not in written}
    csv_path = work / "grades.csv"
    try:
        config = pipeline.nbgrader_config(root)
        with Gradebook(f"sqlite:///{main_db}") as gb:
            for result in written:
                merge(gb, result, work, config)
        tampered = verify(main_db, written)
        pipeline.nbgrader("export", "--to", str(csv_path), root=root, env=env)
        report.blank_rows(csv_path, withheld)
        by_notebook, by_cell = report.write_csvs(results, work, withheld)
        lms_files = lms_grades.write(results, work, withheld)
    except Exception as err:  # a full disk, a locked gradebook: the run failed, say so
        raise GraderFault(f"publishing the grades failed: {type(err).__name__}: {err}") from err
    return Published(tampered, csv_path, by_notebook, by_cell, lms_files)


# ----------------------------------------------------------------------------- the run
def grade_class(
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    lessons: list[str] | None = None,
    students: list[str] | None = None,
    workers: int | None = None,
    limit_overrides: dict | None = None,
    salt: str | None = None,
    progress: bool = True,
    echo=print,
) -> Run:
    """Autograde every submission in ``<work>/submitted`` (or the given lessons/students)."""
    start, root = time.monotonic(), Path(root)
    work = pipeline.work_dir(root, env)
    lessons_found = sorted({lesson for _, lesson, _ in submissions(work, lessons, students)})
    ensure_assignments(lessons_found, root, env)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=_runs(work)))
    kernel_tmp = Path(tempfile.mkdtemp(prefix="rnncourse-kernels-"))
    try:
        jobs = plan(
            root, work, run_dir, lessons, students, limit_overrides, salt or secrets.token_hex(16)
        )
        template_gradebook(work / "gradebook.db", run_dir / "template.db")
        n = max(1, min(workers or default_workers(), len(jobs) or 1))
        pool = Pool(
            n, _worker_config(root, work, run_dir, kernel_tmp), run_dir, pipeline.tool_env(env)
        )
        for lesson, why in prepare(lessons_found, env, root).items():
            pool.refuse(lesson, why)
        results, canaries = _collect(pool, jobs, progress)
        published = publish(results, pool.refused, root, env, work / "gradebook.db")
    finally:
        _keep_logs(run_dir, work)
        shutil.rmtree(kernel_tmp, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    for line in published.tampered:
        echo(f"WARNING: {line}")
    return Run(
        results=sorted(results, key=lambda r: (r.lesson, r.student)),
        canaries=canaries,
        refused=dict(pool.refused),
        csv=published.csv,
        by_notebook=published.by_notebook,
        by_cell=published.by_cell,
        summary=report.summary(results, pool.refused),
        seconds=time.monotonic() - start,
        workers=n,
        tampered=published.tampered,
        retries=pool.retries,
        lms_files=published.lms_files,
    )


def _collect(pool: Pool, jobs: list[Job], progress: bool):
    """Run the pool with a progress bar; a failing canary stops its lesson at once."""
    from tqdm import tqdm

    results, canaries = [], []
    bar = tqdm(total=len(jobs), unit="nb", desc="grading", disable=not progress, file=sys.stderr)
    for result in pool.run(jobs):
        if result.canary:
            canaries.append(result)
            why = canary_problem(result)
            if why:
                pool.refuse(result.lesson, why)
                bar.write(f"{result.lesson}: NOT PUBLISHED: {why}")
        else:
            results.append(result)
            line = status_line(result)
            if line:
                bar.write(line)
        bar.update()
    bar.close()
    return results, canaries


def _worker_config(root: Path, work: Path, run_dir: Path, kernel_tmp: Path):
    # The answers, the course's history and every gradebook: of this course and of the
    # repository the grader is installed from (the same folder in production).
    hide = [str(work), str(run_dir)]
    for base in dict.fromkeys([root, pipeline.ROOT]):
        hide += [str(base / "solutions"), str(base / ".git"), str(base / "autograder" / "work")]
    user = "nobody" if sandbox.can_run_as("nobody") else None

    def config(index: int) -> dict:
        return {
            "root": str(root),
            "work": str(run_dir / f"w{index}"),
            "outbox": str(run_dir / "outbox"),
            "template_db": str(run_dir / "template.db"),
            "kernel_tmp": str(kernel_tmp / f"w{index}"),
            "hide": hide,
            "user": user,
        }

    return config


def _keep_logs(run_dir: Path, work: Path) -> None:
    """The workers' logs of the last run, for when something went wrong."""
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    try:
        logs.mkdir()
        for log in run_dir.glob("worker-*.log"):
            shutil.copyfile(log, logs / log.name)
    except OSError:  # a full disk: the run's own error says so
        pass


def _timestamp(folder: Path) -> str | None:
    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return None
    return stamp.read_text().strip()[:64] or None


def _runs(work: Path) -> Path:
    folder = work / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def verify(main_db: Path, results: list[GradeResult]) -> list[str]:
    """Compare the main gradebook with what this run merged: any change came from elsewhere."""
    from nbgrader.api import Gradebook, MissingEntry

    problems = []
    with Gradebook(f"sqlite:///{main_db}") as gb:
        for r in results:
            try:
                now = final_grades(gb, r.lesson, r.student)
            except MissingEntry:
                problems.append(f"{r.student}/{r.lesson}: submission vanished from gradebook")
                continue
            if now != r.final:
                problems.append(f"{r.student}/{r.lesson}: gradebook changed outside grader")
    return problems
