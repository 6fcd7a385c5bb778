"""Batch grading: import from an LMS zip, 1 worker and 2 workers give the same grades,
regrading replaces, CSVs per notebook and per cell, the summary table."""

import csv
import zipfile

import pytest

from rnncourse_grader import batch, grading, pipeline
from tests.course import make_submission
from tests.test_grading_support import (
    FULL,
    LESSON,
    cell_scores,
    expected,
    reference_answers,
    trimmed_course,
)

pytestmark = pytest.mark.notebook
REF = reference_answers()
BUGS = {
    "ada": (REF, expected()),
    "bob": ({}, expected(cell=1, forward=1, params=1, count=1, loss=1)),  # the stub
    "cyd": (
        {
            **REF,
            "rnn_cell_forward": "def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):\n"
            "    return torch.tanh(x_t @ W_xh + h_prev @ W_hh)  # no bias\n",
        },
        expected(cell=1, forward=1, params=1),  # the layer and the loading use the cell
    ),
    "dee": (
        {
            **REF,
            "rnn_forward": REF["rnn_forward"].replace("h0 if h0 is not None else ", ""),
        },
        expected(forward=1),
    ),
    "eve": (
        {**REF, "sequence_loss": REF["sequence_loss"].replace("/ weights.sum()", "")},
        expected(loss=1),
    ),
    "fay": (
        {**REF, "rnn_num_params": REF["rnn_num_params"].replace("2 * H", "H")},
        expected(count=1),
    ),
}


def _zip(folder, released, students, target):
    """A flat LMS export: <student>_<lesson>.ipynb."""
    with zipfile.ZipFile(target, "w") as zf:
        for student, answers in students.items():
            nb = make_submission(released, answers, folder / f"{student}_{LESSON}.ipynb")
            zf.write(nb, nb.name)
        zf.writestr("readme.txt", "exported by the LMS")
    return target


def _cells_csv(path):
    return sorted(
        (r["student"], r["grade_id"], float(r["score"])) for r in csv.DictReader(path.open())
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    root, env, released = trimmed_course(tmp)
    answers = {s: a for s, (a, _) in BUGS.items()}
    report = grading.import_submissions(
        _zip(tmp / "x", released, answers, tmp / "a.zip"), root, env
    )
    assert [p.student for p in report.placed] == sorted(BUGS)
    assert report.problems == ["readme.txt: not a notebook (only notebooks are graded)"]
    one = batch.grade_class(root, env, workers=1, salt="s", progress=False)
    first = {s: cell_scores(root, env, s) for s in BUGS}
    first_csv = _cells_csv(one.by_cell)
    # bob hands in a corrected notebook: regrading him replaces his old result
    grading.import_submissions(_zip(tmp / "y", released, {"bob": REF}, tmp / "b.zip"), root, env)
    bob = pipeline.work_dir(root, env) / "submitted" / "bob" / LESSON
    (bob / "timestamp.txt").write_text("2030-01-02 03:04:05.000000 UTC")  # as nbgrader collects
    two = batch.grade_class(root, env, workers=2, salt="s", progress=False)
    second = {s: cell_scores(root, env, s) for s in BUGS}
    return root, env, one, two, first, second, first_csv


def test_each_submission_gets_the_score_of_its_bugs(two_runs):
    _, _, one, _, first, _, _ = two_runs
    assert one.workers == 1
    for student, (_, want) in BUGS.items():
        assert first[student] == want, student


def test_two_workers_give_exactly_the_grades_of_one(two_runs):
    _, _, _, two, first, second, first_csv = two_runs
    assert two.workers == 2
    for student in BUGS:
        if student != "bob":
            assert second[student] == first[student], student
    second_csv = [row for row in _cells_csv(two.by_cell) if row[0] != "bob"]
    assert second_csv == [row for row in first_csv if row[0] != "bob"]


def test_regrading_replaces_the_old_result(two_runs):
    root, env, _, _, _, second, _ = two_runs
    assert second["bob"] == expected()
    scores = grading.scores(root, env)
    assert len(scores) == len(BUGS) and scores[("bob", LESSON)] == (FULL, FULL)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{pipeline.work_dir(root, env) / 'gradebook.db'}") as gb:
        stamp = gb.find_submission(LESSON, "bob").timestamp
    assert stamp.isoformat().startswith("2030-01-02T03:04:05")  # the submission time is kept


def test_csvs_summary_and_feedback(two_runs):
    root, env, _, two, _, _, _ = two_runs
    rows = {r["student"]: r for r in csv.DictReader(two.by_notebook.open())}
    assert float(rows["fay"]["score"]) == FULL - 1 and rows["fay"]["status"] == "graded"
    cells = [r for r in csv.DictReader(two.by_cell.open()) if r["student"] == "eve"]
    loss = next(r for r in cells if r["grade_id"] == "test_sequence_loss_masks_padding")
    assert loss["score"] == "0.0" and "divide by the number of real positions" in loss["message"]
    nbgrader_csv = {r["student_id"]: r for r in csv.DictReader(two.csv.open())}
    assert float(nbgrader_csv["ada"]["score"]) == FULL
    assert "most-failed test" in two.summary and "test_rnn_forward_matches_torch" in two.summary
    assert "90-100%" in two.summary and "mean score" in two.summary
    feedback = pipeline.work_dir(root, env) / "feedback"
    for student in BUGS:
        assert (feedback / student / LESSON / f"{LESSON}.html").is_file()
