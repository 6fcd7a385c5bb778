"""Helpers for the per-lesson integrity tests: build a sanitized submission, read verdicts."""

import copy
import inspect
import tempfile

import nbformat

from rnncourse_grader import integrity, sanitize
from tests.course import ROOT

# Every check made a no-op in the notebook's namespace: full marks in the kernel.
NO_OP_CHECKS = (
    "import rnncourse.checks as _c\n"
    "for _name in dir(_c):\n"
    "    if _name.startswith('check_'):\n"
    "        globals()[_name] = lambda *a, **k: None\n\n"
)


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
