"""Every lesson: the released notebook is a fresh build of its source, leaks nothing, fails
every graded test as shipped, and the reference solution passes every test."""

import json
import shutil

import pytest

from rnncourse_grader import pipeline
from tests.course import scratch_course

LESSONS = pipeline.lesson_ids()
pytestmark = pytest.mark.notebook


def test_lessons_exist():
    assert "01_rnn_forward" in LESSONS


def test_lessons_match_a_fresh_build_and_leak_nothing():
    assert pipeline.check_release() == []


# these validate inside their end-to-end tests (their checkpoint is graded right after):
# tests/test_grading_imdb.py and tests/test_grading_finetune.py
VALIDATED_ELSEWHERE = ("05_imdb_sentiment", "07_pretrain_finetune")


@pytest.mark.parametrize("lesson_id", [x for x in LESSONS if x not in VALIDATED_ELSEWHERE])
def test_solution_passes_all_tests(tmp_path, lesson_id):
    root, env = scratch_course(tmp_path)
    ok, output = pipeline.validate(root / "solutions" / lesson_id / f"{lesson_id}.ipynb", root=root)
    assert ok, output


@pytest.mark.parametrize("lesson_id", LESSONS)
def test_released_lesson_fails_every_graded_test(tmp_path, lesson_id):
    root, env = scratch_course(tmp_path, with_sources=False)
    ok, output = pipeline.validate(
        root / "lessons" / lesson_id / f"{lesson_id}.ipynb", invert=True, root=root
    )
    assert ok, output


def test_validate_verdicts_can_fail(tmp_path):
    """The verdict parser is not blind: the stub fails validation, the solution fails --invert."""
    root, env = scratch_course(tmp_path)
    lesson = "01_rnn_forward"
    ok, output = pipeline.validate(root / "lessons" / lesson / f"{lesson}.ipynb", root=root)
    assert not ok and "not implemented yet" in output
    ok, _ = pipeline.validate(
        root / "solutions" / lesson / f"{lesson}.ipynb", invert=True, root=root
    )
    assert not ok


def test_check_release_reports_drift_leaks_and_strays(tmp_path):
    root, env = scratch_course(tmp_path, with_sources=False)
    lesson = root / "lessons" / "01_rnn_forward"
    nb_path = lesson / "01_rnn_forward.ipynb"
    nb = json.loads(nb_path.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n"
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    nb_path.write_text(json.dumps(nb))
    shutil.copy2(root / "solutions" / "01_rnn_forward" / "01_rnn_forward.py", lesson)
    (root / "lessons" / "99_orphan").mkdir()
    problems = "\n".join(pipeline.check_release(root))
    assert "01_rnn_forward.ipynb: differs from a fresh build" in problems
    assert "contains BEGIN SOLUTION" in problems
    assert "has outputs" in problems
    assert "01_rnn_forward.py: only notebooks are released" in problems
    assert "99_orphan: released lesson without a source" in problems


def test_release_problems_reports_a_malformed_notebook(tmp_path):
    lesson = tmp_path / "01_x"
    lesson.mkdir()
    (lesson / "01_x.ipynb").write_text("{not json")
    assert "not a valid notebook" in pipeline.release_problems(lesson)[0]
