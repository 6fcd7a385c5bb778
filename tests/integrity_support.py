"""The per-lesson integrity tests: build a sanitized submission, read verdicts, and the three
tests every lesson with probes has (``integrity_tests``)."""

import copy
import functools
import inspect
import tempfile

import nbformat
import pytest

from rnncourse_grader import integrity, sanitize
from tests.course import ROOT, solution_cells

# Every check made a no-op in the notebook's namespace: full marks in the kernel.
NO_OP_CHECKS = (
    "import rnncourse.checks as _c\n"
    "for _name in dir(_c):\n"
    "    if _name.startswith('check_'):\n"
    "        globals()[_name] = lambda *a, **k: None\n\n"
)


@functools.cache
def released(lesson_id: str):
    return nbformat.read(ROOT / "lessons" / lesson_id / f"{lesson_id}.ipynb", as_version=4)


def submission(template, answers, added=()):
    """The released notebook with these answer cells and added cells, sanitized as graded."""
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    for i, source in enumerate(added):
        nb.cells.insert(2 + i, nbformat.v4.new_code_cell(source))
    return sanitize.sanitize(nb, template)[0]


def verdicts(lesson_id, template, answers, added=(), passed=None, seed=11):
    """function -> (status, message) of the integrity pass on these answer cells. ``passed``:
    the tests that passed in the kernel (default all of them: what no-op checks get there)."""
    nb = submission(template, answers, added)
    if passed is None:
        passed = {t for p in integrity.lesson_spec(lesson_id).probes for t in p.tests}
    with tempfile.TemporaryDirectory(prefix="integrity-") as home:  # the runner's home, removed
        policy = {"memory_mb": 3072, "tmp_base": home}
        report = integrity.run_pass(lesson_id, nb, template, set(passed), seed=seed, policy=policy)
    return {v.function: (v.status, v.message) for v in report.verdicts}


def as_answer(fn, name: str) -> str:
    """An alternative's source (from the corpus), renamed to the answer it implements (its
    own name stays an alias, for one that calls itself)."""
    renamed = inspect.getsource(fn).replace(f"def {fn.__name__}(", f"def {name}(", 1)
    return f"{renamed}\n\n{fn.__name__} = {name}\n"


def sources(*fns) -> str:
    """Helpers for an added cell: the corpus functions an alternative calls."""
    header = (
        "import numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
    )
    return header + "\n\n" + "\n\n".join(inspect.getsource(f) for f in fns)


def integrity_tests(lesson_id: str, corpus: dict, helpers: str, cheats: dict, cascades=None):
    """The three integrity tests of a lesson, from its data (assign them to ``test_*`` names).

    ``corpus``: answer -> correct alternatives (from ``tests/test_alternatives_*``); the first
    three of each are tried together, with ``helpers`` (the corpus functions they call) in an
    added cell. ``cheats``: answer -> (wrong source, the message it must get), each behind
    no-op checks. ``cascades``: answer -> the answers whose reference calls it (they fail too).
    """
    probed = tuple(p.function for p in integrity.lesson_spec(lesson_id).probes)
    reference = solution_cells(lesson_id)
    all_pass = {f: ("pass", "") for f in probed}

    def test_the_reference_passes_every_probe():
        assert verdicts(lesson_id, released(lesson_id), reference) == all_pass

    def test_alternatives_of_the_corpus_pass():
        assert set(corpus) == set(probed), "every probed answer has alternatives"
        for pick in range(3):
            answers = {name: as_answer(alts[pick], name) for name, alts in corpus.items()}
            got = verdicts(lesson_id, released(lesson_id), reference | answers, added=[helpers])
            assert got == all_pass, (pick, got)

    @pytest.mark.parametrize("function", list(cheats))
    def test_a_wrong_answer_behind_no_op_checks_fails_here_with_why(function):
        source, why = cheats[function]
        answers = reference | {function: NO_OP_CHECKS + source}
        got = verdicts(lesson_id, released(lesson_id), answers)
        assert got[function][0] == "fail" and why in got[function][1], got[function]
        others = set(probed) - {function} - set((cascades or {}).get(function, ()))
        assert all(got[f][0] == "pass" for f in others), got

    return (
        test_the_reference_passes_every_probe,
        test_alternatives_of_the_corpus_pass,
        test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
    )
