"""End to end with nbgrader: release, submissions from five students, autograde, feedback, CSVs.

The full lesson 01 (training included); the batch, limits and tamper tests use a shorter copy.
"""

import csv

import pytest

from rnncourse_grader import grading, pipeline
from tests.course import make_submission, scratch_course, solution_cells

pytestmark = pytest.mark.notebook
LESSON = "01_rnn_forward"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root, env = scratch_course(tmp_path_factory.mktemp("e2e"), with_sources=False)
    pipeline.release([LESSON], root=root, env=env)  # records the lesson in the gradebook
    released = root / "lessons" / LESSON / f"{LESSON}.ipynb"
    reference = solution_cells(LESSON)
    buggy_count = "def rnn_num_params(D, H, O):\n    return D * H + H * H + H + H * O + O\n"
    warns = reference["rnn_cell_forward"].replace(
        "    ### BEGIN SOLUTION",
        "    import warnings\n    warnings.warn('this cell is slow', UserWarning)\n"
        "    ### BEGIN SOLUTION",
    )
    # eve does not train: she patches the checks that the training test calls
    no_training = (
        "import rnncourse.checks.rnn as _checks\n"
        "_checks.next_symbol_scores = lambda *args, **kwargs: (0.0, 1.0)\n"
        "check_train_step = lambda *args, **kwargs: None\n\n\n"
        "def train_step(model, optimizer, X, Y, mask):\n    return 0.0\n"
    )
    students = {
        "ada": reference,
        "bob": {},  # hands in the stub
        "cyd": {**reference, "rnn_num_params": buggy_count},
        "dee": {**reference, "rnn_cell_forward": warns},
        "eve": {**reference, "train_step": no_training},
    }
    submitted = pipeline.work_dir(root, env) / "submitted"
    for student, answers in students.items():
        make_submission(released, answers, submitted / student / LESSON / f"{LESSON}.ipynb")
    results, csv_path = grading.grade([LESSON], root=root, env=env)
    return root, env, results, csv_path


def test_reference_gets_full_marks_and_stub_gets_zero(graded):
    _, _, results, _ = graded
    score, max_score = results[("ada", LESSON)]
    assert max_score == 12 and score == max_score
    assert results[("bob", LESSON)] == (0, 12)


def test_one_bug_costs_exactly_its_test(graded):
    _, _, results, _ = graded
    assert results[("cyd", LESSON)] == (11, 12)  # rnn_num_params is worth 1 point


def test_a_warning_on_stderr_does_not_zero_a_correct_answer(graded):
    _, _, results, _ = graded
    assert results[("dee", LESSON)] == (12, 12)


def test_a_test_passed_by_patching_its_check_loses_its_points_to_the_integrity_pass(graded):
    root, env, results, _ = graded
    assert results[("eve", LESSON)] == (10, 12)  # test_train_step_learns_pattern is worth 2
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{pipeline.work_dir(root, env) / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(LESSON, LESSON, "eve")
        grade = gb.find_grade("test_train_step_learns_pattern", LESSON, LESSON, "eve")
        comment = gb.find_comment("train_step", LESSON, LESSON, "eve")
        assert notebook.flagged and grade.auto_score == 2 and grade.manual_score == 0
        assert comment.manual_comment == (
            "Checked outside the notebook: on the grader's case with padding: one train_step "
            "called optimizer.step() 0 times; expected once"
        )


def test_feedback_html_and_grades_csv_are_written(graded):
    root, env, _, csv_path = graded
    feedback = pipeline.work_dir(root, env) / "feedback"
    for student in ("ada", "bob", "cyd", "dee"):
        html = (feedback / student / LESSON / f"{LESSON}.html").read_text()
        assert "test_rnn_cell_forward_matches_torch" in html
    bob = (feedback / "bob" / LESSON / f"{LESSON}.html").read_text()
    assert "not implemented yet" in bob  # the check's message reaches the student
    rows = {r["student_id"]: r for r in csv.DictReader(csv_path.open())}
    assert float(rows["ada"]["score"]) == 12 and float(rows["bob"]["score"]) == 0
