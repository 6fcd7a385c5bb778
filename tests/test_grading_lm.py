"""Lesson 06 graded end to end with nbgrader, the integrity pass included, from a fresh cache.

The grader builds the character corpus before any kernel runs (the manifest's ``prepare``:
it reads the 134 MB IMDB cache, over the kernels' file-size limit). The reference gets every
point, a sampler that applies the temperature to probabilities loses exactly the temperature
test, and a sampler that forgets the prompt, behind checks made no-ops in the kernel, loses
the priming test to the integrity pass and keeps the temperature test (its draws are right).
"""

import pytest

from rnncourse_grader import grading, pipeline
from tests.course import make_submission, scratch_course, solution_cells
from tests.integrity_support import NO_OP_CHECKS

pytestmark = pytest.mark.notebook
LESSON = "06_language_model"
PRIMING, TEMPERATURE = "test_sample_is_seeded_and_primed", "test_sample_temperature_and_top_k"


def _sampler(first_call: str, temperature_line: str) -> str:
    """A sampler with two lines of the reference's shape replaced."""
    return (
        "def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):\n"
        "    model.eval()\n"
        "    out = []\n"
        "    with torch.no_grad():\n"
        f"        {first_call}\n"
        "        for _ in range(num_chars):\n"
        f"            {temperature_line}\n"
        "            if top_k is not None:\n"
        "                kth = torch.topk(probs, top_k).values[-1]\n"
        "                probs = torch.where(probs < kth, 0.0, probs)\n"
        "            next_id = torch.multinomial(probs / probs.sum(), 1, generator=generator)\n"
        "            out.append(int(next_id))\n"
        "            logits, state = model(next_id[None], state)\n"
        "    return out\n"
    )


RIGHT_START = "logits, state = model(prompt_ids[None], None)"
RIGHT_TEMPERATURE = "probs = torch.softmax(logits[0, -1].double() / temperature, -1)"
ON_PROBABILITIES = "probs = torch.softmax(logits[0, -1].double(), -1) / temperature"
FORGETS_PROMPT = "logits, state = model(prompt_ids[-1:][None], None)"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    root, env = scratch_course(tmp, with_sources=False)
    env["RNNCOURSE_DATA_DIR"] = str(tmp / "fresh-cache")  # nothing cached yet
    pipeline.release([LESSON], root=root, env=env)
    released = root / "lessons" / LESSON / f"{LESSON}.ipynb"
    reference = solution_cells(LESSON)
    students = {
        "ada": reference,
        "cyd": reference | {"sample": _sampler(RIGHT_START, ON_PROBABILITIES)},
        "eve": reference | {"sample": NO_OP_CHECKS + _sampler(FORGETS_PROMPT, RIGHT_TEMPERATURE)},
    }
    submitted = pipeline.work_dir(root, env) / "submitted"
    for student, answers in students.items():
        make_submission(released, answers, submitted / student / LESSON / f"{LESSON}.ipynb")
    results, _ = grading.grade([LESSON], root=root, env=env)
    return root, env, tmp, results


def test_the_reference_gets_every_point_from_a_fresh_cache(graded):
    _, _, tmp, results = graded
    assert results[("ada", LESSON)] == (18, 18)
    assert (tmp / "fresh-cache" / "imdb" / "chars_v1.npz").is_file()


def test_temperature_on_probabilities_costs_exactly_its_test(graded):
    _, _, _, results = graded
    assert results[("cyd", LESSON)] == (16, 18)


def test_a_sampler_that_forgets_the_prompt_loses_its_priming_test_outside_the_kernel(graded):
    root, env, _, results = graded
    assert results[("eve", LESSON)] == (16, 18)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{pipeline.work_dir(root, env) / 'gradebook.db'}") as gb:
        primed = gb.find_grade(PRIMING, LESSON, LESSON, "eve")
        assert primed.auto_score == 2 and primed.manual_score == 0
        drawn = gb.find_grade(TEMPERATURE, LESSON, LESSON, "eve")
        assert drawn.auto_score == 2 and drawn.manual_score is None
        comment = gb.find_comment("sample", LESSON, LESSON, "eve").manual_comment
        assert comment.startswith("Checked outside the notebook:") and "prompt" in comment
