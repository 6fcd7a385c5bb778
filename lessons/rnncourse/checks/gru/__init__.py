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
    CONVENTIONS as CONVENTIONS,
)
from rnncourse.checks.gru.cell import (
    GATE_NAMES as GATE_NAMES,
)
from rnncourse.checks.gru.cell import (
    PARAM_NAMES as PARAM_NAMES,
)
from rnncourse.checks.gru.cell import (
    SATURATED as SATURATED,
)
from rnncourse.checks.gru.cell import (
    _set_gate as _set_gate,
)
from rnncourse.checks.gru.cell import (
    _setup_step as _setup_step,
)
from rnncourse.checks.gru.cell import (
    check_gru_cell_forward as check_gru_cell_forward,
)
from rnncourse.checks.gru.cell import (
    cho_gru_cell as cho_gru_cell,
)
from rnncourse.checks.gru.cell import (
    random_gru_params as random_gru_params,
)
from rnncourse.checks.gru.cell import (
    reference_gru_cell as reference_gru_cell,
)
from rnncourse.checks.gru.cell import (
    reference_gru_forward as reference_gru_forward,
)
from rnncourse.checks.gru.cell import (
    torch_gru_from_params as torch_gru_from_params,
)
from rnncourse.checks.gru.counting import (
    MODULES as MODULES,
)
from rnncourse.checks.gru.counting import (
    adding_problem_mse as adding_problem_mse,
)
from rnncourse.checks.gru.counting import (
    check_adding_baseline as check_adding_baseline,
)
from rnncourse.checks.gru.counting import (
    check_memory_task as check_memory_task,
)
from rnncourse.checks.gru.counting import (
    check_recurrent_num_params as check_recurrent_num_params,
)
from rnncourse.checks.gru.layer import (
    check_gru_convention as check_gru_convention,
)
from rnncourse.checks.gru.layer import (
    check_gru_forward as check_gru_forward,
)
from rnncourse.checks.gru.layer import (
    convention_cells as convention_cells,
)
