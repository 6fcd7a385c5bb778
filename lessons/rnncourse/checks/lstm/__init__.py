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
    GATE_NAMES,
    GATE_ROLES,
    PARAM_NAMES,
    SATURATED,
    check_lstm_cell_forward,
    check_lstm_gates,
    random_lstm_params,
    reference_deep_lstm,
    reference_lstm_cell,
    reference_lstm_forward,
    reference_lstm_gates,
    torch_lstm_from_params,
    torch_lstm_params,
)
from rnncourse.checks.lstm.gradients import (
    check_lstm_gradient_decays_slower,
    check_recall_model,
    check_state_gradient_norms,
    decay_rate,
    recall_accuracy,
)
from rnncourse.checks.lstm.layers import (
    check_init_forget_bias,
    check_lstm_bidirectional_forward,
    check_lstm_forward,
    check_lstm_stacked_forward,
)

__all__ = [
    "GATE_NAMES",
    "GATE_ROLES",
    "PARAM_NAMES",
    "SATURATED",
    "check_init_forget_bias",
    "check_lstm_bidirectional_forward",
    "check_lstm_cell_forward",
    "check_lstm_forward",
    "check_lstm_gates",
    "check_lstm_gradient_decays_slower",
    "check_lstm_stacked_forward",
    "check_recall_model",
    "check_state_gradient_norms",
    "decay_rate",
    "random_lstm_params",
    "recall_accuracy",
    "reference_deep_lstm",
    "reference_lstm_cell",
    "reference_lstm_forward",
    "reference_lstm_gates",
    "torch_lstm_from_params",
    "torch_lstm_params",
]
