"""Hidden checks called from the lessons' hidden test cells (kept thin: logic lives here)."""

from rnncourse_grader.hidden.rnn_forward import (
    check_rnn_cell_forward_hidden,
    check_rnn_forward_hidden,
    check_rnn_params_from_torch_hidden,
    check_sequence_loss_hidden,
)

__all__ = [
    "check_rnn_cell_forward_hidden",
    "check_rnn_forward_hidden",
    "check_rnn_params_from_torch_hidden",
    "check_sequence_loss_hidden",
]
