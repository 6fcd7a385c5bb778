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

An LMS export (Canvas, Moodle, or a named-group pattern) is placed by ``lms.Source`` instead:
the LMS id in each name is looked up in the roster, and the submission's ``lms.Link`` and its
time (``timestamp.txt``, as nbgrader's collect writes it) are installed beside the notebook.
"""

import dataclasses
import datetime as dt
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from rnncourse_grader.lms import Link

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
    link: Link | None = None  # who it is in the LMS (LMS exports only)

    def rank(self) -> tuple:
        """Orders two files of one student and lesson: the later submission ranks higher
        (the LMS's submission time and attachment id first, then the file's time)."""
        return (self.link.rank() if self.link else (), self.mtime)


@dataclasses.dataclass
class ImportReport:
    placed: list[Placed] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # imported, with a remark

    def lines(self) -> list[str]:
        return (
            [f"imported {len(self.placed)} submission(s)"]
            + [f"  note: {n}" for n in self.notes]
            + [f"  not imported: {p}" for p in self.problems]
        )


# what places one notebook of a source: (path in the source, file) -> Placed or why not
Placer = Callable[[PurePosixPath, Path], "Placed | str"]


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


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name. Zip writers that omit the UTF-8 flag (rubyzip's default) still store
    UTF-8 names, which Python reads as cp437 ("mÃ¼ller" for "müller"): read those as UTF-8."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:  # a real cp437 name
        return info.filename


def _extract(archive: Path, target: Path, report: ImportReport) -> None:
    """Extract an archive member by member: no absolute paths, no '..', size caps."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            report.problems.append(f"{archive.name}: {len(members)} files, over {MAX_MEMBERS}")
            members = members[:MAX_MEMBERS]
        for info in members:
            name = PurePosixPath(_member_name(info).replace("\\", "/"))
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


def plain_placer(lessons: list[str]) -> Placer:
    """Places the common layouts (see the module's docstring) by their paths."""

    def place(rel: PurePosixPath, path: Path) -> Placed | str:
        placed = classify(rel, lessons)
        if isinstance(placed, str):
            return placed
        return Placed(placed[0], placed[1], path, str(rel), path.stat().st_mtime)

    return place


def lms_placer(source, lessons: list[str], due: dict, notes: list[str]) -> Placer:
    """Places an LMS export's notebooks with ``source`` (an ``lms.Source``); ``due``: lesson
    -> its due date; what the instructor should know about a placed file goes to ``notes``."""

    def place(rel: PurePosixPath, path: Path) -> Placed | str:
        mtime = path.stat().st_mtime
        found = source.place(rel, dt.datetime.fromtimestamp(mtime), lessons, due)
        if isinstance(found, str):
            return found
        if found.note:
            notes.append(f"{rel}: {found.student}/{found.lesson}: {found.note}")
        return Placed(found.student, found.lesson, path, str(rel), mtime, found.link)

    return place


def scan(
    source: Path, lessons: list[str], scratch: Path | None = None, place: Placer | None = None
) -> ImportReport:
    """Find every submission in a folder or zip; report what cannot be placed.

    A zip is extracted into ``scratch`` (a new temporary folder if None; the caller owns it).
    ``place`` decides each notebook's student and lesson (default: ``plain_placer``).
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

    place = place or plain_placer(lessons)
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
        item = place(rel, path)
        if isinstance(item, str):
            report.problems.append(f"{rel}: {item}")
            continue
        student, lesson = item.student, item.lesson
        other = chosen.get((student, lesson))
        if other is None:
            chosen[(student, lesson)] = item
            continue
        newer, older = (item, other) if item.rank() >= other.rank() else (other, item)
        chosen[(student, lesson)] = newer
        report.problems.append(
            f"{older.origin}: a second submission of {student}/{lesson}; kept the newer "
            f"{newer.origin}"
        )
    report.placed = sorted(chosen.values(), key=lambda p: (p.lesson, p.student))
    return report


def install(report: ImportReport, work: Path) -> list[tuple[str, str]]:
    """Copy the placed notebooks into ``work/submitted/<student>/<lesson>/<lesson>.ipynb``.

    A student's earlier submission of the same lesson is replaced (regrading replaces). An LMS
    file also gets its link (``lms.json``) and, when its time is known, ``timestamp.txt``:
    nbgrader records it and computes the lateness from it.
    Returns the (student, lesson) pairs installed.
    """
    installed = []
    for item in report.placed:
        folder = Path(work) / "submitted" / item.student / item.lesson
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        shutil.copyfile(item.path, folder / f"{item.lesson}.ipynb")
        if item.link is not None:
            item.link.save(folder)
            if item.link.submitted:
                when = dt.datetime.fromisoformat(item.link.submitted)
                (folder / "timestamp.txt").write_text(f"{when:%Y-%m-%d %H:%M:%S.%f} UTC")
        installed.append((item.student, item.lesson))
    return installed
