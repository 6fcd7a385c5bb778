"""The tricks that defeat a lesson's own checks, tried on lessons 02-04 through nbgrader.

Lesson 01 gets the whole tamper suite (test_tamper.py). Here each trick that turns the
notebook's checks into yes-men (the check functions made no-ops, torch's and numpy's
comparisons patched, the check modules' comparisons patched) is tried on every other
lesson whose graded objects are functions, behind one wrong answer: that answer's tests
must score 0 (the integrity pass re-checks it outside the kernel), every other test full
marks. The lessons are cut before their training sections, so the class grades in minutes.
Lesson 05's functions get the same tricks at the integrity level (test_integrity_imdb):
its notebook cannot be cut before the dataset is loaded.
"""

import nbformat
import pytest

from rnncourse_grader import batch, manifest
from tests.course import solution_cells
from tests.integrity_support import NO_OP_CHECKS
from tests.test_grading_support import cell_scores, submit, trimmed_course

pytestmark = pytest.mark.notebook

# lesson -> (the heading its source is cut at, the answer made wrong); no other answer of
# the cut lesson calls the victim, so only the victim's tests may lose points
LESSONS = {
    "02_bptt": ("## 3.", "rnn_backward"),
    "03_lstm": ("## 4.", "lstm_stacked_forward"),
    "04_gru": ("## 4.", "gru_forward"),
}
PATCHED_COMPARISONS = (
    "import numpy, torch, torch.testing\n"
    "torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)\n"
    "torch.allclose = lambda *a, **k: True\n"
    "torch.equal = lambda *a, **k: True\n"
    "torch.testing.assert_close = lambda *a, **k: None\n"
    "numpy.allclose = lambda *a, **k: True\n\n"
)
PATCHED_CHECK_MODULES = (
    "import sys\n"
    "for _name, _module in list(sys.modules.items()):\n"
    "    if _name.startswith('rnncourse.checks'):\n"
    "        for _fn, _value in (('matches', True), ('is_close', True), ('expect_close', None),\n"
    "                            ('first_failing_probe', None)):\n"
    "            if hasattr(_module, _fn):\n"
    "                setattr(_module, _fn, lambda *a, _v=_value, **k: _v)\n\n"
)
# Answers a trick breaks in the student's own notebook (their loss, rightly): lesson 04's
# gru_convention tells cells apart with torch.allclose, which the patch makes always True.
BROKEN_BY = {("04_gru", "patched_comparisons"): ("gru_convention",)}
TRICKS = {"honest": "", "no_op_checks": NO_OP_CHECKS}
TRICKS |= {"patched_comparisons": PATCHED_COMPARISONS}
TRICKS |= {"patched_check_modules": PATCHED_CHECK_MODULES}


def doubled(function: str, reference: str) -> str:
    """The reference answer, then ``function`` redefined to return twice its tensors: right
    shapes and dtypes, wrong values."""
    return (
        f"{reference}\n\n_right = {function}\n\n\n"
        "def _twice(v):\n"
        "    return v * 2 if isinstance(v, torch.Tensor) else type(v)(_twice(x) for x in v)\n\n\n"
        f"def {function}(*args, **kwargs):\n"
        "    return _twice(_right(*args, **kwargs))\n"
    )


def student(lesson: str, trick: str) -> str:
    return f"{trick.replace('_', '-')}-{lesson[:2]}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tamper-lessons")
    root, env, _ = trimmed_course(tmp, {lesson: cut for lesson, (cut, _) in LESSONS.items()})
    for lesson, (_, victim) in LESSONS.items():
        released = root / "lessons" / lesson / f"{lesson}.ipynb"
        reference = solution_cells(lesson)
        for trick, prefix in TRICKS.items():
            answers = dict(reference)
            if trick != "honest":
                answers[victim] = prefix + doubled(victim, reference[victim])
            submit(root, env, released, student(lesson, trick), answers, lesson=lesson)
    run = batch.grade_class(root=root, env=env, workers=2, salt="tamper-lessons", progress=False)
    return root, env, run, {(r.student, r.lesson): r for r in run.results}


def deserved(root, lesson: str, wrong: tuple[str, ...]) -> dict[str, float]:
    """grade id -> points of the cut lesson's tests, 0 for the tests that carry ``wrong``."""
    nb = nbformat.read(root / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    points = {
        c.metadata.nbgrader.grade_id: float(c.metadata.nbgrader.points)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    lost = {t for answer in wrong for t in manifest.load(lesson).tests_of(answer)}
    return {gid: 0.0 if gid in lost else p for gid, p in points.items()}


@pytest.mark.parametrize("trick", list(TRICKS))
@pytest.mark.parametrize("lesson", list(LESSONS))
def test_each_trick_loses_exactly_the_wrong_answers_points(graded, lesson, trick):
    root, env, run, results = graded
    victim = None if trick == "honest" else LESSONS[lesson][1]
    wrong = (() if victim is None else (victim,)) + BROKEN_BY.get((lesson, trick), ())
    result = results[(student(lesson, trick), lesson)]
    why = (result.status, result.message, result.notes)
    scores = cell_scores(root, env, student(lesson, trick), lesson)
    assert scores == deserved(root, lesson, wrong), why
    # where the trick fooled the kernel, the integrity pass is what took the points
    assert set(result.integrity_failures()) <= set(wrong), why
    if trick == "no_op_checks":
        assert result.integrity_failures() == [victim] and result.flagged, why


def test_the_canaries_get_full_marks(graded):
    _, _, run, _ = graded
    assert len(run.canaries) == len(LESSONS)
    assert all(c.full_marks() for c in run.canaries)
