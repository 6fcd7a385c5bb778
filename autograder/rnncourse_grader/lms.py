"""Submissions exported by a learning management system, mapped to the course's students.

An LMS names each file of its "download all submissions" zip after its own ids, not the
course's: Canvas after the student's sortable name, Canvas user id and attachment id (with a
``LATE`` marker); Moodle after the participant's full name and a *participant id* that is
different in every assignment. ``Naming`` reads those names; the ``Roster`` (and for Moodle
the assignment's grading worksheet, ``load_worksheet``) turns the LMS id into the course's
student id; ``Source.place`` decides, for one file, which student and lesson it is, when it
was handed in, and what the LMS needs to take the grade back (``Link``, saved beside the
submission for ``lms_grades``).

The file-name patterns follow nbgrader's ``zip_collect`` design: a named-group regular
expression applied by nbgrader's own ``FileNameCollectorPlugin``, with its groups
``student_id`` (here: the id *in the LMS*), ``file_id`` (the name the student gave the file)
and the optional ``timestamp``. ``zip_collect`` itself is not used: it writes whatever id a
file name carries straight into ``submitted/`` (an unknown id becomes a new student), takes
one assignment per run, and has no roster. The presets add groups of their own: ``name``
(the person, for messages), ``late`` (Canvas's marker) and ``attachment`` (Canvas's file id).

Nothing is silently dropped: a file whose name does not follow the naming, an LMS id the
roster does not know, a notebook named after no lesson, each is a reason in the import
report, and nobody is ever created from a file name.
"""

import csv
import dataclasses
import datetime as dt
import json
import logging
import re
import zoneinfo
from pathlib import Path, PurePosixPath

CANVAS, MOODLE, PATTERN = "canvas", "moodle", "pattern"

# Canvas (lib/content_zipper.rb): [sortable name, "LATE" if late, user id] joined by "_" with
# every non-word character removed, then "_<attachment id>_<the student's file name>".
# Anonymous grading puts "anon_<anonymous id>" where the name and the user id were; the name
# is lowercased, so an upper-case "LATE_" at the start is the marker, not a name.
CANVAS_PATTERN = (
    r"(?:.*/)?(?:(?!LATE_)(?P<name>.*?)_)?(?:(?P<late>LATE)_)?(?P<student_id>\d+|anon_\w+?)"
    r"_(?P<attachment>\d+)_(?P<file_id>[^/]+)$"
)
# Moodle (mod/assign/classes/downloader.php): "<full name>_<participant id>" with "_" in the
# name replaced by spaces, then "_assignsubmission_file" and either a folder (Moodle >= 4.1;
# "..._file_/" before) or, with "Download submissions in folders" off, "_<file name>".
MOODLE_PATTERN = (
    r"(?:.*/)?(?P<name>[^_/]*)_(?P<student_id>\d+)_assignsubmission_file(?:_?/|_)"
    r"(?P<file_id>.+)$"
)
REQUIRED_GROUPS = ("student_id", "file_id")  # nbgrader's FileNameCollectorPlugin contract
RESUBMITTED = r"(?:[-_ ]?\(?\d+\)?)?"  # what an LMS appends to a file name handed in again

ROSTER_ID, ROSTER_LMS_ID = "id", "lms_user_id"  # nbgrader's Student columns
WS_ID, WS_NAME, WS_EMAIL = "Identifier", "Full name", "Email address"
WS_SUBMITTED = "Last modified (submission)"
WS_PARTICIPANT = "Participant "  # Moodle's "hiddenuser" string, before the participant id
MOODLE_DATE = "%A, %d %B %Y, %I:%M %p"  # userdate()'s default (strftimedaydatetime), English


class LmsError(ValueError):
    """Input that cannot be used (a roster, worksheet or pattern); the message says why."""


# ----------------------------------------------------------------------------- naming
@dataclasses.dataclass(frozen=True)
class Fields:
    """What one file's name says, read by a ``Naming``."""

    lms_id: str
    file_name: str  # the name the student gave the file (its last path part)
    name: str = ""  # the person, as the LMS wrote it
    late: bool = False  # Canvas's LATE marker
    attachment: str = ""  # Canvas's attachment id: a later upload has a larger one
    timestamp: str = ""  # a pattern's ``timestamp`` group


@dataclasses.dataclass(frozen=True)
class Naming:
    """How an LMS names exported files: a named-group pattern for nbgrader's collector."""

    system: str
    regexp: str

    def __post_init__(self):
        try:
            groups = re.compile(self.regexp).groupindex
        except re.error as err:
            raise LmsError(f"the file-name pattern {self.regexp!r} is not a regex: {err}") from None
        missing = [g for g in REQUIRED_GROUPS if g not in groups]
        if missing:
            raise LmsError(
                f"the file-name pattern {self.regexp!r} has no (?P<{missing[0]}>...) group "
                "(nbgrader's FileNameCollectorPlugin needs student_id and file_id)"
            )

    def read(self, rel: PurePosixPath) -> Fields | None:
        """The fields of a path inside the export (None: it does not follow this naming)."""
        found = _collector(self.regexp).collect(rel.as_posix())
        if not found:
            return None
        return Fields(
            lms_id=found["student_id"],
            file_name=PurePosixPath(found["file_id"]).name,
            name=found.get("name") or "",
            late=bool(found.get("late")),
            attachment=found.get("attachment") or "",
            timestamp=found.get("timestamp") or "",
        )


_COLLECTORS: dict = {}


def _collector(regexp: str):
    """nbgrader's FileNameCollectorPlugin for a pattern, logging nowhere (we report)."""
    if regexp not in _COLLECTORS:
        from nbgrader.plugins import FileNameCollectorPlugin

        log = logging.getLogger("rnncourse_grader.lms.collector")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        _COLLECTORS[regexp] = FileNameCollectorPlugin(
            named_regexp=regexp, valid_ext=[".ipynb"], log=log
        )
    return _COLLECTORS[regexp]


def naming(system: str, pattern: str | None = None) -> Naming:
    """The naming of a preset (``canvas``, ``moodle``) or of a custom pattern."""
    if system == PATTERN:
        return Naming(PATTERN, pattern or "")
    presets = {CANVAS: CANVAS_PATTERN, MOODLE: MOODLE_PATTERN}
    if system not in presets:
        raise LmsError(f"unknown LMS {system!r} (expected {', '.join(presets)} or a pattern)")
    return Naming(system, presets[system])


# ----------------------------------------------------------------------------- the roster
@dataclasses.dataclass(frozen=True)
class Student:
    """A row of the class list (nbgrader's ``db student import`` columns)."""

    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.id

    @property
    def sortable_name(self) -> str:
        """Canvas's "Last, First"."""
        return ", ".join(p for p in (self.last_name, self.first_name) if p) or self.id


@dataclasses.dataclass(frozen=True)
class Roster:
    """The class list: the CSV ``nbgrader db student import`` reads, where the column
    ``lms_user_id`` (nbgrader's own Student field) holds each student's id in the LMS."""

    path: Path
    students: tuple[Student, ...]

    @classmethod
    def load(cls, path: Path) -> "Roster":
        """Read and check a roster; LmsError names the line and what is wrong."""
        from rnncourse_grader.importing import STUDENT_ID

        path = Path(path)
        header, rows = _read_csv(path, "roster")
        if ROSTER_ID not in header:
            raise LmsError(f"{path}: no '{ROSTER_ID}' column (has {', '.join(header)})")
        fields = {f.name for f in dataclasses.fields(Student)}
        students, seen = [], {}
        for line, row in rows:
            values = {k: (row.get(k) or "").strip() for k in fields}
            student = Student(**values)
            if not STUDENT_ID.match(student.id):
                raise LmsError(f"{path}:{line}: {student.id!r} cannot be a student id")
            if student.id in seen:
                first = seen[student.id]
                raise LmsError(f"{path}:{line}: student {student.id} again (line {first})")
            seen[student.id] = line
            students.append(student)
        roster = cls(path, tuple(students))
        roster.by_lms_id()  # an LMS id twice is an error now, not at the first file
        return roster

    def by_lms_id(self) -> dict[str, Student]:
        """LMS id -> student; an LMS id given to two students is an error."""
        found: dict[str, Student] = {}
        for s in self.students:
            if s.lms_user_id in found:
                raise LmsError(
                    f"{self.path}: {ROSTER_LMS_ID} {s.lms_user_id} is given to both "
                    f"{found[s.lms_user_id].id} and {s.id}"
                )
            if s.lms_user_id:
                found[s.lms_user_id] = s
        return found

    def by_email(self) -> dict[str, Student]:
        """Email (case-insensitive) -> student; an address given to two students is an error."""
        found: dict[str, Student] = {}
        for s in self.students:
            key = s.email.lower()
            if key in found:
                raise LmsError(
                    f"{self.path}: email {s.email} is given to both {found[key].id} and {s.id}"
                )
            if key:
                found[key] = s
        return found


def _read_csv(path: Path, what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and (line number, row) pairs of a UTF-8 CSV (a spreadsheet's BOM is fine)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise LmsError(f"{path}: no such {what} file") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise LmsError(f"{path}: not a UTF-8 CSV file ({err})") from None
    if not header:
        raise LmsError(f"{path}: empty {what} file")
    return header, rows


# ----------------------------------------------------------------------------- Moodle's worksheet
@dataclasses.dataclass(frozen=True)
class WorksheetRow:
    """A participant in a Moodle assignment's grading worksheet."""

    participant: str  # the id in "Participant 123", the same as in the export's folder names
    full_name: str
    email: str
    submitted: dt.datetime | None  # UTC, naive (as nbgrader stores times)


def load_worksheet(path: Path, tz: dt.tzinfo) -> dict[str, WorksheetRow]:
    """Participant id -> row of a grading worksheet ("Download grading worksheet").

    Its dates are Moodle's ``userdate`` in the downloading user's time zone: ``tz``.
    """
    path = Path(path)
    header, rows = _read_csv(path, "grading worksheet")
    missing = [c for c in (WS_ID, WS_EMAIL) if c not in header]
    if missing:
        raise LmsError(
            f"{path}: not a Moodle grading worksheet (no {', '.join(missing)} column; the "
            "worksheet must be downloaded with the email address shown, in English)"
        )
    found = {}
    for line, row in rows:
        ident = (row.get(WS_ID) or "").strip()
        if not ident.startswith(WS_PARTICIPANT) or not ident[len(WS_PARTICIPANT) :].isdigit():
            raise LmsError(f"{path}:{line}: identifier {ident!r} is not 'Participant <number>'")
        pid = ident[len(WS_PARTICIPANT) :]
        when = (row.get(WS_SUBMITTED) or "").strip()
        try:
            submitted = _moodle_date(when, tz)
        except ValueError:
            raise LmsError(
                f"{path}:{line}: submission time {when!r} is not Moodle's "
                f"'{MOODLE_DATE}' nor ISO 8601"
            ) from None
        email = (row.get(WS_EMAIL) or "").strip()
        found[pid] = WorksheetRow(pid, (row.get(WS_NAME) or "").strip(), email, submitted)
    return found


def _moodle_date(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    if text in ("", "-"):
        return None
    try:
        when = dt.datetime.strptime(text, MOODLE_DATE)
    except ValueError:
        when = dt.datetime.fromisoformat(text)
    return to_utc(when, tz)


def to_utc(when: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A time as nbgrader stores it (naive UTC); a naive time is read in ``tz``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def timezone(name: str) -> dt.tzinfo:
    """An IANA time zone by name (LmsError if there is none)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LmsError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from None


# ----------------------------------------------------------------------------- the link
@dataclasses.dataclass(frozen=True)
class Link:
    """Who a submission is in the LMS, saved beside it (``lms.json``): what the grade file
    and the feedback bundle need."""

    lms: str
    lms_id: str  # Canvas user id, Moodle participant id, or the pattern's student_id
    name: str  # the person as the LMS lists them (Canvas: "Last, First"; Moodle: full name)
    origin: str  # the file in the export
    email: str = ""
    attachment: str = ""  # Canvas's attachment id (feedback files are named after it)
    column: str = ""  # Canvas: the gradebook column of the lesson ("Title (id)")
    submitted: str = ""  # ISO, UTC: what timestamp.txt says
    late: bool = False  # the LMS said so (Canvas's marker)

    FILENAME = "lms.json"

    def save(self, folder: Path) -> None:
        (folder / self.FILENAME).write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> "Link | None":
        path = folder / cls.FILENAME
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def rank(self) -> tuple:
        """Which of two files of one student and lesson is the later submission."""
        return (self.submitted, int(self.attachment) if self.attachment.isdigit() else 0)


# ----------------------------------------------------------------------------- placing a file
@dataclasses.dataclass(frozen=True)
class Identity:
    """An LMS id resolved to a course student (and what the LMS said about them)."""

    student: Student
    email: str = ""
    name: str = ""  # as the LMS lists them (Moodle's worksheet); else from the roster
    submitted: dt.datetime | None = None  # Moodle's worksheet: the submission's time


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one exported file goes: the course's student and lesson, and its link."""

    student: str
    lesson: str
    link: Link
    note: str = ""  # something the instructor should know (a LATE file without a due date)


@dataclasses.dataclass(frozen=True)
class Source:
    """One LMS export: how it names files and who each LMS id is."""

    naming: Naming
    people: dict[str, Identity]  # LMS id -> student
    unknown: dict[str, str]  # LMS id -> why it maps to nobody (a worksheet row)
    where: str  # what the ids were looked up in, for messages
    tz: dt.tzinfo  # of the export's naive times
    lesson: str | None = None  # the one lesson the export is for (None: from file names)
    column: str = ""  # Canvas: the lesson's gradebook column, "Title (assignment id)"

    def place(
        self, rel: PurePosixPath, file_time: dt.datetime, lessons: list[str], due: dict
    ) -> Placement | str:
        """Where the notebook ``rel`` goes, or why it is not imported.

        ``file_time``: the file's time in the export (wall clock, naive); ``due``: lesson ->
        its due date in the gradebook (naive UTC, or None).
        """
        fields = self.naming.read(rel)
        if fields is None:
            return f"not named the way {self.naming.system} names exported files"
        lesson = self._lesson(fields.file_name, lessons)
        if lesson not in lessons:
            return lesson  # the reason
        who = self.people.get(fields.lms_id)
        if who is None:
            return self._unknown(fields)
        try:
            submitted, note = self._submitted(fields, who, file_time, due.get(lesson))
        except ValueError as err:
            return str(err)
        canvas = self.naming.system == CANVAS
        link = Link(
            lms=self.naming.system,
            lms_id=fields.lms_id,
            name=who.name or (who.student.sortable_name if canvas else who.student.full_name),
            origin=rel.as_posix(),
            email=who.email,
            attachment=fields.attachment,
            column=self.column or lesson,
            submitted=submitted.isoformat() if submitted else "",
            late=fields.late,
        )
        return Placement(who.student.id, lesson, link, note)

    def _lesson(self, file_name: str, lessons: list[str]) -> str:
        """The lesson a file is (or the reason it is none): named after one, with or without
        a resubmission suffix; else the lesson the export is for."""
        if self.lesson and self.lesson not in lessons:
            return f"{self.lesson} is not a lesson of this course ({', '.join(lessons)})"
        stem = PurePosixPath(file_name).stem
        for lesson in sorted(lessons, key=len, reverse=True):
            if re.fullmatch(re.escape(lesson) + RESUBMITTED, stem):
                if self.lesson and lesson != self.lesson:
                    return f"'{file_name}' is {lesson}, but this export is for {self.lesson}"
                return lesson
        if self.lesson:
            return self.lesson
        return f"'{file_name}' is not named after a lesson (give the lesson: course grade ID)"

    def _unknown(self, fields: Fields) -> str:
        who = f"{self.naming.system} id {fields.lms_id}"
        who += f" ({fields.name})" if fields.name else ""
        if fields.lms_id.startswith("anon_"):
            return f"{who}: anonymous grading hides the student; turn it off before exporting"
        why = self.unknown.get(fields.lms_id, f"not in {self.where}")
        return f"{who} is {why}: not graded (no student is created from a file name)"

    def _submitted(
        self, fields: Fields, who: Identity, file_time: dt.datetime, due: dt.datetime | None
    ) -> tuple[dt.datetime | None, str]:
        """When the file was handed in (naive UTC, None: unknown), and a note.

        Canvas: its zip stamps every entry with the time the zip was made, so only the LATE
        marker is known; Moodle: the worksheet's time; a pattern: its ``timestamp`` group,
        else the file's time in the export."""
        if self.naming.system == CANVAS:
            if not fields.late:
                return None, ""
            if due is None:
                return None, "marked LATE by Canvas, but the lesson has no due date: no penalty"
            return due + dt.timedelta(seconds=1), (
                "marked LATE by Canvas (its export has no submission time): recorded as "
                "handed in 1 s after the due date"
            )
        if self.naming.system == MOODLE:
            if who.submitted is None:
                return None, "no submission time in the grading worksheet: lateness not checked"
            return who.submitted, ""
        if fields.timestamp:
            from nbgrader.utils import parse_utc

            try:
                return to_utc(parse_utc(fields.timestamp), self.tz), ""
            except (ValueError, OverflowError):
                raise ValueError(f"timestamp {fields.timestamp!r} cannot be read") from None
        return to_utc(file_time, self.tz), ""


def source(
    system: str,
    roster: Path,
    *,
    pattern: str | None = None,
    worksheet: Path | None = None,
    tz: str = "UTC",
    lesson: str | None = None,
    column: str = "",
) -> Source:
    """The import settings of an LMS export; LmsError for anything that cannot work."""
    name, zone, students = naming(system, pattern), timezone(tz), Roster.load(roster)
    if system == MOODLE:
        if worksheet is None:
            raise LmsError(
                "Moodle's participant ids differ in every assignment: give the assignment's "
                "grading worksheet (--worksheet), which maps them to email addresses"
            )
        people, unknown = _moodle_people(students, load_worksheet(worksheet, zone))
        where = f"the grading worksheet {worksheet}"
    else:
        if worksheet is not None:
            raise LmsError("a grading worksheet maps Moodle's participant ids: use --lms moodle")
        people = {k: Identity(s, s.email) for k, s in students.by_lms_id().items()}
        if not people:
            raise LmsError(f"{roster}: no student has an {ROSTER_LMS_ID} (their id in the LMS)")
        unknown, where = {}, f"the roster {roster}"
    return Source(name, people, unknown, where, zone, lesson, column)


def _moodle_people(roster: Roster, rows: dict[str, WorksheetRow]):
    """Participant id -> student through the worksheet's email addresses, and the ids that
    map to nobody with why."""
    by_email = roster.by_email()
    people, unknown = {}, {}
    for pid, row in rows.items():
        student = by_email.get(row.email.lower())
        if student is None:
            unknown[pid] = (
                f"listed in the worksheet as {row.full_name} <{row.email}>, an address not in "
                f"{roster.path}"
            )
            continue
        people[pid] = Identity(student, row.email, row.full_name, row.submitted)
    return people, unknown
