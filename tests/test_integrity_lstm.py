"""The integrity pass for lesson 03, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

from tests import test_alternatives_lstm as alt
from tests.integrity_support import integrity_tests, sources

CORPUS = {
    "lstm_gates": alt.GATES,
    "lstm_cell_forward": alt.CELLS,
    "lstm_forward": alt.FORWARDS,
    "lstm_bidirectional_forward": alt.BIS,
    "lstm_stacked_forward": alt.STACKS,
    "init_forget_bias": alt.FORGETS,
    "state_gradient_norms": alt.NORMS,
}
# the corpus functions the alternatives call; layer_params, which two stacked alternatives
# call, is the lesson's own helper (the integrity pass runs the lesson's definitions)
HELPERS = sources(
    alt.gates_per_block, alt.gates_f_linear_split, alt.gates_one_matmul, alt.cell_addcmul,
    alt.cell_inline, alt.forward_preallocated, alt.forward_inputs_first, alt.forward_unbind,
    alt.bi_torch_flip,
)  # fmt: skip
LAYERS = ["lstm_bidirectional_forward", "lstm_stacked_forward"]
CASCADES = {"lstm_gates": ["lstm_cell_forward", "lstm_forward", *LAYERS], "lstm_forward": LAYERS}

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

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("03_lstm", CORPUS, HELPERS, CHEATS, CASCADES)
