"""The class workflow end to end through nbgrader's exchange, on one machine.

One instructor (the course's config in autograder/, run through ``pipeline.nbgrader``, which
is ``cd autograder && nbgrader ...``) and two students, each with a private HOME and Jupyter
config holding only autograder/jupyterhub/everyone/nbgrader_config.py (course id, exchange,
identity) and a working folder of their own:

db student import -> release_assignment -> list -> fetch_assignment (x2) -> edit ->
submit (bob twice) -> collect --update -> `course grade` (autograde, generate_feedback) ->
release_feedback -> fetch_feedback (x2).

The loop runs once in a module fixture that records what each step left behind; each test
below checks one step. Nothing touches autograder/work: the course, the gradebook and the
exchange live in a temporary folder.
"""

import json

import nbformat
import pytest
from nbgrader.api import Gradebook

from rnncourse_grader import exchange, grading, pipeline
from tests.course import make_submission, scratch_course, solution_cells

pytestmark = pytest.mark.notebook
LESSON = "01_rnn_forward"
NOTEBOOK = f"{LESSON}.ipynb"
NUM_PARAMS_TEST = "test_rnn_num_params_matches_torch"


def files(folder) -> set[str]:
    """Relative paths of the files under ``folder``."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def graded_points(notebook) -> dict[str, float]:
    """grade_id -> points of every graded test cell."""
    nb = nbformat.read(notebook, as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def scores(work) -> dict[str, tuple[float, float]]:
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        return {
            s.student_id: (s.score, s.max_score) for s in gb.find_assignment(LESSON).submissions
        }


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exchange")
    root, env = scratch_course(tmp, with_sources=False)
    work = pipeline.work_dir(root, env)
    shared = exchange.exchange_root(root, env)
    course = shared / exchange.COURSE_ID
    seen: dict = {"root": root, "work": work, "exchange": shared}

    pipeline.release([LESSON], root=root, env=env)  # `course release`: lesson in the gradebook
    roster = tmp / "students.csv"
    roster.write_text("id,first_name,last_name,email\nada,Ada,Lovelace,\nbob,Bob,Byron,\n")
    pipeline.nbgrader("db", "student", "import", str(roster), root=root, env=env)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        seen["roster"] = {s.id: s.last_name for s in gb.students}
    exchange.release_assignment(LESSON, root=root, env=env)
    seen["outbound"] = files(course / "outbound")
    seen["inbound_mode"] = (course / "inbound").stat().st_mode

    ada = exchange.Student("ada", tmp / "home-ada", shared).setup()
    bob = exchange.Student("bob", tmp / "home-bob", shared).setup()
    seen["students"] = {"ada": ada, "bob": bob}
    seen["listed"] = ada.list()
    seen["fetched"] = {s.name: s.fetch(LESSON) for s in (ada, bob)}
    seen["fetched_files"] = {name: files(f) for name, f in seen["fetched"].items()}
    seen["fetched_nb"] = {name: (f / NOTEBOOK).read_bytes() for name, f in seen["fetched"].items()}

    reference = solution_cells(LESSON)
    one_bias = reference["rnn_num_params"].replace("2 * H", "H")  # forgets nn.RNN's 2nd bias
    assert one_bias != reference["rnn_num_params"], "the reference formula changed: update bug"
    bob.submit(LESSON)  # bob first hands in the lesson as fetched, then fixes all but one bug
    make_submission(seen["fetched"]["ada"] / NOTEBOOK, reference, seen["fetched"]["ada"] / NOTEBOOK)
    make_submission(
        seen["fetched"]["bob"] / NOTEBOOK,
        {**reference, "rnn_num_params": one_bias},
        seen["fetched"]["bob"] / NOTEBOOK,
    )
    ada.submit(LESSON)
    bob.submit(LESSON)
    seen["inbound"] = sorted(p.name for p in (course / "inbound").iterdir())
    seen["bob_cached"] = bob.list("--cached")

    exchange.collect(LESSON, root=root, env=env)
    seen["submitted"] = files(work / "submitted")

    grading.grade([LESSON], root=root, env=env, workers=1)  # `course grade`: autograde, feedback
    seen["autograded"] = files(work / "autograded")
    seen["scores"] = scores(work)
    seen["feedback"] = files(work / "feedback")

    # The last two steps are recorded, not raised, so that each test reports its own step.
    try:
        exchange.release_feedback(LESSON, root=root, env=env)
    except RuntimeError as err:
        seen["release_feedback_error"] = str(err)[-1500:]
        return seen
    seen["released_feedback"] = files(course / "feedback")
    seen["fetched_feedback"] = {s.name: s.fetch_feedback(LESSON) for s in (ada, bob)}
    return seen


def test_the_class_list_is_imported(loop):
    assert loop["roster"] == {"ada": "Lovelace", "bob": "Byron"}


def test_release_assignment_publishes_the_lesson_without_answers(loop):
    assert loop["outbound"] == {f"{LESSON}/{NOTEBOOK}"}
    released = loop["root"] / "lessons" / LESSON / NOTEBOOK
    outbound = loop["exchange"] / exchange.COURSE_ID / "outbound" / LESSON
    assert (outbound / NOTEBOOK).read_bytes() == released.read_bytes()
    assert pipeline.release_problems(outbound) == []
    assert loop["inbound_mode"] & 0o033 == 0o033  # others may hand in, not list, submissions
    assert f"{exchange.COURSE_ID} {LESSON}" in loop["listed"]


def test_students_fetch_the_lesson_without_solutions_or_hidden_tests(loop):
    released = (loop["root"] / "lessons" / LESSON / NOTEBOOK).read_bytes()
    reference = solution_cells(LESSON)
    for name in loop["fetched"]:
        assert loop["fetched_files"][name] == {NOTEBOOK}
        assert loop["fetched_nb"][name] == released
        text = loop["fetched_nb"][name].decode()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "rnncourse_grader" not in text
        cells = {
            c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
            for c in json.loads(text)["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")
        }
        assert cells.keys() == reference.keys()
        for grade_id, source in cells.items():
            assert "raise NotImplementedError()" in source, grade_id
            assert source != reference[grade_id]


def test_submissions_reach_the_inbound_under_each_students_name(loop):
    inbound = loop["inbound"]
    assert sum(n.startswith(f"ada+{LESSON}+") for n in inbound) == 1
    assert sum(n.startswith(f"bob+{LESSON}+") for n in inbound) == 2
    assert len(inbound) == 3
    assert loop["bob_cached"].count(f"bob {LESSON}") == 2  # both, in bob's own cache
    assert "ada" not in loop["bob_cached"]


def test_collect_takes_each_students_latest_submission(loop):
    for student in ("ada", "bob"):
        assert f"{student}/{LESSON}/{NOTEBOOK}" in loop["submitted"]
        assert f"{student}/{LESSON}/timestamp.txt" in loop["submitted"]
    bob = nbformat.read(loop["work"] / "submitted" / "bob" / LESSON / NOTEBOOK, as_version=4)
    assert not any("NotImplementedError" in c.source for c in bob.cells if c.cell_type == "code")


def test_autograde_gives_full_marks_to_the_reference_and_costs_bob_his_bug(loop):
    pts = graded_points(loop["root"] / "lessons" / LESSON / NOTEBOOK)
    total = sum(pts.values())
    assert total > 0 and NUM_PARAMS_TEST in pts
    for student in ("ada", "bob"):
        assert f"{student}/{LESSON}/{NOTEBOOK}" in loop["autograded"]
    assert loop["scores"] == {"ada": (total, total), "bob": (total - pts[NUM_PARAMS_TEST], total)}


def test_course_grade_writes_feedback_that_release_feedback_publishes(loop):
    for student in ("ada", "bob"):
        # release_feedback files each page under a hash of the submission's secret and reads
        # its timestamp: both must travel from the submission to the feedback folder.
        for name in (f"{LESSON}.html", "timestamp.txt", "submission_secret.txt"):
            assert f"{student}/{LESSON}/{name}" in loop["feedback"], name
    assert "release_feedback_error" not in loop, loop.get("release_feedback_error")
    released = loop["released_feedback"]
    assert len(released) == 2 and all(name.endswith(".html") for name in released)
    assert not any("ada" in name or "bob" in name for name in released)  # names are hashes


def test_students_fetch_their_own_feedback(loop):
    pts = graded_points(loop["root"] / "lessons" / LESSON / NOTEBOOK)
    total = sum(pts.values())
    assert "fetched_feedback" in loop, "no feedback was released (see the test above)"
    html = {}
    for name, found in loop["fetched_feedback"].items():
        assert len(found) == 1, found
        assert found[0].parent.parent == loop["fetched"][name] / "feedback"
        html[name] = found[0].read_text()
        teacher_copy = loop["work"] / "feedback" / name / LESSON / f"{LESSON}.html"
        assert html[name] == teacher_copy.read_text()
    assert f"Score: {total:.1f} / {total:.1f}" in html["ada"]
    assert f"Score: {total - pts[NUM_PARAMS_TEST]:.1f} / {total:.1f}" in html["bob"]
    assert "rnn_num_params" in html["bob"] and html["ada"] != html["bob"]
