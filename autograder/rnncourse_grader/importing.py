"""Import a class's submissions from a folder or a zip into nbgrader's ``submitted/`` layout.

Recognised layouts (mixed freely in one folder or archive, at any depth):

- nbgrader's own: ``<student>/<lesson>/<lesson>.ipynb``;
- one folder per student: ``<student>/<lesson>.ipynb``;
- a flat LMS export: ``<student>_<lesson>.ipynb``, also with the suffixes LMSs add to
  resubmissions (``<student>_<lesson>-1.ipynb``, ``<student>_<lesson> (2).ipynb``).

Everything else is reported, never silently dropped: files that are not notebooks, notebooks
whose name is no lesson, a second submission for the same student and lesson (the newest is
kept), unsafe names. Zip archives are read member by member with size caps and no path ever
leaves the extraction folder.
"""

import dataclasses
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
JUNK = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store", "Thumbs.db", "__pycache__"}
MAX_MEMBER_BYTES = 50_000_000
MAX_TOTAL_BYTES = 2_000_000_000
MAX_MEMBERS = 20_000


@dataclasses.dataclass
class Placed:
    student: str
    lesson: str
    path: Path  # the file to grade
    origin: str  # where it came from, as the instructor sees it
    mtime: float = 0.0


@dataclasses.dataclass
class ImportReport:
    placed: list[Placed] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"imported {len(self.placed)} submission(s)"] + [
            f"  not imported: {p}" for p in self.problems
        ]


def _student_id(raw: str) -> str | None:
    """A safe student id from a folder or file-name part; None if nothing usable is left."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", raw.strip()).strip("._-")
    return cleaned if cleaned and STUDENT_ID.match(cleaned) else None


def classify(rel: PurePosixPath, lessons: list[str]) -> tuple[str, str] | str:
    """(student, lesson) for a notebook's relative path, or the reason it cannot be placed."""
    parts = rel.parts
    stem = rel.stem
    if stem in lessons:
        if len(parts) >= 3 and parts[-2] == stem:  # <student>/<lesson>/<lesson>.ipynb
            raw = parts[-3]
        elif len(parts) >= 2 and parts[-2] not in lessons:  # <student>/<lesson>.ipynb
            raw = parts[-2]
        else:
            return "no student name in its path (expected <student>/<lesson>/<lesson>.ipynb)"
        student = _student_id(raw)
        return (student, stem) if student else f"'{raw}' cannot be used as a student id"
    alternatives = "|".join(re.escape(lesson) for lesson in sorted(lessons, key=len, reverse=True))
    flat = re.match(rf"^(?P<student>.+?)[_ ](?P<lesson>{alternatives})(?:[-_ ]?\(?\d+\)?)?$", stem)
    if flat:
        student = _student_id(flat["student"])
        if student:
            return student, flat["lesson"]
        return f"'{flat['student']}' cannot be used as a student id"
    return f"'{rel.name}' is not named after a lesson ({', '.join(lessons)})"


def _extract(archive: Path, target: Path, report: ImportReport) -> None:
    """Extract an archive member by member: no absolute paths, no '..', size caps."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            report.problems.append(f"{archive.name}: {len(members)} files, over {MAX_MEMBERS}")
            members = members[:MAX_MEMBERS]
        for info in members:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if info.is_dir():
                continue
            if name.is_absolute() or ".." in name.parts:
                report.problems.append(f"{info.filename}: unsafe path in the archive, skipped")
                continue
            if info.file_size > MAX_MEMBER_BYTES or total + info.file_size > MAX_TOTAL_BYTES:
                report.problems.append(f"{info.filename}: too large ({info.file_size:,} bytes)")
                continue
            total += info.file_size
            dest = target.joinpath(*name.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, length=1 << 20)
            mtime = time.mktime(info.date_time + (0, 0, -1))
            os.utime(dest, (mtime, mtime))


def scan(source: Path, lessons: list[str], scratch: Path | None = None) -> ImportReport:
    """Find every submission in a folder or zip; report what cannot be placed.

    A zip is extracted into ``scratch`` (a new temporary folder if None; the caller owns it).
    """
    source = Path(source)
    report = ImportReport()
    if not source.exists():
        report.problems.append(f"{source}: no such file or folder")
        return report
    if source.is_file():
        if not zipfile.is_zipfile(source):
            if source.suffix == ".ipynb":
                report.problems.append(f"{source}: a single notebook; give its folder or a zip")
            else:
                report.problems.append(f"{source}: neither a folder nor a zip archive")
            return report
        scratch = Path(scratch or tempfile.mkdtemp(prefix="rnncourse-import-"))
        _extract(source, scratch, report)
        root = scratch
    else:
        root = source

    chosen: dict[tuple[str, str], Placed] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if any(part in JUNK or part.startswith("._") for part in rel.parts):
            continue
        if path.suffix.lower() == ".zip":
            report.problems.append(f"{rel}: a nested archive; unpack it first")
            continue
        if path.suffix != ".ipynb":
            report.problems.append(f"{rel}: not a notebook (only notebooks are graded)")
            continue
        placed = classify(rel, lessons)
        if isinstance(placed, str):
            report.problems.append(f"{rel}: {placed}")
            continue
        student, lesson = placed
        item = Placed(student, lesson, path, str(rel), path.stat().st_mtime)
        other = chosen.get((student, lesson))
        if other is None:
            chosen[(student, lesson)] = item
            continue
        newer, older = (item, other) if item.mtime >= other.mtime else (other, item)
        chosen[(student, lesson)] = newer
        report.problems.append(
            f"{older.origin}: a second submission of {student}/{lesson}; kept the newer "
            f"{newer.origin}"
        )
    report.placed = sorted(chosen.values(), key=lambda p: (p.lesson, p.student))
    return report


def install(report: ImportReport, work: Path) -> list[tuple[str, str]]:
    """Copy the placed notebooks into ``work/submitted/<student>/<lesson>/<lesson>.ipynb``.

    A student's earlier submission of the same lesson is replaced (regrading replaces).
    Returns the (student, lesson) pairs installed.
    """
    installed = []
    for item in report.placed:
        folder = Path(work) / "submitted" / item.student / item.lesson
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        shutil.copyfile(item.path, folder / f"{item.lesson}.ipynb")
        installed.append((item.student, item.lesson))
    return installed
