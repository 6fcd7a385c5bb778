"""The per-lesson integrity tests: build a sanitized submission, read verdicts, and the three
tests every lesson with probes has (``integrity_tests``)."""

import copy
import functools
import importlib
import inspect
import json
import math
import re
import tempfile

import nbformat
import numpy as np
import pytest

from rnncourse_grader import integrity, integrity_runner, sanitize
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
    found = {}
    for v in report.verdicts:  # a function with several probes: its first failure, if any
        if v.function not in found or found[v.function][0] == "pass":
            found[v.function] = (v.status, v.message)
    return found


def probes_of(lesson_id: str, function: str) -> list[integrity.Probe]:
    return [p for p in integrity.lesson_spec(lesson_id).probes if p.function == function]


def probe_of(lesson_id: str, function: str) -> integrity.Probe:
    """The probe of a function that has one."""
    (probe,) = probes_of(lesson_id, function)
    return probe


def probe_here(lesson_id: str, function: str, answer, seed: int = 0, **others) -> str | None:
    """The grader's cases for ``function`` (what the integrity pass sends), answered here by
    ``answer`` through the runner's own code, inputs and replies through JSON as in the pass,
    and judged by the grader: None when it passes, else the message the student would read.
    ``others``: the answers the recipe also calls (rnn_forward for rnn_params_from_torch)."""
    module = importlib.import_module(integrity.lesson_spec(lesson_id).module)
    rng = np.random.default_rng(seed)
    for probe in probes_of(lesson_id, function):
        cases = probe.cases(rng)
        request = {
            "function": function,
            "recipe": probe.recipe,
            "forbid": probe.forbid,
            "cases": json.loads(json.dumps([integrity.encode(c) for c in cases])),
        }
        namespace = {function: answer, **others}
        reply = json.loads(json.dumps(integrity_runner.answer(module, namespace, request)))
        why = integrity.judge(probe, cases, reply["outcomes"])
        if why:
            return why
    return None


def passes_probe(lesson_id: str, function: str, answer, **others) -> None:
    """Assert that ``answer`` passes the grader's cases of ``function``, for two seeds."""
    for seed in (0, 1):
        why = probe_here(lesson_id, function, answer, seed, **others)
        assert why is None, why


def rejection(lesson_id: str, function: str, answer, match: str, **others) -> str:
    """Assert that the grader's cases reject ``answer`` with ``match`` in the message."""
    why = probe_here(lesson_id, function, answer, **others)
    assert why is not None and re.search(match, why), why
    return why


def nudged(value):
    """``value`` a little wrong: tensors moved by 1e-3, floats by 10% (relative; non-finite ones
    made 0), ints by one, bools flipped, strings by a character, an empty list given one item,
    an empty tensor another dtype."""
    import torch

    if isinstance(value, torch.Tensor) and value.numel() == 0:  # nothing to move: its dtype
        return value.long() if value.is_floating_point() else value.double()
    if isinstance(value, torch.Tensor) and value.is_floating_point():  # NaN, inf: made 0
        return torch.where(value.isfinite(), value + 1e-3 * (1 + value.abs()), 0.0)
    if isinstance(value, torch.Tensor):
        return value + 1
    if type(value) is bool:
        return not value
    if isinstance(value, tuple | list):
        return type(value)(nudged(v) for v in value) if value else type(value)(["?"])
    if isinstance(value, dict):
        return {k: nudged(v) for k, v in value.items()}
    if isinstance(value, str):
        return value + "?"
    if type(value) is float:
        return value + 0.1 * (1 + abs(value)) if math.isfinite(value) else 0.0
    return value + 1 if type(value) is int else value


def as_answer(fn, name: str) -> str:
    """An alternative's source (from the corpus), renamed to the answer it implements (its
    own name stays an alias, for one that calls itself)."""
    source, own = inspect.getsource(fn), fn.__name__
    keyword = "class" if inspect.isclass(fn) else "def"
    renamed = re.sub(rf"^{keyword} {own}\b", f"{keyword} {name}", source, count=1, flags=re.M)
    return f"{renamed}\n\n{own} = {name}\n"


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
    probed = tuple(dict.fromkeys(p.function for p in integrity.lesson_spec(lesson_id).probes))
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
