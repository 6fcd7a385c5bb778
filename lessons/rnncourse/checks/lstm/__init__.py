"""Checks for lesson 03 (LSTM), with ``torch.nn.LSTM`` and ``torch.nn.LSTMCell`` as the reference.

Parameters use PyTorch's layout: a dict with ``weight_ih`` (4H, D), ``weight_hh`` (4H, H),
``bias_ih`` (4H,) and ``bias_hh`` (4H,), whose 4H rows are four blocks of H in the gate order
i, f, g, o (the names of ``nn.LSTMCell``'s parameters; ``nn.LSTM`` adds a suffix per layer and
direction: ``weight_ih_l0``, ``weight_ih_l0_reverse``, ``weight_ih_l1``, ...). Batch first:
X is (B, T, D), states h and c are (B, H).

No check here contains the LSTM's equations: expected values come from PyTorch's modules
(gates are read back from ``nn.LSTMCell`` by saturating the other gates), or, for gradients,
from a linear recurrence whose gradients have a closed form.
"""

from rnncourse.checks.lstm.cell import (
    GATE_NAMES as GATE_NAMES,
)
from rnncourse.checks.lstm.cell import (
    GATE_ROLES as GATE_ROLES,
)
from rnncourse.checks.lstm.cell import (
    PARAM_NAMES as PARAM_NAMES,
)
from rnncourse.checks.lstm.cell import (
    SATURATED as SATURATED,
)
from rnncourse.checks.lstm.cell import (
    check_lstm_cell_forward as check_lstm_cell_forward,
)
from rnncourse.checks.lstm.cell import (
    check_lstm_gates as check_lstm_gates,
)
from rnncourse.checks.lstm.cell import (
    random_lstm_params as random_lstm_params,
)
from rnncourse.checks.lstm.cell import (
    reference_deep_lstm as reference_deep_lstm,
)
from rnncourse.checks.lstm.cell import (
    reference_lstm_cell as reference_lstm_cell,
)
from rnncourse.checks.lstm.cell import (
    reference_lstm_forward as reference_lstm_forward,
)
from rnncourse.checks.lstm.cell import (
    reference_lstm_gates as reference_lstm_gates,
)
from rnncourse.checks.lstm.cell import (
    torch_lstm_from_params as torch_lstm_from_params,
)
from rnncourse.checks.lstm.cell import (
    torch_lstm_params as torch_lstm_params,
)
from rnncourse.checks.lstm.gradients import (
    check_lstm_gradient_decays_slower as check_lstm_gradient_decays_slower,
)
from rnncourse.checks.lstm.gradients import (
    check_recall_model as check_recall_model,
)
from rnncourse.checks.lstm.gradients import (
    check_state_gradient_norms as check_state_gradient_norms,
)
from rnncourse.checks.lstm.gradients import (
    decay_rate as decay_rate,
)
from rnncourse.checks.lstm.gradients import (
    recall_accuracy as recall_accuracy,
)
from rnncourse.checks.lstm.layers import (
    check_init_forget_bias as check_init_forget_bias,
)
from rnncourse.checks.lstm.layers import (
    check_lstm_bidirectional_forward as check_lstm_bidirectional_forward,
)
from rnncourse.checks.lstm.layers import (
    check_lstm_forward as check_lstm_forward,
)
from rnncourse.checks.lstm.layers import (
    check_lstm_stacked_forward as check_lstm_stacked_forward,
)
