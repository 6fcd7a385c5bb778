"""Lesson 05 end to end: the reference validates (its run saves imdb_model.pt beside it), then
a class is graded from a fresh data cache."""

import pytest

from rnncourse_grader import pipeline
from tests.course import grade_one_student, scratch_course

pytestmark = pytest.mark.notebook
IMDB = "05_imdb_sentiment"


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
    result, lost = grade_one_student(root, env, points=31)
    assert lost == {"test_checkpoint_reaches_85_percent": 0.0}
    why = result.cell(next(iter(lost))).message  # the visible check, first in the cell, says it
    assert "No checkpoint at imdb_model.pt" in why or "no imdb_model.pt was handed in" in why
    assert result.totals() == (27.0, 31.0)
    assert (tmp_path / "fresh-cache" / "imdb" / "imdb_v1.npz").is_file()
