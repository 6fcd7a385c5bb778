"""A Canvas export and a Moodle export of lesson 01, graded in one run, and the grade files back.

The archives follow the LMSs' own naming (see tests/test_lms.py's docstring for the sources):
a resubmission, a late file in each, an unknown student in each, and non-ASCII names. The
course penalises late work with nbgrader's built-in ``zero`` method. Lesson 01 without its
training section (tests/test_grading_support.py): five tests, 10 points, seconds per notebook.
"""

import csv
import datetime as dt
import zipfile

import pytest

from rnncourse_grader import batch, grading, lms, lms_grades, pipeline
from tests.course import make_submission
from tests.test_grading_support import LESSON, reference_answers, trimmed_course
from tests.test_lms import canvas_name, moodle_path, write_roster, write_worksheet, write_zip

pytestmark = pytest.mark.notebook
REF = reference_answers()
BUGGY_COUNT = {**REF, "rnn_num_params": REF["rnn_num_params"].replace("2 * H", "H")}  # -1
BUGGY_LOSS = {**REF, "sequence_loss": REF["sequence_loss"].replace("/ weights.sum()", "")}  # -2
ZIPPED = (2025, 10, 9, 8, 0, 0)
NOW = dt.datetime(2025, 10, 9, 12, 0, tzinfo=dt.UTC)
LATE_IN_MOODLE = dt.datetime(2025, 10, 2, 9, 15)  # 9 h 16 min after the due date


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from nbgrader.api import Gradebook

    tmp = tmp_path_factory.mktemp("lms")
    root, env, released = trimmed_course(tmp)
    with (root / "autograder" / "nbgrader_config.py").open("a") as f:
        f.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    work = pipeline.work_dir(root, env)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(LESSON, duedate="2025-10-01 23:59:00 UTC")

    def notebook(answers):
        return make_submission(released, answers, tmp / "nb.ipynb").read_text()

    roster = write_roster(tmp / "students.csv")
    canvas_zip = write_zip(
        tmp / "canvas.zip",
        [
            (canvas_name("Lovelace, Ada", 1001, 5001, f"{LESSON}.ipynb"), notebook(REF), ZIPPED),
            (canvas_name("Byte, Bob", 1002, 5002, f"{LESSON}.ipynb", True), notebook(REF), ZIPPED),
            (canvas_name("Müller, José", 1003, 5003, f"{LESSON}.ipynb"), notebook({}), ZIPPED),
            (
                canvas_name("Müller, José", 1003, 5004, f"{LESSON}-1.ipynb"),
                notebook(BUGGY_COUNT),
                ZIPPED,
            ),
            (canvas_name("Ünknown, Zoë", 1009, 5009, f"{LESSON}.ipynb"), notebook(REF), ZIPPED),
        ],
    )
    on_time = dt.datetime(2025, 10, 1, 20, 0)
    sheet = write_worksheet(
        tmp / "worksheet.csv",
        [
            (7001, "Cyd Charisse", "cyd@uni.example", LATE_IN_MOODLE),
            (7002, "Zoë Ørsted", "zoe@uni.example", on_time),
            (7003, "Mallory Unlisted", "mallory@elsewhere.example", on_time),
        ],
    )
    moodle_zip = write_zip(
        tmp / "moodle.zip",
        [
            (moodle_path("Cyd Charisse", 7001, f"{LESSON}.ipynb"), notebook(REF), ZIPPED),
            (moodle_path("Zoë Ørsted", 7002, f"{LESSON}.ipynb"), notebook(BUGGY_LOSS), ZIPPED),
            (moodle_path("Mallory Unlisted", 7003, f"{LESSON}.ipynb"), notebook(REF), ZIPPED),
        ],
    )
    canvas = lms.source(lms.CANVAS, roster, lesson=LESSON, column="RNN forward (4242)")
    moodle = lms.source(lms.MOODLE, roster, worksheet=sheet, lesson=LESSON)
    reports = [
        grading.import_submissions(canvas_zip, root, env, export=canvas),
        grading.import_submissions(moodle_zip, root, env, export=moodle),
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lms_grades, "_now", lambda: NOW)
        run = batch.grade_class(root, env, workers=2, salt="s", progress=False)
    return work, reports, run


def _rows(path, key):
    with path.open(encoding="utf-8", newline="") as f:
        return {r[key]: r for r in csv.DictReader(f)}


def test_unknown_ids_are_reported_and_nobody_is_created(graded):
    work, (canvas, moodle), run = graded
    from nbgrader.api import Gradebook

    assert [p.student for p in canvas.placed] == ["ada", "bob", "jose"]
    assert [p.student for p in moodle.placed] == ["cyd", "zoe"]
    assert any("canvas id 1009 (ünknownzoë) is not in the roster" in p for p in canvas.problems)
    assert any("moodle id 7003 (Mallory Unlisted)" in p for p in moodle.problems)
    assert run.ok, run.summary
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        assert sorted(s.id for s in gb.students) == ["ada", "bob", "cyd", "jose", "zoe"]


def test_grades_csvs_show_raw_and_penalised_scores(graded):
    work, _, run = graded
    nbgrader_csv = _rows(run.csv, "student_id")
    got = {
        s: (float(r["raw_score"]), float(r["late_submission_penalty"]), float(r["score"]))
        for s, r in nbgrader_csv.items()
    }
    assert got == {
        "ada": (10, 0, 10),
        "bob": (10, 10, 0),  # Canvas's LATE marker, the "zero" method
        "cyd": (10, 10, 0),  # late by the Moodle worksheet's time
        "jose": (9, 0, 9),  # his resubmission, not the stub he handed in first
        "zoe": (8, 0, 8),
    }
    by_notebook = _rows(run.by_notebook, "student")
    assert [
        (s, r["score"], r["seconds_late"], r["late_penalty"], r["penalised_score"])
        for s, r in sorted(by_notebook.items())
    ] == [
        ("ada", "10.0", "0", "0.0", "10.0"),
        ("bob", "10.0", "1", "10.0", "0.0"),
        ("cyd", "10.0", str(9 * 3600 + 16 * 60), "10.0", "0.0"),
        ("jose", "9.0", "0", "0.0", "9.0"),
        ("zoe", "8.0", "0", "0.0", "8.0"),
    ]


def test_the_canvas_gradebook_file_line_by_line(graded):
    work, _, run = graded
    path = work / f"canvas_{LESSON}.csv"
    assert path in run.lms_files
    assert path.read_text(encoding="utf-8").splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,RNN forward (4242)",
        "Points Possible,,,,,10",
        '"Lovelace, Ada",1001,,,,10',
        '"Byte, Bob",1002,,,,0',
        '"Müller, José",1003,,,,9',
    ]


def test_the_moodle_worksheet_line_by_line(graded):
    work, _, run = graded
    path = work / f"moodle_{LESSON}.csv"
    assert path in run.lms_files
    assert path.read_text(encoding="utf-8").splitlines() == [
        "Identifier,Full name,Email address,Grade,Maximum Grade,Last modified (submission),"
        "Last modified (grade),Feedback comments",
        "Participant 7001,Cyd Charisse,cyd@uni.example,0,10,2025-10-02T09:15:00+00:00,"
        '2025-10-09T12:00:00+00:00,"Autograded: 10 / 10. Late: 10 taken off, 0 counts. The '
        'feedback page is attached."',
        "Participant 7002,Zoë Ørsted,zoe@uni.example,8,10,2025-10-01T20:00:00+00:00,"
        "2025-10-09T12:00:00+00:00,Autograded: 8 / 10. The feedback page is attached.",
    ]


def test_feedback_bundles_hold_each_students_page(graded):
    work, _, _ = graded
    feedback = work / "feedback"
    with zipfile.ZipFile(work / f"canvas_{LESSON}_feedback.zip") as zf:
        assert zf.namelist() == [
            "bytebob_1002_5002_feedback.html",
            "lovelaceada_1001_5001_feedback.html",
            "müllerjosé_1003_5004_feedback.html",
        ]
        page = (feedback / "jose" / LESSON / f"{LESSON}.html").read_bytes()
        assert zf.read("müllerjosé_1003_5004_feedback.html") == page
    with zipfile.ZipFile(work / f"moodle_{LESSON}_feedback.zip") as zf:
        assert zf.namelist() == [
            f"Cyd Charisse_7001_assignfeedback_file/{LESSON}-feedback.html",
            f"Zoë Ørsted_7002_assignfeedback_file/{LESSON}-feedback.html",
        ]
        page = (feedback / "zoe" / LESSON / f"{LESSON}.html").read_bytes()
        assert zf.read(f"Zoë Ørsted_7002_assignfeedback_file/{LESSON}-feedback.html") == page
