"""Lesson 07 end to end: the reference validates (its run saves imdb_finetuned.pt beside it),
then a class is graded with nbgrader and the integrity pass, from a fresh data cache.

The reference, handing in that checkpoint, gets every point (the grader's canary). A student
whose ``transfer_encoder`` copies nothing hands in the same good checkpoint: the transfer tests
fail, the outcome test finds a "fine-tuned" encoder that is not the language model's and fails
in the kernel on its own, and the checkpoint test, which grades ``transfer_encoder`` too, is taken
back by the integrity pass.
"""

import shutil

import pytest

from rnncourse_grader import pipeline
from tests.course import grade_one_student, make_submission, scratch_course, solution_cells

pytestmark = pytest.mark.notebook
LESSON = "07_pretrain_finetune"
CHECKPOINT = "imdb_finetuned.pt"
COPIES_NOTHING = (
    "def transfer_encoder(lm, classifier):\n"
    "    names = classifier.state_dict()\n"
    "    return sorted(k for k in names if k.startswith(('embedding.', 'rnn.')))\n"
)


def test_reference_validates_then_a_class_is_graded(tmp_path):
    root, env = scratch_course(tmp_path)
    solution = root / "solutions" / LESSON / f"{LESSON}.ipynb"
    ok, output = pipeline.validate(solution, root=root)
    assert ok, output
    assert (solution.parent / CHECKPOINT).is_file()
    env["RNNCOURSE_DATA_DIR"] = str(tmp_path / "fresh-cache")  # a fresh clone: nothing cached
    released = root / "lessons" / LESSON / f"{LESSON}.ipynb"
    target = pipeline.work_dir(root, env) / "submitted" / "uma" / LESSON / f"{LESSON}.ipynb"
    make_submission(released, solution_cells(LESSON) | {"transfer_encoder": COPIES_NOTHING}, target)
    shutil.copyfile(solution.parent / CHECKPOINT, target.parent / CHECKPOINT)
    result, lost = grade_one_student(root, env, points=22)
    assert lost == {
        "test_transfer_encoder_copies_exactly": 0.0,
        "test_transfer_encoder_refuses_mismatches": 0.0,
        "test_finetuned_model_keeps_the_pretrained_encoder": 0.0,
        "test_finetuned_checkpoint_reaches_85_percent": 0.0,
    }
    assert result.totals() == (12.0, 22.0)
    outcome = result.cell("test_finetuned_model_keeps_the_pretrained_encoder").message
    assert "is not the language model's" in outcome
