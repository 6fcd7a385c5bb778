"""Grades CSVs (per notebook, per graded cell), the printed summary, and minimal feedback pages."""

import csv
import html
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from rnncourse_grader.outcome import GradeResult

NOTEBOOK_FIELDS = [
    "student",
    "lesson",
    "score",
    "max_score",
    "percent",
    "seconds_late",
    "late_penalty",
    "penalised_score",
    "status",
    "flagged",
    "integrity_failed",
    "message",
]
CELL_FIELDS = [
    "student",
    "lesson",
    "grade_id",
    "score",
    "max_score",
    "passed_in_kernel",
    "integrity_override",
    "message",
]


def _row(r: GradeResult, withheld: set) -> dict:
    """The score columns: ``score`` is the raw score, ``penalised_score`` after the late
    penalty (the course's nbgrader plugin: ``late``)."""
    if (r.student, r.lesson) in withheld:  # nothing written: no score, only why
        blank = ("score", "max_score", "percent", "seconds_late", "late_penalty", "penalised_score")
        return dict.fromkeys(blank, "") | {"status": "not graded"}
    score, max_score = r.totals()
    return {
        "score": score,
        "max_score": max_score,
        "percent": round(100 * score / max_score, 1) if max_score else "",
        "seconds_late": round(r.seconds_late),
        "late_penalty": r.late_penalty,
        "penalised_score": r.penalised(),
        "status": str(r.status),
    }


def write_csvs(results: list[GradeResult], folder: Path, withheld: set) -> tuple[Path, Path]:
    """grades_by_notebook.csv and grades_by_cell.csv; ``withheld`` (student, lesson) pairs get
    no score (their grading failed, or their lesson's reference canary did)."""
    by_notebook, by_cell = folder / "grades_by_notebook.csv", folder / "grades_by_cell.csv"
    ordered = sorted(results, key=lambda r: (r.lesson, r.student))
    with by_notebook.open("w", newline="") as f:
        w = csv.DictWriter(f, NOTEBOOK_FIELDS)
        w.writeheader()
        for r in ordered:
            w.writerow(
                {
                    "student": r.student,
                    "lesson": r.lesson,
                    **_row(r, withheld),
                    "flagged": int(r.flagged),
                    "integrity_failed": " ".join(r.integrity_failures()),
                    "message": r.message,
                }
            )
    with by_cell.open("w", newline="") as f:
        w = csv.DictWriter(f, CELL_FIELDS)
        w.writeheader()
        for r in ordered:
            if (r.student, r.lesson) in withheld:
                continue
            for g in r.final:
                cell = r.cell(g.grade_id)
                w.writerow(
                    {
                        "student": r.student,
                        "lesson": r.lesson,
                        "grade_id": g.grade_id,
                        "score": g.score,
                        "max_score": g.max_score,
                        "passed_in_kernel": int(bool(cell and cell.passed_in_kernel)),
                        "integrity_override": cell.overridden if cell else "",
                        "message": (cell.message if cell else "") or r.message,
                    }
                )
    return by_notebook, by_cell


def blank_rows(path: Path, withheld: set) -> None:
    """nbgrader's grades.csv scores a missing submission 0: blank the scores of ``withheld``."""
    if not withheld or not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if (row["student_id"], row["assignment"]) in withheld:
            row.update(raw_score="", late_submission_penalty="", score="")
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def summary(results: list[GradeResult], refused: dict[str, str], top: int = 5) -> str:
    """Score distribution, mean per exercise, most-failed tests, per lesson; then what was
    not graded (and must be regraded)."""
    out = []
    by_lesson = defaultdict(list)
    for r in results:
        by_lesson[r.lesson].append(r)
    for lesson, rs in sorted(by_lesson.items()):
        if lesson in refused:
            out += [f"== {lesson}: {len(rs)} submission(s), NOT PUBLISHED: {refused[lesson]}", ""]
            continue
        out += _lesson_summary(lesson, rs, top)
    missing = [r for r in results if not r.written and r.lesson not in refused]
    if missing:
        out.append(f"NOT GRADED ({len(missing)}): the grader failed; nothing was written for:")
        out += [f"  {r.student}/{r.lesson}: {r.message}" for r in missing]
        out.append("")
    return "\n".join(out)


def _lesson_summary(lesson: str, rs: list[GradeResult], top: int) -> list[str]:
    graded = [r for r in rs if r.written]
    percents = [100 * s / m if m else 0 for s, m in (r.totals() for r in graded)]
    statuses = Counter("not graded" if not r.written else str(r.status) for r in rs)
    out = [
        f"== {lesson}: {len(rs)} submission(s), "
        + ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))
        + (f"; median {statistics.median(percents):.0f}%" if percents else "")
    ]
    buckets = Counter(min(int(p // 10), 9) for p in percents)
    rows = []
    for b in range(9, -1, -1):
        label = "90-100" if b == 9 else f"{b * 10}-{b * 10 + 9}"
        rows.append([label + "%", buckets.get(b, 0), "#" * buckets.get(b, 0)])
    out += _table(rows, ["score", "students", ""])
    cells, failures = defaultdict(list), defaultdict(Counter)
    for r in graded:
        for g in r.final:
            cells[g.grade_id].append((g.score, g.max_score))
            if g.score < g.max_score:
                info = r.cell(g.grade_id)
                why = info and info.overridden and "integrity: " + info.overridden
                why = why or (info and info.message) or r.message or str(r.status)
                failures[g.grade_id][why.split("\n")[0][:70]] += 1
    rows = [
        [gid, f"{statistics.mean(s for s, _ in v):.2f} / {v[0][1]:g}", len(v)]
        for gid, v in cells.items()
    ]
    out.append("")
    out += _table(rows, ["exercise (test cell)", "mean score", "graded"])
    ranked = sorted(failures.items(), key=lambda kv: -sum(kv[1].values()))[:top]
    if ranked:
        out.append("")
        rows = [[gid, sum(c.values()), c.most_common(1)[0][0]] for gid, c in ranked]
        out += _table(rows, ["most-failed test", "failed", "most common reason"])
    out.append("")
    return out


def unreadable_feedback(path: Path, student: str, lesson: str, reason: str) -> None:
    """A feedback page for a submission that could not be graded at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(lesson)}</title></head><body>"
        f"<h1>{html.escape(lesson)}: {html.escape(student)}</h1>"
        f"<p><b>Score: 0.</b> Your submission could not be graded: {html.escape(reason)}.</p>"
        "<p>Open the notebook in Jupyter, run <i>Restart Kernel and Run All Cells</i>, save it, "
        "and submit the saved <code>.ipynb</code> file.</p></body></html>",
        encoding="utf-8",
    )
