"""Grades CSVs (per notebook, per graded cell), the printed summary, and minimal feedback pages."""

import csv
import html
import statistics
from collections import Counter, defaultdict
from pathlib import Path

NOTEBOOK_FIELDS = [
    "student",
    "lesson",
    "score",
    "max_score",
    "percent",
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


def totals(result: dict) -> tuple[float, float]:
    final = result.get("final", [])
    return sum(g["score"] for g in final), sum(g["max_score"] for g in final)


def integrity_failures(result: dict) -> list[str]:
    verdicts = (result.get("integrity") or {}).get("verdicts", [])
    return [v["function"] for v in verdicts if v["status"] == "fail"]


def write_csvs(results: list[dict], folder: Path) -> tuple[Path, Path]:
    by_notebook, by_cell = folder / "grades_by_notebook.csv", folder / "grades_by_cell.csv"
    with by_notebook.open("w", newline="") as f:
        w = csv.DictWriter(f, NOTEBOOK_FIELDS)
        w.writeheader()
        for r in sorted(results, key=lambda r: (r["lesson"], r["student"])):
            score, max_score = totals(r)
            w.writerow(
                {
                    "student": r["student"],
                    "lesson": r["lesson"],
                    "score": score,
                    "max_score": max_score,
                    "percent": round(100 * score / max_score, 1) if max_score else "",
                    "status": r["status"],
                    "flagged": int(bool(r.get("flagged"))),
                    "integrity_failed": " ".join(integrity_failures(r)),
                    "message": r.get("message", ""),
                }
            )
    with by_cell.open("w", newline="") as f:
        w = csv.DictWriter(f, CELL_FIELDS)
        w.writeheader()
        for r in sorted(results, key=lambda r: (r["lesson"], r["student"])):
            for g in r.get("final", []):
                cell = r.get("cells", {}).get(g["grade_id"], {})
                w.writerow(
                    {
                        "student": r["student"],
                        "lesson": r["lesson"],
                        "grade_id": g["grade_id"],
                        "score": g["score"],
                        "max_score": g["max_score"],
                        "passed_in_kernel": int(bool(cell.get("passed"))),
                        "integrity_override": cell.get("overridden", ""),
                        "message": cell.get("message", "") or r.get("message", ""),
                    }
                )
    return by_notebook, by_cell


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def summary(results: list[dict], top: int = 5) -> str:
    """Score distribution, mean per exercise, most-failed tests, per lesson."""
    out = []
    by_lesson = defaultdict(list)
    for r in results:
        by_lesson[r["lesson"]].append(r)
    for lesson, rs in sorted(by_lesson.items()):
        percents = [100 * s / m if m else 0 for s, m in map(totals, rs)]
        statuses = Counter(r["status"] for r in rs)
        out.append(
            f"== {lesson}: {len(rs)} submission(s), "
            + ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))
            + (f"; median {statistics.median(percents):.0f}%" if percents else "")
        )
        buckets = Counter(min(int(p // 10), 9) for p in percents)
        rows = []
        for b in range(9, -1, -1):
            label = "100" if b == 9 else f"{b * 10}-{b * 10 + 9}"
            label = "90-100" if b == 9 else label
            rows.append([label + "%", buckets.get(b, 0), "#" * buckets.get(b, 0)])
        out += _table(rows, ["score", "students", ""])
        cells = defaultdict(list)
        failures = defaultdict(Counter)
        for r in rs:
            for g in r.get("final", []):
                cells[g["grade_id"]].append((g["score"], g["max_score"]))
                if g["score"] < g["max_score"]:
                    info = r.get("cells", {}).get(g["grade_id"], {})
                    why = info.get("overridden") and "integrity: " + info["overridden"]
                    why = why or info.get("message") or r.get("message") or r["status"]
                    failures[g["grade_id"]][why.split("\n")[0][:70]] += 1
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
    return "\n".join(out)


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
