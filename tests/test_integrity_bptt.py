"""The integrity pass for lesson 02, without nbgrader: honest code passes (the corpus of
alternatives included), cheats fail, with why."""

import copy
import inspect

import nbformat
import pytest

from rnncourse_grader import integrity, sanitize
from tests import test_alternatives_bptt as alternatives
from tests.course import ROOT, solution_cells

LESSON = "02_bptt"
RELEASED = ROOT / "lessons" / LESSON / f"{LESSON}.ipynb"
REF = solution_cells(LESSON)
ALL_TESTS = {t for p in integrity.lesson_spec(LESSON).probes for t in p.tests}
PROBED = ("rnn_cell_backward", "rnn_backward", "jacobian_norms", "with_spectral_radius",
          "clip_grad_norm")  # fmt: skip


@pytest.fixture(scope="module")
def template():
    return nbformat.read(RELEASED, as_version=4)


def verdicts(template, answers, added=()):
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    for i, source in enumerate(added):
        nb.cells.insert(2 + i, nbformat.v4.new_code_cell(source))
    nb = sanitize.sanitize(nb, template)[0]
    report = integrity.run_pass(
        LESSON, nb, template, ALL_TESTS, seed=11, policy={"memory_mb": 3072}
    )
    return {v.function: (v.status, v.message) for v in report.verdicts}


def as_answer(fn, name: str) -> str:
    """An alternative's source, renamed to the answer it implements."""
    return inspect.getsource(fn).replace(f"def {fn.__name__}(", f"def {name}(", 1)


def test_the_reference_passes_every_probe(template):
    assert verdicts(template, REF) == {f: ("pass", "") for f in PROBED}


def test_alternatives_of_the_corpus_pass(template):
    helpers = "\n\n".join(
        inspect.getsource(f) for f in (alternatives.cell_einsum, alternatives.cell_stacked_weights,
                                       alternatives.cell_float64_inside)
    )  # fmt: skip
    header = "import numpy as np\nimport torch\n\n"
    for pick in range(3):
        answers = {
            **REF,
            "rnn_cell_backward": as_answer(alternatives.CELLS[pick + 1], "rnn_cell_backward"),
            "rnn_backward": as_answer(alternatives.BACKWARDS[pick], "rnn_backward"),
            "jacobian_norms": as_answer(alternatives.JACOBIANS[pick], "jacobian_norms"),
            "with_spectral_radius": as_answer(alternatives.RADII[pick], "with_spectral_radius"),
            "clip_grad_norm": as_answer(alternatives.CLIPS[pick], "clip_grad_norm"),
        }
        got = verdicts(template, answers, added=[header + helpers])
        assert got == {f: ("pass", "") for f in PROBED}, (pick, got)


NO_OP_CHECKS = (
    "import rnncourse.checks as _c\n"
    "for _name in dir(_c):\n"
    "    if _name.startswith('check_'):\n"
    "        globals()[_name] = lambda *a, **k: None\n\n"
)

CHEATS = {
    "rnn_cell_backward": (
        NO_OP_CHECKS + "def rnn_cell_backward(dh_next, cache):\n"
        "    x_t, h_prev, h_t, W_xh, W_hh = cache\n"
        "    da = dh_next\n"  # no tanh derivative
        "    return da @ W_xh.T, da @ W_hh.T, x_t.T @ da, h_prev.T @ da, da.sum(0)\n",
        "dx_t: largest difference",
    ),
    "rnn_backward": (
        "def rnn_backward(dH, caches):\n"
        "    B, T, H = dH.shape\n"
        "    D = caches[0][0].shape[1]\n"
        "    return (dH.new_zeros(B, T, D), dH.new_zeros(B, H), dH.new_zeros(D, H),\n"
        "            dH.new_zeros(H, H), dH.new_zeros(H))\n",
        "dX: largest difference",
    ),
    "jacobian_norms": (
        "def jacobian_norms(H_all, W_hh):\n"
        "    return H_all.new_ones(H_all.shape[0], H_all.shape[1] + 1)\n",
        "norms: largest difference",
    ),
    "with_spectral_radius": (
        "def with_spectral_radius(W, radius):\n"
        "    return W.mul_(radius / torch.linalg.eigvals(W).abs().max())\n",
        "changed W in place",
    ),
    "clip_grad_norm": (
        "def clip_grad_norm(grads, max_norm):\n"
        "    return torch.sqrt(sum((g ** 2).sum() for g in grads))\n",  # never clips
        "grads[0]: largest difference",
    ),
}


@pytest.mark.parametrize("function", CHEATS)
def test_a_wrong_answer_behind_no_op_checks_fails_here_with_why(template, function):
    """The trick that gets full marks in the kernel (every check a no-op) and a wrong answer."""
    source, why = CHEATS[function]
    got = verdicts(template, {**REF, function: source})
    assert got[function][0] == "fail" and why in got[function][1], got[function]
    uses_it = {"rnn_cell_backward": {"rnn_backward"}}.get(function, set())  # calls the cheat
    others = set(PROBED) - {function} - uses_it
    assert all(got[f][0] == "pass" for f in others), got
