"""Grades back to the LMS a class was imported from: its import format, and feedback to upload.

For every lesson of a run whose submissions came from an LMS export (their ``lms.Link`` sits
beside them), ``write`` puts next to the run's grades CSVs, in the work folder:

- ``canvas_<lesson>.csv``: Canvas's gradebook import (Grades > Import). Canvas reads the
  header "Student, ID, SIS User ID, SIS Login ID, Section, <assignment>" (the student info
  ends at "Section"), skips the row whose first cell is "Points Possible", finds each student
  by the "ID" column (the Canvas user id) and each assignment by the "(id)" at the end of its
  header, else by its title; the column title is ``--lms-column`` ("Title (assignment id)"),
  by default the lesson id.
- ``canvas_<lesson>_feedback.zip``: feedback pages for Submissions > Upload; Canvas finds the
  user and the attachment from the first two all-digit parts of each name between "_".
- ``moodle_<lesson>.csv``: the assignment's grading worksheet, for "Upload grading worksheet".
  Moodle reads the "Identifier" ("Participant <id>"), "Grade" and "Last modified (grade)"
  columns (a grade changed in Moodle after that time is not overwritten) and the "Feedback
  comments" column; the others are for the person reading it. Its own worksheet also has
  "Status" and "Grade can be changed": its importer ignores them, so they are left out here.
- ``moodle_<lesson>_feedback.zip``: for "Upload multiple feedback files in a zip"; Moodle
  finds the participant from folder names "<full name>_<participant id>_assignfeedback_file".

Scores are the penalised ones (after the course's late penalty), out of the lesson's points.
A submission that was not graded is left out of the files (a blank grade would clear the
grade already in Canvas): the run's summary names it.
"""

import csv
import dataclasses
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from rnncourse_grader.lms import CANVAS, MOODLE, Link
from rnncourse_grader.outcome import GradeResult

CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS = "Points Possible"
MOODLE_HEADER = [
    "Identifier",
    "Full name",
    "Email address",
    "Grade",
    "Maximum Grade",
    "Last modified (submission)",
    "Last modified (grade)",
    "Feedback comments",
]


@dataclasses.dataclass(frozen=True)
class Row:
    """One graded submission as an LMS takes it back."""

    student: str  # the course's id
    link: Link
    raw: float  # before the late penalty
    penalty: float
    points: float  # the lesson's (as graded: the sum of its test cells' points)
    feedback: Path | None  # the student's feedback page

    @property
    def score(self) -> float:
        return self.raw - self.penalty


def write(
    results: list[GradeResult],
    work: Path,
    withheld: set,
    now: dt.datetime | None = None,
) -> list[Path]:
    """The grade files and feedback bundles of every lesson whose submissions came from
    Canvas or Moodle; returns the files written."""
    now = now or _now()
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in sorted(results, key=lambda r: (r.lesson, r.student)):
        link = Link.load(Path(work) / "submitted" / r.student / r.lesson)
        if link is None or link.lms not in (CANVAS, MOODLE) or (r.student, r.lesson) in withheld:
            continue
        page = Path(work) / "feedback" / r.student / r.lesson / f"{r.lesson}.html"
        raw, points = r.totals()
        row = Row(r.student, link, raw, r.late_penalty, points, _file(page))
        groups.setdefault((r.lesson, link.lms), []).append(row)
    written = []
    for (lesson, system), rows in sorted(groups.items()):
        if system == CANVAS:
            table, bundle = canvas_csv(rows), canvas_bundle(rows)
        else:
            table, bundle = moodle_worksheet(rows, now), moodle_bundle(rows, lesson)
        written.append(_save(Path(work) / f"{system}_{lesson}.csv", table))
        written.append(_zip(Path(work) / f"{system}_{lesson}_feedback.zip", bundle))
    return written


def _now() -> dt.datetime:
    """When the grades were written (Moodle's "Last modified (grade)")."""
    return dt.datetime.now(dt.UTC)


def _file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _number(value: float) -> str:
    """A score as the LMSs read it: "9.5", "10" (two decimals at most)."""
    return f"{round(value, 2):g}"


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def canvas_csv(rows: list[Row]) -> str:
    """Canvas's gradebook import: one column, the lesson's, by Canvas user id."""
    column = rows[0].link.column
    table = [CANVAS_HEADER + [column], [CANVAS_POINTS, "", "", "", "", _number(rows[0].points)]]
    table += [[r.link.name, r.link.lms_id, "", "", "", _number(r.score)] for r in rows]
    return _csv(table)


def moodle_worksheet(rows: list[Row], now: dt.datetime) -> str:
    """Moodle's grading worksheet with this run's grades; times in ISO 8601 with their offset
    (Moodle reads them with PHP's strtotime)."""
    graded = now.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    table = [MOODLE_HEADER]
    for r in rows:
        submitted = r.link.submitted and f"{r.link.submitted}+00:00"
        table.append(
            [
                f"Participant {r.link.lms_id}",
                r.link.name,
                r.link.email,
                _number(r.score),
                _number(r.points),
                submitted,
                graded,
                comment(r),
            ]
        )
    return _csv(table)


def comment(row: Row) -> str:
    """The feedback comment that goes with a grade."""
    text = f"Autograded: {_number(row.raw)} / {_number(row.points)}."
    if row.penalty:
        text += f" Late: {_number(row.penalty)} taken off, {_number(row.score)} counts."
    return text + (" The feedback page is attached." if row.feedback else "")


def canvas_bundle(rows: list[Row]) -> dict[str, Path]:
    """Name in the zip -> feedback page: "<name>_<user id>_<attachment id>_feedback.html"."""
    bundle = {}
    for r in rows:
        if r.feedback and r.link.attachment:
            name = re.sub(r"[\W\d_]", "", r.link.name.lower())  # no digits before the ids
            bundle[f"{name}_{r.link.lms_id}_{r.link.attachment}_feedback.html"] = r.feedback
    return bundle


def moodle_bundle(rows: list[Row], lesson: str) -> dict[str, Path]:
    """Name in the zip -> feedback page, in the folder Moodle's feedback-zip import reads."""
    bundle = {}
    for r in rows:
        if r.feedback:
            name = re.sub(r"[_/\\]", " ", r.link.name).strip()  # "_" separates the id
            folder = f"{name}_{r.link.lms_id}_assignfeedback_file"
            bundle[f"{folder}/{lesson}-feedback.html"] = r.feedback
    return bundle


def _save(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _zip(path: Path, bundle: dict[str, Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, page in sorted(bundle.items()):
            zf.write(page, name)
    return path
