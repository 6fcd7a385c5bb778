"""Checks for lesson 04 (GRU), with ``torch.nn.GRU`` as the reference.

Parameters use PyTorch's layout: a dict with ``weight_ih`` (3H, D), ``weight_hh`` (3H, H),
``bias_ih`` (3H,) and ``bias_hh`` (3H,), whose 3H rows are three blocks of H in the order
r (reset gate), z (update gate), n (candidate): the names of ``nn.GRUCell``'s parameters
(``nn.GRU`` adds a suffix per layer, ``weight_ih_l0``). Batch first: X is (B, T, D), h is (B, H).

No check here contains the GRU's equations: expected values come from ``nn.GRU``. Cho et al.'s
variant (2014), which the convention exercise needs, is assembled from ``nn.GRU`` steps whose
gates are pinned by saturating their biases, and typical bugs are reproduced the same way
(blocks permuted, the update gate's rows negated: sigmoid(-a) = 1 - sigmoid(a)).
"""

from rnncourse.checks.gru.cell import (
    CONVENTIONS,
    GATE_NAMES,
    PARAM_NAMES,
    SATURATED,
    check_gru_cell_forward,
    cho_gru_cell,
    pinned,
    random_gru_params,
    reference_gru_cell,
    reference_gru_forward,
    reversed_update,
    torch_gru_from_params,
)
from rnncourse.checks.gru.counting import (
    MODULES,
    adding_problem_mse,
    check_adding_baseline,
    check_memory_task,
    check_recurrent_num_params,
)
from rnncourse.checks.gru.layer import (
    black_box,
    check_gru_convention,
    check_gru_forward,
    convention_cells,
)

__all__ = [
    "CONVENTIONS",
    "GATE_NAMES",
    "MODULES",
    "PARAM_NAMES",
    "SATURATED",
    "adding_problem_mse",
    "black_box",
    "check_adding_baseline",
    "check_gru_cell_forward",
    "check_gru_convention",
    "check_gru_forward",
    "check_memory_task",
    "check_recurrent_num_params",
    "cho_gru_cell",
    "convention_cells",
    "pinned",
    "random_gru_params",
    "reference_gru_cell",
    "reference_gru_forward",
    "reversed_update",
    "torch_gru_from_params",
]
