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
6. replies with every grade, comment and note. The parent merges them into the main gradebook:
   it is the only process that writes there, one submission at a time.

The kernel never inherits the reply channel: fd 1 points to /dev/null before any kernel
starts, and stderr goes to the worker's log file.
"""

import ctypes
import html
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

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


def event_note(event: dict) -> str:
    cell = event.get("cell")
    kind = event["kind"]
    if kind == "cell_timeout":
        return f"cell {cell} ran past the time limit per cell and was interrupted"
    if kind == "kernel_died":
        return f"cell {cell}: {event['reason']}; the cells after it were not run (no points)"
    if kind == "kernel_hung":
        return (
            f"cell {cell} did not stop when interrupted; the kernel was stopped and the cells "
            "after it were not run (no points)"
        )
    if kind == "notebook_timeout":
        return f"the notebook reached its time limit at cell {cell}; later cells were not run"
    if kind == "output_capped":
        return f"cell {cell}: output over the size cap was dropped"
    return json.dumps(event)


class Worker:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.root = Path(cfg["root"])
        self.work = Path(cfg["work"])
        self.template_db = Path(cfg["template_db"])
        self.kernel_tmp = Path(cfg["kernel_tmp"])
        self.templates: dict = {}
        self.errors = ErrorLog()
        logging.getLogger().addHandler(self.errors)

    def reset(self) -> None:
        for name in ("submitted", "autograded", "feedback"):
            shutil.rmtree(self.work / name, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.template_db, self.work / "gradebook.db")
        shutil.rmtree(self.kernel_tmp, ignore_errors=True)
        self.errors.lines.clear()

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
        from traitlets.config.loader import PyFileConfigLoader

        from rnncourse_grader.limits import KERNEL_NAME, LimitedExecute

        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(self.root / "autograder"))
        c = cfg.load_config()
        c.CourseDirectory.root = str(self.root)
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
        c.LimitedExecute.shutdown_kernel = (
            "immediate"  # nothing in it is needed after the last cell
        )
        c.LimitedExecute.timeout = limits.cell_timeout
        c.LimitedExecute.notebook_timeout = limits.notebook_timeout
        c.LimitedExecute.max_output_bytes = limits.max_output_bytes
        c.LimitedExecute.extra_arguments = [
            "--HistoryManager.hist_file=:memory:",
            # Grader code is imported before any student code, from its installed location:
            # a fake rnncourse_grader written into the working folder is never imported.
            "--IPKernelApp.exec_lines=import rnncourse_grader.hidden",
        ]
        c.BaseConverter.force = True
        return c

    def write_kernelspec(self, policy: dict) -> None:
        from rnncourse_grader.limits import KERNEL_NAME, kernelspec

        spec = kernelspec(policy)
        folder = self.work / "jupyter" / "kernels" / KERNEL_NAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1))

    def policy(self, limits, cpu_s: int) -> dict:
        return {
            "memory_mb": limits.memory_mb,
            "cpu_s": cpu_s,
            "file_mb": 100,
            "hide": self.cfg["hide"],
            "user": self.cfg.get("user"),
            "tmp_base": str(self.kernel_tmp),
            "threads": 1,
        }

    def grade(self, job: dict) -> dict:
        import nbformat
        from nbgrader.api import Gradebook
        from nbgrader.converters import Autograde, GenerateFeedback
        from nbgrader.coursedir import CourseDirectory

        from rnncourse_grader import integrity, limits, sanitize

        start = time.monotonic()
        student, lesson = job["student"], job["lesson"]
        lim = limits.Limits(**job["limits"])
        result = {
            "job": job["job"],
            "student": student,
            "lesson": lesson,
            "status": "graded",
            "message": "",
            "notes": [],
            "events": [],
            "cells": {},
            "grades": [],
            "comments": [],
            "flagged": False,
            "integrity": None,
            "timing": {},
        }
        self.reset()
        template = self.template(lesson)
        try:
            nb, notes = sanitize.read_submission(Path(job["notebook"]))
            nb, more = sanitize.sanitize(nb, template)
        except sanitize.Unreadable as err:
            result.update(status="unreadable", message=str(err))
            return result
        except Exception as err:  # a structure nbformat cannot validate
            result.update(status="unreadable", message=f"not a valid notebook: {err}"[:300])
            return result
        result["notes"] = notes + more
        target = self.work / "submitted" / student / lesson / f"{lesson}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
        if job.get("timestamp"):  # nbgrader computes late penalties from it
            (target.parent / "timestamp.txt").write_text(job["timestamp"])
        # release_feedback files each student's page under a hash of this secret (exchange loop)
        secret = Path(job["notebook"]).parent / "submission_secret.txt"
        if secret.is_file():
            (target.parent / secret.name).write_text(secret.read_text()[:200])

        self.write_kernelspec(self.policy(lim, lim.notebook_timeout + 60))
        config = self.config(lim)
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id, coursedir.student_id = lesson, student
        t0 = time.monotonic()
        try:
            Autograde(coursedir=coursedir, config=config).start()
        except Exception as err:
            detail = "; ".join(line for line in self.errors.lines if line)[-300:]
            result.update(status="error", message=f"autograde failed: {detail or err}")
        result["timing"]["autograde_s"] = time.monotonic() - t0
        result["timing"].update({k: v for k, v in limits.TIMING.items()})
        result["events"] = list(limits.EVENTS)
        result["stray_processes_killed"] = reap_strays()
        if result["status"] != "graded":
            return result

        graded_nb = nbformat.read(
            self.work / "autograded" / student / lesson / f"{lesson}.ipynb", as_version=4
        )
        for cell in graded_nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                ok, message = _outputs_verdict(cell)
                result["cells"][meta["grade_id"]] = {"passed": ok, "message": message}

        db_url = f"sqlite:///{self.work / 'gradebook.db'}"
        with Gradebook(db_url) as gb:
            sub = gb.find_submission(lesson, student)
            passed = {
                g.name for nb_ in sub.notebooks for g in nb_.grades if (g.auto_score or 0) > 0
            }

        t0 = time.monotonic()
        report = integrity.run_pass(
            lesson,
            nb,
            template,
            passed,
            seed=int(job["seed"]),
            policy=self.policy(lim, lim.integrity_timeout + 30),
            timeout=lim.integrity_timeout,
        )
        result["stray_processes_killed"] += reap_strays()
        result["timing"]["integrity_s"] = time.monotonic() - t0
        if report is not None:
            result["integrity"] = {
                "verdicts": [v.__dict__ | {"tests": list(v.tests)} for v in report.verdicts],
                "problem": report.problem,
                "cell_errors": report.cell_errors,
            }
            self.apply_overrides(db_url, lesson, student, report, result)

        t0 = time.monotonic()
        try:
            GenerateFeedback(coursedir=coursedir, config=config).start()
        except Exception as err:
            result["notes"].append(f"feedback could not be generated: {err}")
        result["timing"]["feedback_s"] = time.monotonic() - t0
        feedback = self.work / "feedback" / student / lesson / f"{lesson}.html"
        notes = result["notes"] + [event_note(e) for e in result["events"]]
        if report is not None:
            notes += [
                f"integrity check of {v.function}: {v.message}; its tests score 0"
                for v in report.failed
            ]
        inject_notes(feedback, notes)

        with Gradebook(db_url) as gb:
            sub = gb.find_submission(lesson, student)
            for nb_ in sub.notebooks:
                result["flagged"] = result["flagged"] or bool(nb_.flagged)
                for g in nb_.grades:
                    result["grades"].append(
                        {
                            "notebook": nb_.name,
                            "grade_id": g.name,
                            "auto_score": g.auto_score,
                            "manual_score": g.manual_score,
                            "max_score": g.max_score,
                            "needs_manual_grade": bool(g.needs_manual_grade),
                        }
                    )
                for cm in nb_.comments:
                    result["comments"].append(
                        {
                            "notebook": nb_.name,
                            "grade_id": cm.name,
                            "auto_comment": cm.auto_comment,
                            "manual_comment": cm.manual_comment,
                        }
                    )
        result["timing"]["total_s"] = time.monotonic() - start
        return result

    @staticmethod
    def apply_overrides(db_url, lesson, student, report, result) -> None:
        """Where the kernel said pass and the integrity pass says fail: manual score 0."""
        from nbgrader.api import Gradebook, MissingEntry

        if not report.failed:
            return
        with Gradebook(db_url) as gb:
            sub = gb.find_submission(lesson, student)
            for nb_ in sub.notebooks:
                for verdict in report.failed:
                    for test in verdict.tests:
                        try:
                            grade = gb.find_grade(test, nb_.name, lesson, student)
                        except MissingEntry:
                            continue
                        if (grade.auto_score or 0) > 0:
                            grade.manual_score = 0.0
                            grade.needs_manual_grade = False
                            result["cells"].setdefault(test, {})["overridden"] = verdict.message
                    try:
                        comment = gb.find_comment(verdict.function, nb_.name, lesson, student)
                        comment.manual_comment = f"Integrity check failed: {verdict.message}"
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
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = worker.grade(job)
        except Exception as err:
            traceback.print_exc()
            result = {
                "job": job.get("job"),
                "student": job.get("student"),
                "lesson": job.get("lesson"),
                "status": "error",
                "message": f"grader error: {type(err).__name__}: {err}"[:300],
            }
            reap_strays()
        reply.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
