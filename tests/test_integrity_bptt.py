"""The integrity pass for lesson 02, without nbgrader: honest code passes (the corpus of
alternatives included), cheats behind no-op checks fail, with why."""

import pytest

from tests import test_alternatives_bptt as alt
from tests.course import solution_cells
from tests.integrity_support import NO_OP_CHECKS, as_answer, released, sources, verdicts

LESSON = "02_bptt"
REF = solution_cells(LESSON)
PROBED = ("rnn_cell_backward", "rnn_backward", "jacobian_norms", "with_spectral_radius",
          "clip_grad_norm")  # fmt: skip


@pytest.fixture(scope="module")
def template():
    return released(LESSON)


def test_the_reference_passes_every_probe(template):
    assert verdicts(LESSON, template, REF) == {f: ("pass", "") for f in PROBED}


def test_alternatives_of_the_corpus_pass(template):
    helpers = sources(alt.cell_einsum, alt.cell_stacked_weights, alt.cell_float64_inside)
    for pick in range(3):
        answers = {
            **REF,
            "rnn_cell_backward": as_answer(alt.CELLS[pick + 1], "rnn_cell_backward"),
            "rnn_backward": as_answer(alt.BACKWARDS[pick], "rnn_backward"),
            "jacobian_norms": as_answer(alt.JACOBIANS[pick], "jacobian_norms"),
            "with_spectral_radius": as_answer(alt.RADII[pick], "with_spectral_radius"),
            "clip_grad_norm": as_answer(alt.CLIPS[pick], "clip_grad_norm"),
        }
        got = verdicts(LESSON, template, answers, added=[helpers])
        assert got == {f: ("pass", "") for f in PROBED}, (pick, got)


CHEATS = {
    "rnn_cell_backward": (
        "def rnn_cell_backward(dh_next, cache):\n"
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
    source, why = CHEATS[function]
    got = verdicts(LESSON, template, {**REF, function: NO_OP_CHECKS + source})
    assert got[function][0] == "fail" and why in got[function][1], got[function]
    uses_it = {"rnn_cell_backward": {"rnn_backward"}}.get(function, set())  # calls the cheat
    assert all(got[f][0] == "pass" for f in set(PROBED) - {function} - uses_it), got
