"""A grading worker: ``python -m rnncourse_grader.worker CONFIG.json`` (started by ``batch``).

Reads jobs (one JSON object per line) on stdin and answers each with one JSON line on a
private copy of stdout. Per job, in its own work folder (a private gradebook, ``submitted/``,
``autograded/``, ``feedback/``, reset every time from a gradebook holding only the lessons):

1. reads the submission defensively and rebuilds its graded cells from the release
   (``sanitize``);
2. runs nbgrader's autograde in this process with ``LimitedExecute`` and the sandboxed kernel;
3. kills whatever the student's code left running (this process is a child subreaper, so
   even double-forked daemons come back to it);
4. runs the integrity pass and writes its overrides into the private gradebook;
5. generates the feedback HTML, with the grader's notes on top;
6. stages the autograded notebook and the feedback in the run's outbox and replies with one
   ``GradeResult``: every grade, comment and note, and whose failure it was if something
   failed (see ``outcome``). The parent merges the results into the main gradebook once the
   class and the reference canaries are graded: it is the only process that writes there.

Kernels talk to the worker over ipc sockets in a folder of the worker's own: no TCP port is
chosen in advance, so kernels starting at once cannot take each other's ports.

The kernel never inherits the reply channel: fd 1 points to /dev/null before any kernel
starts, and stderr goes to the worker's log file.
"""

import ctypes
import html
import json
import logging
import os
import pwd
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from rnncourse_grader import pipeline
from rnncourse_grader.outcome import CellGrade, Comment, GradeResult, GraderFault, Job, Status

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def reap_strays() -> int:
    """Kill every process left under this one (kernels' leftovers, daemons); return how many."""
    if not Path("/proc/self/stat").exists():
        return 0
    killed = 0
    for _ in range(50):
        kids = _children(os.getpid())
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


class ErrorLog(logging.Handler):
    """Keeps the error lines nbgrader logs during a job (for the one-line status)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage().strip().splitlines()[0][:300] if record.msg else "")


def _outputs_verdict(cell) -> tuple[bool, str]:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return False, f"{output.get('ename')}: {output.get('evalue', '')}".strip()[:300]
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return False, "wrote to stderr: " + output.get("text", "").strip()[:200]
    return True, ""


def inject_notes(html_path: Path, notes: list[str]) -> None:
    """Put the grader's notes at the top of a feedback page."""
    if not notes or not html_path.is_file():
        return
    page = html_path.read_text(encoding="utf-8")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    block = (
        '<div id="rnncourse-grading-notes" style="border:2px solid #c60;padding:0.5em 1em;'
        'margin:1em;background:#fff8f0"><h2>Notes from the grader</h2>'
        f"<ul>{items}</ul></div>"
    )
    at = page.find(">", page.find("<body")) + 1 if "<body" in page else 0
    os.chmod(html_path, 0o644)
    html_path.write_text(page[:at] + block + page[at:], encoding="utf-8")


class Worker:
    """Grades one job at a time in ``cfg["work"]``; each stage below owns one kind of failure.

    ``read`` (the student's: an unreadable notebook), ``autograde`` (the student's when a limit
    acted, the grader's when nbgrader raised or the kernel never started), ``check_integrity``
    (the grader's when the runner itself failed), then ``feedback``, ``collect`` and ``stage``
    (any error there is the grader's: a full disk, a broken gradebook).
    """

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.root = Path(cfg["root"])
        self.work = Path(cfg["work"])
        self.outbox = Path(cfg["outbox"])
        self.template_db = Path(cfg["template_db"])
        self.kernel_tmp = Path(cfg["kernel_tmp"])
        self.templates: dict = {}
        self.errors = ErrorLog()
        logging.getLogger().addHandler(self.errors)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.work / 'gradebook.db'}"

    def reset(self) -> None:
        for name in ("submitted", "autograded", "feedback"):
            shutil.rmtree(self.work / name, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.template_db, self.work / "gradebook.db")
        shutil.rmtree(self.kernel_tmp, ignore_errors=True)
        self.ipc_dir.mkdir(parents=True)
        if self.cfg.get("user"):  # the kernel binds its sockets here
            entry = pwd.getpwnam(self.cfg["user"])
            os.chown(self.ipc_dir, entry.pw_uid, entry.pw_gid)
        self.errors.lines.clear()

    @property
    def ipc_dir(self) -> Path:
        """The kernel's sockets: files in a folder of this worker's, never a TCP port."""
        return self.kernel_tmp / "ipc"

    def template(self, lesson: str):
        import nbformat

        if lesson not in self.templates:
            path = self.root / "lessons" / lesson / f"{lesson}.ipynb"
            self.templates[lesson] = nbformat.read(path, as_version=4)
        return self.templates[lesson]

    def config(self, limits):
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.preprocessors import (
            AssignLatePenalties,
            CheckCellMetadata,
            IgnorePattern,
            LimitOutput,
            SaveAutoGrades,
        )

        from rnncourse_grader.limits import KERNEL_NAME, LimitedExecute

        c = pipeline.nbgrader_config(self.root)
        c.Autograde.autograde_preprocessors = [
            LimitedExecute,
            IgnorePattern,
            ClearMetadataPreprocessor,
            LimitOutput,
            SaveAutoGrades,
            AssignLatePenalties,
            CheckCellMetadata,
        ]
        c.OverwriteCells.add_missing_cells = True
        c.LimitedExecute.kernel_name = KERNEL_NAME
        c.LimitedExecute.startup_timeout = 300  # a loaded machine can take long to import torch
        # After a cell's reply, how long its last output may lag; past it the kernel counts as
        # hung (nbclient's 4 s misfires on a loaded machine and would cost the later cells).
        c.LimitedExecute.iopub_timeout = 15
        c.LimitedExecute.shutdown_kernel = "immediate"  # nothing in it is needed afterwards
        c.LimitedExecute.timeout = limits.cell_timeout
        c.LimitedExecute.notebook_timeout = limits.notebook_timeout
        c.LimitedExecute.max_output_bytes = limits.max_output_bytes
        c.LimitedExecute.extra_arguments = [
            "--HistoryManager.hist_file=:memory:",
            # Grader code is imported before any student code, from its installed location:
            # a fake rnncourse_grader written into the working folder is never imported.
            "--IPKernelApp.exec_lines=import rnncourse_grader.hidden",
        ]
        pipeline.use_ipc(c, self.ipc_dir)
        c.BaseConverter.force = True
        return c

    def write_kernelspec(self, policy: dict) -> None:
        from rnncourse_grader.limits import KERNEL_NAME, kernelspec

        spec = kernelspec(policy)
        folder = self.work / "jupyter" / "kernels" / KERNEL_NAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1))

    def policy(self, limits, cpu_s: int, files: dict[str, str] | None = None) -> dict:
        return {
            "memory_mb": limits.memory_mb,
            "cpu_s": cpu_s,
            "file_mb": limits.file_mb,
            "hide": self.cfg["hide"],
            "user": self.cfg.get("user"),
            "tmp_base": str(self.kernel_tmp),
            "threads": 1,
            "files": files or {},
        }

    # ------------------------------------------------------------------------- the stages
    def grade(self, job: Job) -> GradeResult:
        """Grade one job; every failure ends classified in the result's status."""
        start = time.monotonic()
        result = GradeResult(job.job, job.student, job.lesson, canary=job.canary)
        try:
            self.reset()
            nb = self.read(job, result)
            if nb is not None:
                self.autograde(job, result)
            if result.status is not Status.GRADER and not result.unreadable:
                self.check_integrity(job, nb, result)
                self.feedback(job, result)
                self.collect(job, result)
                self.stage(job, result)
        except GraderFault as err:
            result.fail(Status.GRADER, str(err))
        except Exception as err:  # our code, nbgrader or the disk: never the student's
            traceback.print_exc()
            result.fail(Status.GRADER, f"grader error: {type(err).__name__}: {err}")
        result.stray_processes_killed += reap_strays()
        result.timing.total_s = time.monotonic() - start
        return result

    def read(self, job: Job, result: GradeResult):
        """The sanitized submission in the private submitted/ folder (None: unreadable)."""
        import nbformat

        from rnncourse_grader import sanitize

        template = self.template(job.lesson)
        try:
            nb, notes = sanitize.read_submission(Path(job.notebook))
            nb, more = sanitize.sanitize(nb, template)
        except sanitize.Unreadable as err:
            return self._unreadable(result, str(err))
        except Exception as err:  # a structure nbformat cannot validate
            return self._unreadable(result, f"not a valid notebook: {err}")
        result.notes = notes + more
        target = self.work / "submitted" / job.student / job.lesson / f"{job.lesson}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
        if job.timestamp:  # nbgrader computes late penalties from it
            (target.parent / "timestamp.txt").write_text(job.timestamp)
        # release_feedback files each student's page under a hash of this secret (exchange loop)
        secret = Path(job.notebook).parent / "submission_secret.txt"
        if secret.is_file():
            (target.parent / secret.name).write_text(secret.read_text()[:200])
        return nb

    @staticmethod
    def _unreadable(result: GradeResult, why: str) -> None:
        result.unreadable = True
        result.fail(Status.STUDENT, why)

    def autograde(self, job: Job, result: GradeResult) -> None:
        """nbgrader's autograde under the limits; the limits' events decide the status."""
        from nbgrader.converters import Autograde

        from rnncourse_grader import limits

        lim = limits.Limits(**job.limits)
        files = self.handed_in(job)
        self.write_kernelspec(self.policy(lim, lim.notebook_timeout + 60, files))
        t0 = time.monotonic()
        try:
            Autograde(**self.converter_args(job)).start()
        except Exception as err:
            detail = "; ".join(limits.FAULTS or [line for line in self.errors.lines if line])
            raise GraderFault(f"autograde failed: {detail[-300:] or err}") from err
        finally:
            result.timing.autograde_s = time.monotonic() - t0
            result.timing.kernel_start_s = limits.TIMING.kernel_start_s
            result.timing.cells_s = limits.TIMING.cells_s
            result.events = list(limits.EVENTS)
        if limits.FAULTS:
            raise GraderFault("; ".join(limits.FAULTS))
        if result.events:
            kinds = sorted({e.kind.replace("_", " ") for e in result.events})
            result.fail(Status.STUDENT, "limits: " + ", ".join(kinds))
        result.stray_processes_killed += reap_strays()
        self._kernel_verdicts(job, result)

    def converter_args(self, job: Job) -> dict:
        """coursedir and config for one of nbgrader's converters, on this job's submission."""
        from nbgrader.coursedir import CourseDirectory

        from rnncourse_grader import limits

        config = self.config(limits.Limits(**job.limits))
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id, coursedir.student_id = job.lesson, job.student
        return {"coursedir": coursedir, "config": config}

    def handed_in(self, job: Job) -> dict[str, str]:
        """Files the lesson grades from the submission folder (e.g. lesson 05's checkpoint)."""
        folder = Path(job.notebook).parent
        names = pipeline.handed_in_files(job.lesson, self.root)
        return {name: str(folder / name) for name in names if (folder / name).is_file()}

    def _kernel_verdicts(self, job: Job, result: GradeResult) -> None:
        import nbformat

        path = self.work / "autograded" / job.student / job.lesson / f"{job.lesson}.ipynb"
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                ok, message = _outputs_verdict(cell)
                result.cells.append(
                    CellGrade(path.stem, meta["grade_id"], float(meta.get("points", 0)))
                )
                result.cells[-1].passed_in_kernel, result.cells[-1].message = ok, message

    def check_integrity(self, job: Job, nb, result: GradeResult) -> None:
        """Re-run passed functions in a fresh process; a runner failure is a GraderFault."""
        from nbgrader.api import Gradebook

        from rnncourse_grader import integrity, limits

        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(job.lesson, job.student)
            passed = {g.name for n in sub.notebooks for g in n.grades if (g.auto_score or 0) > 0}
        lim = limits.Limits(**job.limits)
        t0 = time.monotonic()
        try:
            report = integrity.run_pass(
                job.lesson,
                nb,
                self.template(job.lesson),
                passed,
                seed=job.seed,
                policy=self.policy(lim, lim.integrity_timeout + 30),
                timeout=lim.integrity_timeout,
                root=self.root,
            )
        finally:
            result.stray_processes_killed += reap_strays()
            result.timing.integrity_s = time.monotonic() - t0
        if report is not None:
            result.verdicts = list(report.verdicts)
            self.apply_overrides(job, report, result)
            if report.failed:  # the late penalty autograde gave was on the kernel's scores
                self.reassess_lateness(job, lim)
            result.notes += [
                f"integrity check of {v.function}: {v.message}; its tests score 0"
                for v in report.failed
            ]

    def reassess_lateness(self, job: Job, lim) -> None:
        """The course's late penalty on the scores the integrity pass left (for feedback)."""
        from nbgrader.api import Gradebook

        from rnncourse_grader import late

        with Gradebook(self.db_url) as gb:
            late.assess(gb, job.lesson, job.student, self.config(lim))
            gb.db.commit()

    def feedback(self, job: Job, result: GradeResult) -> None:
        from nbgrader.converters import GenerateFeedback

        t0 = time.monotonic()
        try:
            GenerateFeedback(**self.converter_args(job)).start()
        except Exception as err:
            raise GraderFault(f"feedback could not be generated: {err}") from err
        result.timing.feedback_s = time.monotonic() - t0
        page = self.work / "feedback" / job.student / job.lesson / f"{job.lesson}.html"
        inject_notes(page, result.notes + [e.note() for e in result.events])

    def collect(self, job: Job, result: GradeResult) -> None:
        """Scores, overrides and comments from the private gradebook into the result."""
        from nbgrader.api import Gradebook

        by_id = {c.grade_id: c for c in result.cells}
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(job.lesson, job.student)
            for nb_ in sub.notebooks:
                result.flagged = result.flagged or bool(nb_.flagged)
                for g in nb_.grades:
                    cell = by_id.get(g.name) or CellGrade(nb_.name, g.name, g.max_score)
                    if g.name not in by_id:
                        result.cells.append(cell)
                    cell.notebook, cell.max_score = nb_.name, float(g.max_score)
                    cell.auto_score, cell.manual_score = g.auto_score, g.manual_score
                    cell.needs_manual_grade = bool(g.needs_manual_grade)
                result.comments += [
                    Comment(nb_.name, cm.name, cm.auto_comment, cm.manual_comment)
                    for cm in nb_.comments
                ]

    def stage(self, job: Job, result: GradeResult) -> None:
        """Move this job's autograded notebook and feedback out of the folder the next job
        resets, so the batch can publish them after the whole class (and the canary) ran."""
        target = self.outbox / f"{job.job}-{job.attempts}"
        shutil.rmtree(target, ignore_errors=True)
        for folder in ("autograded", "feedback"):
            source = self.work / folder / job.student / job.lesson
            if source.is_dir():
                shutil.copytree(source, target / folder)
        result.outputs = str(target)

    def apply_overrides(self, job: Job, report, result: GradeResult) -> None:
        """Where the kernel said pass and the integrity pass says fail: manual score 0."""
        from nbgrader.api import Gradebook, MissingEntry

        if not report.failed:
            return
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(job.lesson, job.student)
            comments: dict[str, list[str]] = {}  # function -> why, for each probe it failed
            for verdict in report.failed:
                comments.setdefault(verdict.function, []).append(verdict.message)
            for nb_ in sub.notebooks:
                for verdict in report.failed:
                    for test in verdict.tests:
                        try:
                            grade = gb.find_grade(test, nb_.name, job.lesson, job.student)
                        except MissingEntry:
                            continue
                        if (grade.auto_score or 0) > 0:
                            grade.manual_score = 0.0
                            grade.needs_manual_grade = False
                            cell = result.cell(test)
                            if cell is not None:
                                cell.overridden = verdict.message
                    try:
                        comment = gb.find_comment(
                            verdict.function, nb_.name, job.lesson, job.student
                        )
                        why = "; and ".join(comments[verdict.function])
                        comment.manual_comment = f"Checked outside the notebook: {why}"
                    except MissingEntry:
                        pass
                nb_.flagged = True
            gb.db.commit()


def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # kernels inherit fd 1: never the reply channel
    sys.stdout = sys.stderr
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # other processes of this user cannot read our memory or fds
    os.environ.update(
        RNNCOURSE_WORK=cfg["work"],
        JUPYTER_PATH=str(Path(cfg["work"]) / "jupyter"),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    worker = Worker(cfg)
    for line in sys.stdin:
        if line.strip():
            reply.write(worker.grade(Job.from_json(line)).to_json() + "\n")


if __name__ == "__main__":
    main()
