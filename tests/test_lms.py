"""LMS exports: file names as Canvas and Moodle write them, the roster, late work, grades back.

No kernel runs here (fast); tests/test_lms_grading.py grades one lesson imported from both.

What each rule was checked against (the archives below are built by these rules):

- Canvas "Download Submissions": canvas-lms ``lib/content_zipper.rb`` (github.com/instructure/
  canvas-lms): ``get_filename`` joins the sortable name (``sanitize_user_name``: lowercased,
  "_<digits>_" collapsed), "LATE" when ``submission.late?`` and the user id (or
  "anon_<id>" under anonymous grading) with "_", ``sanitize_file_name`` drops every non-word
  character; ``add_upload_submission`` appends "_<attachment id>_<display name>" (the name
  the student's file has, "-1" added by Canvas when it repeats an earlier upload's). Entries
  are written with ``get_output_stream``, stamped with the time the zip is made: the export
  carries no submission time, only the LATE marker. Uploading feedback back: ``Assignment#
  infer_comment_context_from_filename`` (app/models/assignment.rb) takes the first two
  all-digit "_" parts as user id and attachment id.
- Canvas gradebook import: ``app/models/gradebook_importer.rb``: a header whose first cells
  are "Student", "ID" (then "SIS User ID", "SIS Login ID") and whose student columns end with
  "Section"; a row starting "Points Possible"; students found by the ID column; assignments
  by "Title (id)" (``Assignment.title_and_id``), else by title. Also the instructor guide
  "How do I import grades in the Gradebook?" as summarised at teaching.resources.osu.edu
  (".../import-csv-file-carmen-grades": Student name or ID or SIS User ID, SIS Login ID,
  Section, Assignment columns).
- Moodle "Download all submissions": ``mod/assign/classes/downloader.php`` (github.com/moodle/
  moodle): prefix ``clean_filename(str_replace('_', ' ', fullname) . '_' .
  get_uniqueid_for_user())``; with "Download submissions in folders" (the default since 3.1)
  "<prefix>_assignsubmission_file/<path>" (Moodle < 4.1: "..._file_/", see the comment in
  ``mod/assign/feedback/file/importziplib.php``), without it
  "<prefix>_assignsubmission_file_<file name>"; blind marking writes "Participant" for the
  name. The participant id is a row of ``assign_user_mapping`` (per assignment and user):
  every assignment gives a student another id. The zip writer stamps entries with the
  download time, so the submission time comes from the grading worksheet.
- Moodle grading worksheet: ``mod/assign/feedback/offline/importgradeslib.php`` reads the
  columns named by the strings 'recordid' = "Identifier", 'grade' = "Grade" and
  'lastmodifiedgrade' = "Last modified (grade)" (all three required), the id after
  'hiddenuser' = "Participant "; ``locallib.php`` skips a grade changed in Moodle after that
  time, an empty grade and one over the maximum; ``gradingtable.php`` writes dates with
  ``userdate`` ('%A, %d %B %Y, %I:%M %p' in English). Feedback files:
  ``importziplib.php`` splits each path part at "_" into full name, participant id, plugin
  type and name ("assignfeedback", "file").
- nbgrader: ``FileNameCollectorPlugin`` (docs: plugins/zipcollect-plugin.rst: groups
  student_id, file_id, optional timestamp); late penalties (docs: plugins/late-plugin.rst:
  ``timestamp.txt`` per submission, the assignment's duedate, ``c.LateSubmissionPlugin.
  penalty_method = 'zero'`` or ``c.AssignLatePenalties.plugin_class``), ``nbgrader db student
  import`` (its Student table has ``lms_user_id``).
"""

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from nbgrader.plugins import BasePlugin
from traitlets.config import Config

from rnncourse_grader import batch, cli, grading, importing, late, lms, lms_grades, pipeline
from rnncourse_grader.outcome import CellGrade, GradeResult
from tests.course import ROOT

LESSON = "01_rnn_forward"
LESSONS = [LESSON, "02_bptt"]
NOTEBOOK = (ROOT / "lessons" / LESSON / f"{LESSON}.ipynb").read_text()
DUE = dt.datetime(2025, 10, 1, 23, 59)  # naive UTC, as nbgrader keeps due dates
ROSTER = [
    # id, first_name, last_name, email, lms_user_id (Canvas user id)
    ("ada", "Ada", "Lovelace", "ada@uni.example", "1001"),
    ("bob", "Bob", "Byte", "bob@uni.example", "1002"),
    ("jose", "José", "Müller", "jose@uni.example", "1003"),
    ("zoe", "Zoë", "Ørsted", "zoe@uni.example", ""),
    ("cyd", "Cyd", "Charisse", "Cyd@Uni.example", ""),
]


# ----------------------------------------------------------------------------- builders
UNSAFE_IN_ATTACHMENT_NAMES = re.compile(r'[\x00/\\:*?"<>|]+')  # sanitize_attachment_filename


def canvas_name(sortable: str, user: int, attachment: int, file: str, late: bool = False) -> str:
    """A member of Canvas's submissions zip, named as content_zipper.rb names it."""
    name = re.sub(r"_(\d+)_", r"\1", sortable).lower()
    prefix = "_".join([name] + (["LATE"] if late else []) + [str(user)])
    prefix = re.sub(r"[^\w]", "", prefix)
    return f"{prefix}_{attachment}_{UNSAFE_IN_ATTACHMENT_NAMES.sub('_', file)}"


def moodle_path(full_name: str, participant: int, file: str, mode: str = "folders") -> str:
    """A member of Moodle's "Download all submissions" zip (downloader.php)."""
    prefix = f"{full_name.replace('_', ' ')}_{participant}"
    if mode == "folders":
        return f"{prefix}_assignsubmission_file/{file}"
    if mode == "folders<4.1":
        return f"{prefix}_assignsubmission_file_/{file}"
    return f"{prefix}_assignsubmission_file_{file}"


def moodle_date(when: dt.datetime) -> str:
    return when.strftime(lms.MOODLE_DATE)


def write_zip(path: Path, members: list[tuple[str, str, tuple]]) -> Path:
    """(name, content, zip date_time) members."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, content, when in members:
            zf.writestr(zipfile.ZipInfo(name, when), content)
    return path


def write_roster(path: Path, rows=ROSTER, header=None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header or ["id", "first_name", "last_name", "email", "lms_user_id"])
        w.writerows(rows)
    return path


def write_worksheet(path: Path, rows: list[tuple]) -> Path:
    """Moodle's worksheet: (participant, full name, email, submitted or None)."""
    header = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade"]
    header += ["Grade can be changed", lms.WS_SUBMITTED, "Last modified (grade)"]
    header += ["Feedback comments"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for pid, name, email, submitted in rows:
            when = moodle_date(submitted) if submitted else "-"
            status = "Submitted for grading" if submitted else "No submission"
            w.writerow([f"Participant {pid}", name, email, status, "", "10.00", "Yes", when, "-"])
    return path


def import_export(tmp_path, archive, source: lms.Source, due=DUE):
    """scan + install an LMS export as course grade does; (report, work folder)."""
    notes: list[str] = []
    place = importing.lms_placer(source, LESSONS, {LESSON: due, "02_bptt": None}, notes)
    report = importing.scan(archive, LESSONS, scratch=tmp_path / "x", place=place)
    report.notes += notes
    work = tmp_path / "work"
    importing.install(report, work)
    return report, work


# ----------------------------------------------------------------------------- naming
@pytest.mark.parametrize(
    "sortable, user, attachment, file, late",
    [
        ("Lovelace, Ada", 1001, 5001, "01_rnn_forward.ipynb", False),
        ("Byte, Bob", 1002, 5002, "01_rnn_forward.ipynb", True),
        ("Müller, José", 1003, 5004, "01_rnn_forward-1.ipynb", False),  # a resubmission
        ("O'Neil_2_, Zoë", 1009, 5010, "my notebook.ipynb", True),
    ],
)
def test_canvas_file_names_are_read_as_content_zipper_writes_them(
    sortable, user, attachment, file, late
):
    name = canvas_name(sortable, user, attachment, file, late)
    fields = lms.naming(lms.CANVAS).read(PurePosixPath(name))
    assert (fields.lms_id, fields.attachment, fields.file_name, fields.late) == (
        str(user),
        str(attachment),
        file,
        late,
    )
    assert fields.name == re.sub(r"[^\w]", "", re.sub(r"_(\d+)_", r"\1", sortable).lower())


def test_canvas_anonymous_names_and_text_entries():
    canvas = lms.naming(lms.CANVAS)
    fields = canvas.read(PurePosixPath("LATE_anon_x7Kq2_5001_01_rnn_forward.ipynb"))
    assert (fields.lms_id, fields.late, fields.name) == ("anon_x7Kq2", True, "")
    assert canvas.read(PurePosixPath("bytebob_1002_text.html")) is None
    assert canvas.read(PurePosixPath("ada_01_rnn_forward.ipynb")) is None  # not Canvas's


@pytest.mark.parametrize("mode", ["folders", "folders<4.1", "flat"])
def test_moodle_paths_are_read_as_downloader_writes_them(mode):
    moodle = lms.naming(lms.MOODLE)
    path = moodle_path("José María_Müller", 734512, "01_rnn_forward.ipynb", mode)
    fields = moodle.read(PurePosixPath(path))
    assert (fields.lms_id, fields.name, fields.file_name) == (
        "734512",
        "José María Müller",  # Moodle writes "_" in a name as a space
        "01_rnn_forward.ipynb",
    )
    blind = moodle.read(PurePosixPath(moodle_path("Participant", 88, "sub/01_rnn_forward.ipynb")))
    assert (blind.lms_id, blind.file_name) == ("88", "01_rnn_forward.ipynb")
    text = PurePosixPath("Zoë Ørsted_7002_assignsubmission_onlinetext/onlinetext.html")
    assert moodle.read(text) is None


@pytest.mark.parametrize(
    "pattern, message",
    [
        (r"(?P<student_id>\w+)_(?P<file>.+)", "no (?P<file_id>...) group"),
        (r"(?P<file_id>.+)", "no (?P<student_id>...) group"),
        (r"(?P<student_id>\w+", "is not a regex"),
    ],
)
def test_a_pattern_must_be_a_regex_with_nbgraders_groups(pattern, message):
    with pytest.raises(lms.LmsError, match=re.escape(message)):
        lms.naming(lms.PATTERN, pattern)


# ----------------------------------------------------------------------------- roster
@pytest.mark.parametrize(
    "header, rows, message",
    [
        (["student", "lms_user_id"], [("ada", "1")], "no 'id' column"),
        (None, [ROSTER[0], ROSTER[1][:4] + ("1001",)], "lms_user_id 1001 is given to both ada"),
        (None, [ROSTER[0], ROSTER[0][:4] + ("77",)], ":3: student ada again (line 2)"),
        (None, [("a b", "A", "B", "", "3")], "'a b' cannot be a student id"),
        (None, [("ada", "Ada", "L", "x@y", "")], "no student has an lms_user_id"),
    ],
)
def test_a_roster_that_cannot_map_ids_is_refused(tmp_path, header, rows, message):
    roster = write_roster(tmp_path / "students.csv", rows, header)
    with pytest.raises(lms.LmsError, match=re.escape(message)):
        lms.source(lms.CANVAS, roster)


def test_a_roster_written_by_a_spreadsheet_and_a_missing_one(tmp_path):
    roster = tmp_path / "students.csv"
    text = "id,first_name,last_name,email,lms_user_id\nzoe,Zoë,Ørsted,z@x,42\n"
    roster.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Excel's UTF-8 BOM
    assert lms.source(lms.CANVAS, roster).people["42"].student.sortable_name == "Ørsted, Zoë"
    with pytest.raises(lms.LmsError, match="no such roster file"):
        lms.source(lms.CANVAS, tmp_path / "nope.csv")


def test_moodle_needs_the_assignments_worksheet_and_a_readable_one(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    with pytest.raises(lms.LmsError, match="differ in every assignment"):
        lms.source(lms.MOODLE, roster)
    with pytest.raises(lms.LmsError, match="maps Moodle's participant ids"):
        lms.source(lms.CANVAS, roster, worksheet=tmp_path / "w.csv")
    sheet = tmp_path / "w.csv"
    sheet.write_text("Identifier,Full name,Grade\nParticipant 1,A,\n")
    with pytest.raises(lms.LmsError, match="no Email address column"):
        lms.source(lms.MOODLE, roster, worksheet=sheet)
    sheet.write_text("Identifier,Email address\nStudent 1,a@b\n")
    with pytest.raises(lms.LmsError, match=":2: identifier 'Student 1' is not 'Participant"):
        lms.source(lms.MOODLE, roster, worksheet=sheet)
    sheet.write_text(f"Identifier,Email address,{lms.WS_SUBMITTED}\nParticipant 1,a@b,soon\n")
    with pytest.raises(lms.LmsError, match="submission time 'soon'"):
        lms.source(lms.MOODLE, roster, worksheet=sheet)
    write_roster(roster, [ROSTER[0], ("eve",) + ROSTER[0][1:4] + ("",)])
    write_worksheet(sheet, [(1, "Ada Lovelace", "ada@uni.example", None)])
    with pytest.raises(lms.LmsError, match="email ada@uni.example is given to both ada and eve"):
        lms.source(lms.MOODLE, roster, worksheet=sheet)


def test_the_worksheets_times_are_read_in_the_given_time_zone(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    sheet = write_worksheet(
        tmp_path / "w.csv", [(7, "Zoë Ørsted", "zoe@uni.example", dt.datetime(2025, 10, 2, 1, 30))]
    )
    berlin = lms.source(lms.MOODLE, roster, worksheet=sheet, tz="Europe/Berlin")
    assert berlin.people["7"].submitted == dt.datetime(2025, 10, 1, 23, 30)  # CEST = UTC+2
    with pytest.raises(lms.LmsError, match="unknown time zone 'Mars/Olympus'"):
        lms.source(lms.MOODLE, roster, worksheet=sheet, tz="Mars/Olympus")


# ----------------------------------------------------------------------------- importing
ZIPPED = (2025, 10, 9, 8, 0, 0)  # when the instructor downloaded the export


def test_a_canvas_export_is_imported_through_the_roster(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    archive = write_zip(
        tmp_path / "submissions.zip",
        [
            (canvas_name("Lovelace, Ada", 1001, 5001, "01_rnn_forward.ipynb"), NOTEBOOK, ZIPPED),
            (canvas_name("Byte, Bob", 1002, 5002, "01_rnn_forward.ipynb", True), "{}", ZIPPED),
            # José handed in twice: the newer upload has the larger attachment id (and here
            # an older time in the zip: times in a Canvas zip say nothing about submissions)
            (canvas_name("Müller, José", 1003, 5003, "01_rnn_forward.ipynb"), "old", ZIPPED),
            (
                canvas_name("Müller, José", 1003, 5004, "01_rnn_forward-1.ipynb"),
                "new",
                (2025, 10, 9, 7, 0, 0),
            ),
            (canvas_name("Ünknown, Zoë", 1009, 5009, "01_rnn_forward.ipynb"), "{}", ZIPPED),
            ("bytebob_1002_text.html", "<p>see attached</p>", ZIPPED),
        ],
    )
    source = lms.source(lms.CANVAS, roster, lesson=LESSON, column="RNN forward (4242)")
    report, work = import_export(tmp_path, archive, source)
    assert [(p.student, p.lesson) for p in report.placed] == [
        ("ada", LESSON),
        ("bob", LESSON),
        ("jose", LESSON),
    ]
    assert report.problems == [
        "bytebob_1002_text.html: not a notebook (only notebooks are graded)",
        "müllerjosé_1003_5003_01_rnn_forward.ipynb: a second submission of jose/01_rnn_forward;"
        " kept the newer müllerjosé_1003_5004_01_rnn_forward-1.ipynb",
        "ünknownzoë_1009_5009_01_rnn_forward.ipynb: canvas id 1009 (ünknownzoë) is not in the "
        f"roster {tmp_path / 'students.csv'}: not graded (no student is created from a file name)",
    ]
    assert report.notes == [
        "bytebob_LATE_1002_5002_01_rnn_forward.ipynb: bob/01_rnn_forward: marked LATE by Canvas"
        " (its export has no submission time): recorded as handed in 1 s after the due date"
    ]
    submitted = work / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "bob", "jose"]  # no 1009
    assert (submitted / "jose" / LESSON / f"{LESSON}.ipynb").read_text() == "new"
    bob = submitted / "bob" / LESSON
    assert (bob / "timestamp.txt").read_text() == "2025-10-01 23:59:01.000000 UTC"
    assert not (submitted / "ada" / LESSON / "timestamp.txt").exists()  # on time: no time known
    link = lms.Link.load(submitted / "jose" / LESSON)
    assert link == lms.Link(
        lms="canvas",
        lms_id="1003",
        name="Müller, José",
        origin="müllerjosé_1003_5004_01_rnn_forward-1.ipynb",
        email="jose@uni.example",
        attachment="5004",
        column="RNN forward (4242)",
    )


class NoUtf8Flag(zipfile.ZipInfo):
    """A member written as rubyzip writes by default: UTF-8 name bytes, no UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


def test_non_ascii_names_without_the_zips_utf8_flag(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    name = canvas_name("Müller, José", 1003, 5004, "01_rnn_forward.ipynb")
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(NoUtf8Flag(name, ZIPPED), "{}")
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() != [name]  # Python alone reads it as cp437
    report, _ = import_export(tmp_path, archive, lms.source(lms.CANVAS, roster))
    assert [(p.student, p.origin) for p in report.placed] == [("jose", name)]


def test_a_late_canvas_file_without_a_due_date_is_imported_and_said(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    name = canvas_name("Byte, Bob", 1002, 5002, "01_rnn_forward.ipynb", True)
    archive = write_zip(tmp_path / "s.zip", [(name, "{}", ZIPPED)])
    report, work = import_export(tmp_path, archive, lms.source(lms.CANVAS, roster), due=None)
    assert report.notes == [
        f"{name}: bob/01_rnn_forward: marked LATE by Canvas, but the lesson has no due date: "
        "no penalty"
    ]
    assert not (work / "submitted" / "bob" / LESSON / "timestamp.txt").exists()


def test_a_file_for_another_lesson_or_named_after_none(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    archive = write_zip(
        tmp_path / "s.zip",
        [
            (canvas_name("Lovelace, Ada", 1001, 1, "02_bptt.ipynb"), "{}", ZIPPED),
            (canvas_name("Byte, Bob", 1002, 2, "homework (final).ipynb"), "{}", ZIPPED),
        ],
    )
    one = lms.source(lms.CANVAS, roster, lesson=LESSON)
    report, _ = import_export(tmp_path, archive, one)
    assert [(p.student, p.lesson) for p in report.placed] == [("bob", LESSON)]
    assert "'02_bptt.ipynb' is 02_bptt, but this export is for 01_rnn_forward" in report.problems[0]
    report, _ = import_export(tmp_path / "b", archive, lms.source(lms.CANVAS, roster))
    assert [(p.student, p.lesson) for p in report.placed] == [("ada", "02_bptt")]
    assert "'homework (final).ipynb' is not named after a lesson" in report.problems[0]
    typo = lms.source(lms.CANVAS, roster, lesson="01_rnn_fwd")
    report, _ = import_export(tmp_path / "c", archive, typo)
    assert not report.placed and "01_rnn_fwd is not a lesson of this course" in report.problems[0]


def test_a_moodle_export_is_imported_through_the_worksheet(tmp_path):
    roster = write_roster(tmp_path / "students.csv")
    on_time, late_time = dt.datetime(2025, 10, 1, 20, 0), dt.datetime(2025, 10, 2, 9, 15)
    sheet = write_worksheet(
        tmp_path / "worksheet.csv",
        [
            (7001, "Cyd Charisse", "cyd@uni.example", late_time),  # the roster says Cyd@Uni
            (7002, "Zoë Ørsted", "zoe@uni.example", on_time),
            (7003, "Mallory Unlisted", "mallory@elsewhere.example", on_time),
        ],
    )
    archive = write_zip(
        tmp_path / "moodle.zip",
        [
            (moodle_path("Cyd Charisse", 7001, "01_rnn_forward.ipynb"), "cyd", ZIPPED),
            (moodle_path("Zoë Ørsted", 7002, "01_rnn_forward.ipynb"), "zoe", ZIPPED),
            (moodle_path("Mallory Unlisted", 7003, "01_rnn_forward.ipynb"), "m", ZIPPED),
            (moodle_path("Nobody Known", 7999, "01_rnn_forward.ipynb"), "n", ZIPPED),
            ("Zoë Ørsted_7002_assignsubmission_onlinetext/onlinetext.html", "<p/>", ZIPPED),
        ],
    )
    source = lms.source(lms.MOODLE, roster, worksheet=sheet, lesson=LESSON)
    report, work = import_export(tmp_path, archive, source)
    assert [(p.student, p.lesson) for p in report.placed] == [("cyd", LESSON), ("zoe", LESSON)]
    assert report.problems == [
        "Mallory Unlisted_7003_assignsubmission_file/01_rnn_forward.ipynb: moodle id 7003 "
        "(Mallory Unlisted) is listed in the worksheet as Mallory Unlisted "
        f"<mallory@elsewhere.example>, an address not in {roster}: not graded (no student is "
        "created from a file name)",
        "Nobody Known_7999_assignsubmission_file/01_rnn_forward.ipynb: moodle id 7999 (Nobody "
        f"Known) is not in the grading worksheet {sheet}: not graded (no student is created "
        "from a file name)",
        "Zoë Ørsted_7002_assignsubmission_onlinetext/onlinetext.html: not a notebook (only "
        "notebooks are graded)",
    ]
    folder = work / "submitted"
    assert sorted(p.name for p in folder.iterdir()) == ["cyd", "zoe"]
    cyd = folder / "cyd" / LESSON
    assert (cyd / "timestamp.txt").read_text() == "2025-10-02 09:15:00.000000 UTC"
    assert lms.Link.load(folder / "zoe" / LESSON) == lms.Link(
        lms="moodle",
        lms_id="7002",
        name="Zoë Ørsted",
        origin="Zoë Ørsted_7002_assignsubmission_file/01_rnn_forward.ipynb",
        email="zoe@uni.example",
        column=LESSON,
        submitted="2025-10-01T20:00:00",
    )
    # Zoë hands in again; the next export (its worksheet has the new time) replaces her file
    write_worksheet(sheet, [(7002, "Zoë Ørsted", "zoe@uni.example", late_time)])
    again = write_zip(
        tmp_path / "moodle2.zip",
        [(moodle_path("Zoë Ørsted", 7002, "01_rnn_forward.ipynb"), "zoe, again", ZIPPED)],
    )
    source = lms.source(lms.MOODLE, roster, worksheet=sheet, lesson=LESSON)
    import_export(tmp_path / "2", again, source)
    report, _ = import_export(tmp_path, again, source)
    assert (folder / "zoe" / LESSON / f"{LESSON}.ipynb").read_text() == "zoe, again"
    assert (folder / "zoe" / LESSON / "timestamp.txt").read_text().startswith("2025-10-02 09:15")


def test_a_pattern_of_ones_own_with_nbgraders_timestamp_group(tmp_path):
    """nbgrader's documented example name, with the lesson after the attempt's time."""
    roster = write_roster(tmp_path / "students.csv", [("ada", "Ada", "L", "", "bitdiddle")])
    pattern = r".*_(?P<student_id>\w+?)_attempt_(?P<timestamp>[0-9 :-]+)_(?P<file_id>.+)"
    archive = write_zip(
        tmp_path / "s.zip",
        [
            ("ps1_bitdiddle_attempt_2025-10-02 10:00:00_01_rnn_forward.ipynb", "2nd", ZIPPED),
            ("ps1_bitdiddle_attempt_2025-09-30 10:00:00_01_rnn_forward.ipynb", "1st", ZIPPED),
            ("ps1_bitdiddle_attempt_someday_01_rnn_forward.ipynb", "?", ZIPPED),
        ],
    )
    source = lms.source(lms.PATTERN, roster, pattern=pattern, tz="Europe/Berlin")
    report, work = import_export(tmp_path, archive, source)
    assert [p.origin for p in report.placed] == [
        "ps1_bitdiddle_attempt_2025-10-02 10:00:00_01_rnn_forward.ipynb"
    ]
    assert report.problems[0].startswith("ps1_bitdiddle_attempt_2025-09-30 10:00:00_")
    assert "not named the way pattern names exported files" in report.problems[1]
    stamp = (work / "submitted" / "ada" / LESSON / "timestamp.txt").read_text()
    assert stamp == "2025-10-02 08:00:00.000000 UTC"


# ----------------------------------------------------------------------------- late penalty
@pytest.fixture
def alembic_on_path(monkeypatch):
    """nbgrader runs ``alembic`` by name when it creates a gradebook (see pipeline.tool_env)."""
    monkeypatch.setenv("PATH", pipeline.tool_env()["PATH"])


def _gradebook(tmp_path, due):
    from nbgrader.api import Gradebook

    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment(LESSON, duedate=due)
        gb.add_notebook(LESSON, LESSON)
        for name, points in (("test_a", 2.0), ("test_b", 3.0)):
            gb.add_grade_cell(name, LESSON, LESSON, max_score=points, cell_type="code")
    return db


def _merge(db, tmp_path, timestamp, config):
    from nbgrader.api import Gradebook

    result = GradeResult(0, "bob", LESSON, timestamp=timestamp)
    result.cells = [CellGrade(LESSON, "test_a", 2.0, 2.0), CellGrade(LESSON, "test_b", 3.0, 1.0)]
    with Gradebook(f"sqlite:///{db}") as gb:
        batch.merge(gb, result, tmp_path / "work", config)
        sub = gb.find_submission(LESSON, "bob")
        return result, sub.score, sub.late_submission_penalty


def test_merging_a_late_submission_applies_the_courses_penalty_plugin(tmp_path, alembic_on_path):
    zero = Config()
    zero.LateSubmissionPlugin.penalty_method = "zero"
    db = _gradebook(tmp_path, "2025-10-01 23:59:00 UTC")
    result, score, penalty = _merge(db, tmp_path, "2025-10-02 00:59:00.000000 UTC", zero)
    assert (score, penalty) == (3.0, 3.0)  # raw 3, all of it taken: nbgrader's "zero"
    assert (result.seconds_late, result.late_penalty, result.penalised()) == (3600.0, 3.0, 0.0)
    per_hour = Config()
    per_hour.AssignLatePenalties.plugin_class = "tests.test_lms.PointPerHour"
    result, _, penalty = _merge(db, tmp_path, "2025-10-02 01:59:00.000000 UTC", per_hour)
    assert penalty == 2.0 and result.penalised() == 1.0
    result, _, penalty = _merge(db, tmp_path, "2025-10-01 23:00:00.000000 UTC", zero)
    assert penalty == 0.0 and result.late_penalty == 0.0  # on time


def test_no_due_date_no_penalty_and_the_due_date_is_the_gradebooks(tmp_path, alembic_on_path):
    zero = Config()
    zero.LateSubmissionPlugin.penalty_method = "zero"
    db = _gradebook(tmp_path, None)
    _, _, penalty = _merge(db, tmp_path, "2030-01-01 00:00:00.000000 UTC", zero)
    assert penalty == 0.0
    assert late.due_dates(db, [LESSON, "02_bptt"]) == {LESSON: None, "02_bptt": None}
    assert late.due_dates(
        _gradebook(tmp_path / "b", "2025-10-01 23:59:00 Europe/Berlin"), [LESSON]
    )[LESSON] == dt.datetime(2025, 10, 1, 21, 59)
    assert late.due_dates(tmp_path / "none.db", [LESSON]) == {LESSON: None}


def test_a_due_date_set_before_the_release_is_kept_and_the_lesson_completed(
    tmp_path, alembic_on_path
):
    """``nbgrader db assignment add ID --duedate`` before ``course release`` records the lesson
    without notebooks; grading must still find them (and keep the due date)."""
    from nbgrader.api import Gradebook

    from tests.course import scratch_course

    root, env = scratch_course(tmp_path, with_sources=False)
    work = pipeline.work_dir(root, env)
    work.mkdir(parents=True)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        gb.add_assignment(LESSON, duedate="2025-10-01 23:59:00 UTC")
    batch.ensure_assignments([LESSON], root, env)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(LESSON)
        assert [nb.name for nb in assignment.notebooks] == [LESSON]
        assert assignment.duedate == DUE


class PointPerHour(BasePlugin):
    """A course's own late plugin, as nbgrader's docs write one (one point per hour)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return round(total_seconds_late / 3600)


# ----------------------------------------------------------------------------- grades back
def _linked(work: Path, student: str, link: lms.Link, feedback: str | None) -> None:
    folder = work / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    link.save(folder)
    if feedback is not None:
        page = work / "feedback" / student / LESSON / f"{LESSON}.html"
        page.parent.mkdir(parents=True)
        page.write_text(feedback)


def _result(student: str, raw: float, penalty: float = 0.0) -> GradeResult:
    from rnncourse_grader.outcome import FinalGrade

    r = GradeResult(0, student, LESSON, late_penalty=penalty)
    r.final = [FinalGrade(LESSON, "test_a", raw, 10.0)]
    return r


def test_canvas_and_moodle_grade_files_line_by_line(tmp_path):
    work = tmp_path / "work"
    canvas = dict(lms="canvas", column="RNN forward (4242)")
    _linked(
        work,
        "ada",
        lms.Link(lms_id="1001", name="Lovelace, Ada", origin="a", attachment="5001", **canvas),
        "<p>ada</p>",
    )
    _linked(
        work,
        "bob",
        lms.Link(
            lms_id="1002", name="Byte, Bob", origin="b", attachment="5002", late=True, **canvas
        ),
        "<p>bob</p>",
    )
    _linked(
        work,
        "eve",
        lms.Link(lms_id="1005", name="Evans, Eve", origin="e", attachment="5005", **canvas),
        None,
    )
    moodle = dict(lms="moodle", column=LESSON)
    zoe = lms.Link(
        lms_id="7002",
        name="Zoë_Ørsted",
        origin="z",
        email="zoe@uni.example",
        submitted="2025-10-01T20:00:00",
        **moodle,
    )
    _linked(work, "zoe", zoe, "<p>zoe</p>")
    _linked(
        work,
        "cyd",
        lms.Link(
            lms_id="7001",
            name="Cyd Charisse",
            origin="c",
            email="cyd@uni.example",
            submitted="2025-10-02T09:15:00",
            **moodle,
        ),
        "<p>cyd</p>",
    )
    _linked(work, "ian", lms.Link(lms="pattern", lms_id="x", name="Ian", origin="i"), "<p/>")
    results = [
        _result("ada", 10.0),
        _result("bob", 9.5, penalty=9.5),
        _result("eve", 7.0),  # not graded this run: left out, never a blank grade
        _result("zoe", 8.25),
        _result("cyd", 10.0, penalty=10.0),
        _result("ian", 3.0),  # a pattern's export: no LMS file
    ]
    now = dt.datetime(2025, 10, 9, 12, 0, tzinfo=dt.UTC)
    files = lms_grades.write(results, work, {("eve", LESSON)}, now=now)
    assert [f.name for f in files] == [
        "canvas_01_rnn_forward.csv",
        "canvas_01_rnn_forward_feedback.zip",
        "moodle_01_rnn_forward.csv",
        "moodle_01_rnn_forward_feedback.zip",
    ]
    assert files[0].read_text(encoding="utf-8").splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,RNN forward (4242)",
        "Points Possible,,,,,10",
        '"Lovelace, Ada",1001,,,,10',
        '"Byte, Bob",1002,,,,0',
    ]
    assert files[2].read_text(encoding="utf-8").splitlines() == [
        "Identifier,Full name,Email address,Grade,Maximum Grade,Last modified (submission),"
        "Last modified (grade),Feedback comments",
        "Participant 7001,Cyd Charisse,cyd@uni.example,0,10,2025-10-02T09:15:00+00:00,"
        '2025-10-09T12:00:00+00:00,"Autograded: 10 / 10. Late: 10 taken off, 0 counts. The '
        'feedback page is attached."',
        "Participant 7002,Zoë_Ørsted,zoe@uni.example,8.25,10,2025-10-01T20:00:00+00:00,"
        "2025-10-09T12:00:00+00:00,Autograded: 8.25 / 10. The feedback page is attached.",
    ]
    with zipfile.ZipFile(files[1]) as zf:
        assert zf.namelist() == [
            "bytebob_1002_5002_feedback.html",
            "lovelaceada_1001_5001_feedback.html",
        ]
        assert zf.read("bytebob_1002_5002_feedback.html") == b"<p>bob</p>"
    with zipfile.ZipFile(files[3]) as zf:
        assert zf.namelist() == [
            "Cyd Charisse_7001_assignfeedback_file/01_rnn_forward-feedback.html",
            "Zoë Ørsted_7002_assignfeedback_file/01_rnn_forward-feedback.html",
        ]


def test_canvas_reads_the_file_back_as_its_importer_does(tmp_path):
    """The rules of gradebook_importer.rb, applied to what canvas_csv writes."""
    link = lms.Link(lms="canvas", lms_id="1003", name="Müller, José", origin="", column="A (7)")
    rows = [lms_grades.Row("jose", link, 9.0, 0.0, 10.0, None)]
    table = list(csv.reader(io.StringIO(lms_grades.canvas_csv(rows))))
    header = table[0]
    assert header[0].startswith("Student") and "ID" in header[1]
    assert re.match(r"SIS\s+User\s+ID", header[2]) and re.match(r"SIS\s+Login\s+ID", header[3])
    assert "Section" in header[4]  # the last student column
    assert re.fullmatch(r"(.*) \((\d+)\)", header[5]).groups() == ("A", "7")
    assert table[1][0].startswith("Points Possible") and table[1][5] == "10"
    assert table[2][1] == "1003" and table[2][5] == "9"


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lms", "moodle", "--from", "m.zip", "--roster", "{roster}"], "differ in every"),
        (["--roster", "{roster}"], "--roster needs --lms or --pattern"),
        (["--lms", "canvas", "--roster", "{roster}"], "needs --from (the export)"),
        (["--lms", "canvas", "--pattern", "x", "--from", "z"], "give one"),
        (["--pattern", "(?P<id>.*)", "--from", "z", "--roster", "{roster}"], "no (?P<student_id"),
    ],
)
def test_course_grade_refuses_an_lms_import_it_cannot_do(tmp_path, capsys, argv, message):
    roster = str(write_roster(tmp_path / "students.csv"))
    argv = [a.replace("{roster}", roster) for a in argv]
    assert cli.main(["grade", LESSON, *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_readmes_canvas_command_builds_its_source(tmp_path, monkeypatch):
    """What `course grade ... --lms canvas` hands to grade_all (the grading is stubbed)."""
    roster = str(write_roster(tmp_path / "students.csv"))
    seen = {}
    monkeypatch.setattr(grading, "grade_all", lambda *a, **kw: seen.update(kw) or 0)
    argv = ["grade", LESSON, "--from", "canvas.zip", "--lms", "canvas", "--roster", roster]
    assert cli.main(argv + ["--lms-column", "RNN forward (4242)"]) == 0
    export = seen["export"]
    assert (export.naming.system, export.lesson, export.column) == (
        "canvas",
        LESSON,
        "RNN forward (4242)",
    )
    assert sorted(export.people) == ["1001", "1002", "1003"]
    assert pipeline.lesson_ids()  # the real course's lessons exist for that import
