"""Grade a class in parallel on top of nbgrader, with exactly the grades a serial run gives.

nbgrader grades one submission after another, and its SQLite gradebook is not made for
concurrent writers. Here N worker processes (``worker``) each grade in a private folder with a
private gradebook, one submission at a time; this process is the only writer of the main
gradebook and merges each result as it arrives (removing the student's earlier submission
first: regrading replaces). A submission's grade depends only on that submission, so any N
gives the same grades. A worker that dies costs only the submission it was grading: that one is
retried once on a fresh worker, then recorded as an error; everything merged before stays.
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

from rnncourse_grader import limits as limits_mod
from rnncourse_grader import pipeline, report, sandbox


@dataclasses.dataclass
class Job:
    job: int
    student: str
    lesson: str
    notebook: str
    limits: dict
    seed: int
    timestamp: str | None = None  # nbgrader's timestamp.txt of the submission, if any
    attempts: int = 0

    def message(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if k != "attempts"})


@dataclasses.dataclass
class Run:
    results: list[dict]
    csv: Path
    by_notebook: Path
    by_cell: Path
    summary: str
    seconds: float
    workers: int
    tampered: list[str]


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
    lessons/: generate_assignment writes into a scratch release folder."""
    from nbgrader.api import Gradebook, MissingEntry

    db = pipeline.work_dir(root, env) / "gradebook.db"
    missing = []
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            for lesson in lessons:
                try:
                    gb.find_assignment(lesson)
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


class WorkerProcess:
    def __init__(self, index: int, cfg: dict, run_dir: Path, env: dict):
        self.index, self.cfg, self.run_dir, self.env = index, cfg, run_dir, env
        self.proc = None
        self.start()

    def start(self) -> None:
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

    def ask(self, job: Job, timeout: float) -> tuple[dict | None, str]:
        """Send one job; return (result, "") or (None, why the worker gave no answer)."""
        try:
            self.proc.stdin.write((job.message() + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None, self.death()
        deadline = time.monotonic() + timeout
        fd, buffer = self.proc.stdout.fileno(), b""
        while not buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return None, f"the grading worker took over {timeout:.0f} s and was stopped"
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None, self.death()
                buffer += chunk
        try:
            return json.loads(buffer), ""
        except ValueError:
            self.kill()
            return None, "the grading worker sent a garbled reply"

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


def merge(gb, result: dict, main_work: Path, worker_work: Path | None) -> None:
    """Write one graded submission into the main gradebook (replacing any earlier one)."""
    from nbgrader.api import MissingEntry
    from sqlalchemy.exc import SAWarning

    student, lesson = result["student"], result["lesson"]
    gb.update_or_create_student(student)
    try:
        gb.remove_submission(lesson, student)
    except MissingEntry:
        pass
    from nbgrader.utils import parse_utc

    stamp = {}
    if result.get("timestamp"):
        try:
            stamp = {"timestamp": parse_utc(result["timestamp"])}
        except ValueError:
            pass
    with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy 2's autoflush
        warnings.simplefilter("ignore", SAWarning)
        sub = gb.add_submission(lesson, student, **stamp)
    for folder in ("autograded", "feedback"):
        target = main_work / folder / student / lesson
        if target.exists():
            shutil.rmtree(target)
        source = worker_work / folder / student / lesson if worker_work else None
        if source and source.is_dir() and result["status"] == "graded":
            shutil.copytree(source, target)

    max_by_cell = {}
    for nb in sub.notebooks:
        for g in nb.grades:
            max_by_cell[(nb.name, g.name)] = g.max_score
    if result["status"] == "graded":
        for g in result["grades"]:
            grade = gb.find_grade(g["grade_id"], g["notebook"], lesson, student)
            top = max_by_cell[(g["notebook"], g["grade_id"])]
            grade.auto_score = _clamp(g["auto_score"], top)
            grade.manual_score = _clamp(g["manual_score"], top)
            grade.needs_manual_grade = g["needs_manual_grade"]
        for c in result["comments"]:
            comment = gb.find_comment(c["grade_id"], c["notebook"], lesson, student)
            comment.auto_comment, comment.manual_comment = c["auto_comment"], c["manual_comment"]
        for nb in sub.notebooks:
            nb.flagged = bool(result.get("flagged"))
    else:
        unreadable = result["status"] == "unreadable"
        for nb in sub.notebooks:
            for g in nb.grades:
                g.auto_score = 0.0 if unreadable else None
                g.needs_manual_grade = not unreadable
            nb.flagged = not unreadable
            if unreadable:
                page = main_work / "feedback" / student / lesson / f"{nb.name}.html"
                report.unreadable_feedback(page, student, lesson, result["message"])
    gb.db.commit()
    result["final"] = final_grades(gb, lesson, student)


def _clamp(value, top: float):
    """A score from a worker, kept within the gradebook's own points for that cell."""
    return None if value is None else min(max(float(value), 0.0), top)


def final_grades(gb, lesson: str, student: str) -> list[dict]:
    sub = gb.find_submission(lesson, student)
    return [
        {"notebook": nb.name, "grade_id": g.name, "score": g.score, "max_score": g.max_score}
        for nb in sub.notebooks
        for g in nb.grades
    ]


def status_line(result: dict) -> str | None:
    """One line per submission that did not simply run: errors, limits, integrity."""
    who = f"{result['student']}/{result['lesson']}"
    if result["status"] != "graded":
        return f"{who}: {result['status']}: {result.get('message', '')}"
    problems = [e["kind"].replace("_", " ") for e in result.get("events", [])]
    problems += [f"integrity failed: {f}" for f in report.integrity_failures(result)]
    if result.get("stray_processes_killed"):
        problems.append(f"{result['stray_processes_killed']} leftover process(es) killed")
    return f"{who}: " + "; ".join(problems) if problems else None


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
    from nbgrader.api import Gradebook
    from tqdm import tqdm

    start = time.monotonic()
    root = Path(root)
    work = pipeline.work_dir(root, env)
    found = submissions(work, lessons, students)
    lessons_found = sorted({lesson for _, lesson, _ in found})
    ensure_assignments(lessons_found, root, env)
    salt = salt or secrets.token_hex(16)
    from rnncourse_grader import integrity

    jobs = [
        Job(
            i,
            student,
            lesson,
            str(path),
            dataclasses.asdict(limits_mod.for_lesson(lesson, **(limit_overrides or {}))),
            integrity.seed_for(salt, student, lesson),
            _timestamp(path.parent),
        )
        for i, (student, lesson, path) in enumerate(found)
    ]
    n = max(1, min(workers or default_workers(), len(jobs) or 1))
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=_runs(work)))
    main_db = work / "gradebook.db"
    template_gradebook(main_db, run_dir / "template.db")
    kernel_tmp = Path(tempfile.mkdtemp(prefix="rnncourse-kernels-"))
    # The answers, the course's history and every gradebook: of this course and of the
    # repository the grader is installed from (the same folder in production).
    hide = [str(work), str(run_dir)]
    for base in dict.fromkeys([root, pipeline.ROOT]):
        hide += [str(base / "solutions"), str(base / ".git"), str(base / "autograder" / "work")]
    user = "nobody" if sandbox.can_run_as("nobody") else None
    tool_env = pipeline.tool_env(env)

    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    done: queue.Queue = queue.Queue()

    def serve(index: int) -> None:
        cfg = {
            "root": str(root),
            "work": str(run_dir / f"w{index}"),
            "template_db": str(run_dir / "template.db"),
            "kernel_tmp": str(kernel_tmp / f"w{index}"),
            "hide": hide,
            "user": user,
        }
        proc = WorkerProcess(index, cfg, run_dir, tool_env)
        try:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                lim = job.limits
                timeout = lim["notebook_timeout"] + lim["integrity_timeout"] + 300
                result, why = proc.ask(job, timeout)
                if result is None:
                    job.attempts += 1
                    proc.start()
                    if job.attempts < 2:
                        todo.put(job)
                        continue
                    result = {
                        "job": job.job,
                        "student": job.student,
                        "lesson": job.lesson,
                        "status": "error",
                        "message": why,
                    }
                result["timestamp"] = job.timestamp
                if why:  # no worker folder to take files from
                    done.put((result, None))
                    continue
                ack = threading.Event()
                done.put((result, (Path(cfg["work"]), ack)))
                ack.wait()  # the worker's folder is reset by its next job: merge first
        finally:
            proc.close()

    threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    results = []
    bar = tqdm(total=len(jobs), unit="nb", desc="grading", disable=not progress, file=sys.stderr)
    with Gradebook(f"sqlite:///{main_db}") as gb:
        while len(results) < len(jobs):
            result, handle = done.get()
            try:
                merge(gb, result, work, handle[0] if handle else None)
            finally:
                if handle:
                    handle[1].set()
            results.append(result)
            line = status_line(result)
            if line:
                bar.write(line)
            bar.update()
    bar.close()
    for t in threads:
        t.join()
    shutil.rmtree(kernel_tmp, ignore_errors=True)

    tampered = verify(main_db, results)
    for line in tampered:
        echo(f"WARNING: {line}")
    csv_path = work / "grades.csv"
    pipeline.nbgrader("export", "--to", str(csv_path), root=root, env=env)
    by_notebook, by_cell = report.write_csvs(results, work)
    text = report.summary(results)
    logs = work / "logs"  # the workers' logs of the last run, for when something went wrong
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    for log in run_dir.glob("worker-*.log"):
        shutil.copyfile(log, logs / log.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    return Run(
        results=sorted(results, key=lambda r: (r["lesson"], r["student"])),
        csv=csv_path,
        by_notebook=by_notebook,
        by_cell=by_cell,
        summary=text,
        seconds=time.monotonic() - start,
        workers=n,
        tampered=tampered,
    )


def _timestamp(folder: Path) -> str | None:
    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return None
    return stamp.read_text().strip()[:64] or None


def _runs(work: Path) -> Path:
    folder = work / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def verify(main_db: Path, results: list[dict]) -> list[str]:
    """Compare the main gradebook with what this run merged: any change came from elsewhere."""
    from nbgrader.api import Gradebook, MissingEntry

    problems = []
    with Gradebook(f"sqlite:///{main_db}") as gb:
        for r in results:
            try:
                now = final_grades(gb, r["lesson"], r["student"])
            except MissingEntry:
                problems.append(f"{r['student']}/{r['lesson']}: submission vanished from gradebook")
                continue
            if now != r.get("final"):
                problems.append(f"{r['student']}/{r['lesson']}: gradebook changed outside grader")
    return problems
