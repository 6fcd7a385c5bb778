"""Every lesson: the released notebook is a fresh build of its source, leaks nothing, fails
every graded test as shipped, and the reference solution passes every test."""

import json
import shutil

import pytest

from rnncourse_grader import batch, pipeline
from tests.course import scratch_course

LESSONS = pipeline.lesson_ids()
pytestmark = pytest.mark.notebook


def test_lessons_exist():
    assert "01_rnn_forward" in LESSONS


def test_lessons_match_a_fresh_build_and_leak_nothing():
    assert pipeline.check_release() == []


IMDB = "05_imdb_sentiment"
# these validate inside their end-to-end tests (their checkpoint is graded right after)
VALIDATED_ELSEWHERE = (IMDB, "07_pretrain_finetune")  # 07: tests/test_grading_finetune.py


@pytest.mark.parametrize("lesson_id", [x for x in LESSONS if x not in VALIDATED_ELSEWHERE])
def test_solution_passes_all_tests(tmp_path, lesson_id):
    root, env = scratch_course(tmp_path)
    ok, output = pipeline.validate(root / "solutions" / lesson_id / f"{lesson_id}.ipynb", root=root)
    assert ok, output


def test_imdb_solution_passes_then_grades_full_marks_from_a_fresh_clone(tmp_path):
    """Lesson 05 validates (its run saves imdb_model.pt beside it), then a class is graded with
    no data cache yet: the grader builds the cache before any kernel runs (the kernel's
    file-size limit is below its size). The lesson's canary, the reference handing in that
    checkpoint, gets every point; a student who hands in no checkpoint loses exactly the
    checkpoint test, although the notebook's own training ran under the grader."""
    root, env = scratch_course(tmp_path)
    solution = root / "solutions" / IMDB / f"{IMDB}.ipynb"
    ok, output = pipeline.validate(solution, root=root)
    assert ok, output
    assert (solution.parent / "imdb_model.pt").is_file()
    env["RNNCOURSE_DATA_DIR"] = str(tmp_path / "fresh-cache")  # a fresh clone: nothing cached
    submission = pipeline.work_dir(root, env) / "submitted" / "nockpt" / IMDB / f"{IMDB}.ipynb"
    pipeline.reference_submission(IMDB, submission, root)
    (submission.parent / "imdb_model.pt").unlink()
    run = batch.grade_class(root, env, workers=2, progress=False)
    assert run.ok, run.summary
    (canary,) = run.canaries
    assert canary.full_marks() and sum(c.max_score for c in canary.cells) == 31
    (result,) = run.results
    lost = {g.grade_id: g.score for g in result.final if g.score < g.max_score}
    assert lost == {"test_checkpoint_reaches_85_percent": 0.0}, run.summary
    why = result.cell(next(iter(lost))).message  # the visible check, first in the cell, says it
    assert "No checkpoint at imdb_model.pt" in why or "no imdb_model.pt was handed in" in why
    assert result.totals() == (27.0, 31.0)
    assert (tmp_path / "fresh-cache" / "imdb" / "imdb_v1.npz").is_file()


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
