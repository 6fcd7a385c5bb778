"""The integrity pass for lesson 03, without nbgrader: honest code passes (the corpus of
alternatives included), cheats behind no-op checks fail, with why."""

import pytest

from tests import test_alternatives_lstm as alt
from tests.course import solution_cells
from tests.integrity_support import NO_OP_CHECKS, as_answer, released, sources, verdicts

LESSON = "03_lstm"
REF = solution_cells(LESSON)
PROBED = ("lstm_gates", "lstm_cell_forward", "lstm_forward", "lstm_bidirectional_forward",
          "lstm_stacked_forward", "init_forget_bias", "state_gradient_norms")  # fmt: skip


@pytest.fixture(scope="module")
def template():
    return released(LESSON)


def test_the_reference_passes_every_probe(template):
    assert verdicts(LESSON, template, REF) == {f: ("pass", "") for f in PROBED}


def test_alternatives_of_the_corpus_pass(template):
    helpers = sources(
        alt.gates_per_block, alt.gates_f_linear_split, alt.gates_one_matmul, alt.cell_addcmul,
        alt.cell_inline, alt.forward_preallocated, alt.forward_inputs_first, alt.forward_unbind,
        alt.bi_torch_flip,
    )  # fmt: skip
    # layer_params, which two stacked alternatives call, is the lesson's own helper: the
    # integrity pass runs the definitions of the lesson's cells
    for pick in range(3):
        answers = {
            **REF,
            "lstm_gates": as_answer(alt.GATES[pick], "lstm_gates"),
            "lstm_cell_forward": as_answer(alt.CELLS[pick], "lstm_cell_forward"),
            "lstm_forward": as_answer(alt.FORWARDS[pick], "lstm_forward"),
            "lstm_bidirectional_forward": as_answer(alt.BIS[pick], "lstm_bidirectional_forward"),
            "lstm_stacked_forward": as_answer(alt.STACKS[pick], "lstm_stacked_forward"),
            "init_forget_bias": as_answer(alt.FORGETS[pick], "init_forget_bias"),
            "state_gradient_norms": as_answer(alt.NORMS[pick], "state_gradient_norms"),
        }
        got = verdicts(LESSON, template, answers, added=[helpers])
        assert got == {f: ("pass", "") for f in PROBED}, (pick, got)


CHEATS = {
    "lstm_gates": (
        "def lstm_gates(x_t, h_prev, params):\n"
        "    z = x_t @ params['weight_ih'].T + h_prev @ params['weight_hh'].T + params['bias_ih']\n"
        "    i, f, g, o = z.chunk(4, 1)\n"  # one bias missing
        "    return i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()\n",
        "i: largest difference",
    ),
    "lstm_forward": (
        "def lstm_forward(X, state0, params):\n"
        "    B, T, _ = X.shape\n    H = params['weight_hh'].shape[1]\n"
        "    h = X.new_zeros(B, H)\n"  # ignores state0
        "    c, hs = X.new_zeros(B, H), []\n"
        "    for t in range(T):\n"
        "        h, c = lstm_cell_forward(X[:, t], (h, c), params)\n        hs.append(h)\n"
        "    return torch.stack(hs, 1), (h, c)\n",
        "outputs: largest difference",
    ),
    "init_forget_bias": (
        "def init_forget_bias(lstm, value=1.0):\n    return lstm\n",
        "is not",
    ),
    "state_gradient_norms": (
        "def state_gradient_norms(step, X, state0):\n"
        "    return torch.ones(X.shape[1], dtype=X.dtype)\n",
        "norms: largest difference",
    ),
}


@pytest.mark.parametrize("function", CHEATS)
def test_a_wrong_answer_behind_no_op_checks_fails_here_with_why(template, function):
    source, why = CHEATS[function]
    got = verdicts(LESSON, template, {**REF, function: NO_OP_CHECKS + source})
    assert got[function][0] == "fail" and why in got[function][1], got[function]
    uses_it = {"lstm_gates": {"lstm_cell_forward", "lstm_forward", "lstm_bidirectional_forward",
                              "lstm_stacked_forward"},
               "lstm_forward": {"lstm_bidirectional_forward", "lstm_stacked_forward"}}  # fmt: skip
    others = set(PROBED) - {function} - uses_it.get(function, set())
    assert all(got[f][0] == "pass" for f in others), got
