"""Lesson 05 end to end: the reference validates (its run saves imdb_model.pt beside it), then
a class is graded from a fresh data cache."""

import pytest

from rnncourse_grader import batch, pipeline
from tests.course import scratch_course

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
