"""What grading one submission produced: one typed result, passed from worker to batch to report.

The status says whose failure it was, because that decides what may be written down:

- ``graded``: everything ran; the points stand.
- ``student``: the submission's own failure (unreadable notebook, its code crashed or hung the
  kernel, ran past a time limit, over the memory or output cap). The points stand: zero for
  the affected cells, and the reason goes into the feedback.
- ``grader``: the grading machinery failed (the kernel never started, a worker died, the
  integrity runner itself failed, the disk is full, nbgrader raised). The batch retries it;
  if it persists the submission is *not graded*: no points are written into the gradebook,
  the CSVs or the feedback, and ``course grade`` exits non-zero naming it.

A worker sends a result as one JSON line (``to_json``); the batch reads it back with
``from_json``, which rebuilds the dataclasses (no dicts with string keys past that point).
"""

import dataclasses
import enum
import json
from typing import Any


class Status(enum.StrEnum):
    GRADED = "graded"
    STUDENT = "student"
    GRADER = "grader"


class GraderFault(Exception):
    """The grading machinery failed (not the student's code): the submission is retried."""


@dataclasses.dataclass
class Event:
    """Something a limit did while the notebook ran (cell index in the notebook)."""

    kind: str  # cell_timeout, kernel_died, kernel_hung, notebook_timeout, output_capped
    cell: int | None = None
    reason: str = ""

    def note(self) -> str:
        """The sentence the feedback page shows for this event."""
        cell = self.cell
        return {
            "cell_timeout": f"cell {cell} ran past the time limit per cell and was interrupted",
            "kernel_died": f"cell {cell}: {self.reason}; the cells after it were not run "
            "(no points)",
            "kernel_hung": f"cell {cell} did not stop when interrupted; the kernel was stopped "
            "and the cells after it were not run (no points)",
            "notebook_timeout": f"the notebook reached its time limit at cell {cell}; later "
            "cells were not run",
            "output_capped": f"cell {cell}: output over the size cap was dropped",
        }.get(self.kind, f"{self.kind} at cell {cell}: {self.reason}")


@dataclasses.dataclass
class CellGrade:
    """One graded cell as the worker's private gradebook has it, plus what the kernel showed."""

    notebook: str
    grade_id: str
    max_score: float
    auto_score: float | None = None
    manual_score: float | None = None
    needs_manual_grade: bool = False
    passed_in_kernel: bool = False
    message: str = ""  # the check's message (first error line) when it failed
    overridden: str = ""  # why the integrity pass took the points back

    @property
    def score(self) -> float:
        """nbgrader's rule: a manual score, when there is one, replaces the automatic one."""
        if self.manual_score is not None:
            return self.manual_score
        return self.auto_score or 0.0


@dataclasses.dataclass
class Comment:
    notebook: str
    grade_id: str
    auto_comment: str | None = None
    manual_comment: str | None = None


@dataclasses.dataclass
class Verdict:
    """The integrity pass on one graded function."""

    function: str
    tests: tuple[str, ...]
    status: str  # "pass", "fail" or "not checked"
    message: str = ""


@dataclasses.dataclass
class FinalGrade:
    """A cell's score as merged into the main gradebook (overrides applied)."""

    notebook: str
    grade_id: str
    score: float
    max_score: float


@dataclasses.dataclass
class Timing:
    """Seconds spent per stage of one job (None: the stage did not run)."""

    kernel_start_s: float | None = None  # start the kernel, up to its first reply
    cells_s: float | None = None  # the notebook's cells (its own compute)
    autograde_s: float | None = None  # nbgrader's autograde, kernel and cells included
    integrity_s: float | None = None
    feedback_s: float | None = None
    total_s: float | None = None  # the whole job in the worker


@dataclasses.dataclass
class GradeResult:
    job: int
    student: str
    lesson: str
    status: Status = Status.GRADED
    message: str = ""  # one line: why it is not simply graded
    notes: list[str] = dataclasses.field(default_factory=list)  # for the feedback page
    events: list[Event] = dataclasses.field(default_factory=list)
    cells: list[CellGrade] = dataclasses.field(default_factory=list)
    comments: list[Comment] = dataclasses.field(default_factory=list)
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    flagged: bool = False
    unreadable: bool = False  # a student outcome with no cells run at all
    timing: "Timing" = dataclasses.field(default_factory=lambda: Timing())
    stray_processes_killed: int = 0
    outputs: str | None = None  # folder holding this job's autograded/ and feedback/
    attempts: int = 1
    canary: bool = False  # the lesson's reference notebook, graded to check the grader
    timestamp: str | None = None
    final: list[FinalGrade] = dataclasses.field(default_factory=list)  # set by the merge
    seconds_late: float = 0.0  # set by the merge, from the gradebook's due date
    late_penalty: float = 0.0  # points the course's late plugin took off (set by the merge)

    @property
    def written(self) -> bool:
        """Points may be written for it (graded or the student's own failure)."""
        return self.status is not Status.GRADER

    def fail(self, status: Status, message: str) -> "GradeResult":
        self.status, self.message = status, message[:500]
        return self

    def cell(self, grade_id: str) -> CellGrade | None:
        return next((c for c in self.cells if c.grade_id == grade_id), None)

    def integrity_failures(self) -> list[str]:
        return [v.function for v in self.verdicts if v.status == "fail"]

    def totals(self) -> tuple[float, float]:
        """(raw score, max score) as merged: before any late penalty."""
        return sum(g.score for g in self.final), sum(g.max_score for g in self.final)

    def penalised(self) -> float:
        """The score with the late penalty taken off (what goes back to an LMS)."""
        return self.totals()[0] - self.late_penalty

    def full_marks(self) -> bool:
        """Every graded cell got all its points (what a reference must get)."""
        if self.status is not Status.GRADED or not self.cells:
            return False
        return all(c.score >= c.max_score for c in self.cells)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> "GradeResult":
        return _build(cls, json.loads(text))


_NESTED = {
    "events": Event,
    "cells": CellGrade,
    "comments": Comment,
    "verdicts": Verdict,
    "final": FinalGrade,
}


def _build(cls, data: dict[str, Any]) -> GradeResult:
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in data.items() if k in names}
    for name, kind in _NESTED.items():
        fields[name] = [kind(**item) for item in fields.get(name, [])]
    fields["timing"] = Timing(**fields.get("timing", {}))
    for verdict in fields["verdicts"]:
        verdict.tests = tuple(verdict.tests)
    fields["status"] = Status(fields.get("status", "graded"))
    return cls(**fields)


@dataclasses.dataclass
class Job:
    """One submission to grade, as the batch sends it to a worker (one JSON line)."""

    job: int
    student: str
    lesson: str
    notebook: str  # the submitted notebook; files handed in with it sit beside it
    limits: dict[str, int]  # limits.Limits as a dict
    seed: int  # the integrity pass's inputs (secret: derived from the run's salt)
    timestamp: str | None = None  # nbgrader's timestamp.txt of the submission, if any
    attempts: int = 0  # how many times a grader failure sent it back
    canary: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Job":
        return cls(**json.loads(text))
