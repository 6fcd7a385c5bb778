"""The integrity pass for lesson 04, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

from tests import test_alternatives_gru as alt
from tests.integrity_support import integrity_tests, sources

CORPUS = {
    "gru_cell_forward": alt.CELLS,
    "gru_forward": alt.FORWARDS,
    "gru_convention": alt.CONVENTIONS,
    "recurrent_num_params": alt.COUNTS,
    "adding_baseline_mse": alt.BASELINES,
}
HELPERS = "import math\nfrom fractions import Fraction\n" + sources(
    alt.cell_split_weights, alt.cell_f_linear, alt._random_step, alt._cho
)
CASCADES = {"gru_cell_forward": ["gru_forward"]}  # the reference's gru_forward calls it

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

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("04_gru", CORPUS, HELPERS, CHEATS, CASCADES)
