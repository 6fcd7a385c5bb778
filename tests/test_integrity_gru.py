"""The integrity pass for lesson 04, without nbgrader: honest code passes (the corpus of
alternatives included), cheats behind no-op checks fail, with why."""

import pytest

from tests import test_alternatives_gru as alt
from tests.course import solution_cells
from tests.integrity_support import NO_OP_CHECKS, as_answer, released, sources, verdicts

LESSON = "04_gru"
REF = solution_cells(LESSON)
PROBED = ("gru_cell_forward", "gru_forward", "gru_convention", "recurrent_num_params",
          "adding_baseline_mse")  # fmt: skip


@pytest.fixture(scope="module")
def template():
    return released(LESSON)


def test_the_reference_passes_every_probe(template):
    assert verdicts(LESSON, template, REF) == {f: ("pass", "") for f in PROBED}


def test_alternatives_of_the_corpus_pass(template):
    helpers = sources(alt.cell_split_weights, alt.cell_f_linear, alt._random_step, alt._cho)
    helpers = "import math\nfrom fractions import Fraction\n" + helpers
    for pick in range(3):
        answers = {
            **REF,
            "gru_cell_forward": as_answer(alt.CELLS[pick], "gru_cell_forward"),
            "gru_forward": as_answer(alt.FORWARDS[pick], "gru_forward"),
            "gru_convention": as_answer(alt.CONVENTIONS[pick], "gru_convention"),
            "recurrent_num_params": as_answer(alt.COUNTS[pick], "recurrent_num_params"),
            "adding_baseline_mse": as_answer(alt.BASELINES[pick], "adding_baseline_mse"),
        }
        got = verdicts(LESSON, template, answers, added=[helpers])
        assert got == {f: ("pass", "") for f in PROBED}, (pick, got)


CHEATS = {
    "gru_cell_forward": (
        "def gru_cell_forward(x_t, h_prev, params):\n"
        "    a = x_t @ params['weight_ih'].T + params['bias_ih'] + h_prev @ params['weight_hh'].T\n"
        "    r, z, n = a.chunk(3, 1)\n"  # b_hn outside r * (...), Cho-style mixing
        "    n = torch.tanh(n + params['bias_hh'].chunk(3)[2])\n"
        "    z = torch.sigmoid(z)\n"
        "    return (1 - z) * n + z * h_prev\n",
        "h_t: largest difference",
    ),
    "gru_convention": ("def gru_convention(cell):\n    return 'pytorch'\n", "gru_convention said"),
    "recurrent_num_params": (
        "def recurrent_num_params(kind, input_size, num_hiddens, num_layers=1):\n"
        "    return 4 * num_hiddens * (input_size + num_hiddens + 2) * num_layers\n",
        "expected",
    ),
    "adding_baseline_mse": ("def adding_baseline_mse():\n    return 1 / 12\n", "0.08333"),
}


@pytest.mark.parametrize("function", CHEATS)
def test_a_wrong_answer_behind_no_op_checks_fails_here_with_why(template, function):
    source, why = CHEATS[function]
    got = verdicts(LESSON, template, {**REF, function: NO_OP_CHECKS + source})
    assert got[function][0] == "fail" and why in got[function][1], got[function]
    uses_it = {"gru_cell_forward": {"gru_forward"}}.get(function, set())  # calls the cheat
    assert all(got[f][0] == "pass" for f in set(PROBED) - {function} - uses_it), got
