"""Public checks the lessons call in their test cells.

Every check takes the student's object as an argument, reads no globals, prints one line
when it passes and raises ``CheckFailed`` (an ``AssertionError``) with a hint when it fails.
"""

from rnncourse.checks._core import CheckFailed
from rnncourse.checks.rnn import (
    check_next_symbol_model,
    check_rnn_cell_forward,
    check_rnn_forward,
    check_rnn_num_params,
    check_rnn_params_from_torch,
    check_sequence_loss,
)

__all__ = [
    "CheckFailed",
    "check_next_symbol_model",
    "check_rnn_cell_forward",
    "check_rnn_forward",
    "check_rnn_num_params",
    "check_rnn_params_from_torch",
    "check_sequence_loss",
]
