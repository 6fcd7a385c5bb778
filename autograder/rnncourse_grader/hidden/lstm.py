"""Hidden checks for lesson 03: other shapes, T = 1, B = 1, D != H, float32, no nn.LSTM."""

import contextlib
import io

import torch

from rnncourse.checks import lstm
from rnncourse_grader.guards import forbidding, run_cases

F32, F64 = torch.float32, torch.float64


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line, so hidden cases do not flood the output."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def check_lstm_gates_hidden(lstm_gates):
    cases = [
        dict(batch_size=1, input_size=7, num_hiddens=2, dtype=F64, seed=11),
        dict(batch_size=6, input_size=2, num_hiddens=9, dtype=F64, seed=12),
        dict(batch_size=5, input_size=4, num_hiddens=4, dtype=F32, seed=13),
    ]
    _quietly(run_cases, lstm.check_lstm_gates, forbidding(lstm_gates, "lstm"), cases)
    print("Hidden checks passed.")


def check_lstm_cell_forward_hidden(lstm_cell_forward):
    cases = [
        dict(batch_size=1, input_size=6, num_hiddens=3, dtype=F64, seed=21),
        dict(batch_size=7, input_size=2, num_hiddens=8, dtype=F64, seed=22),
        dict(batch_size=4, input_size=5, num_hiddens=5, dtype=F32, seed=23),
    ]
    _quietly(run_cases, lstm.check_lstm_cell_forward, forbidding(lstm_cell_forward, "lstm"), cases)
    print("Hidden checks passed.")


def check_lstm_forward_hidden(lstm_forward):
    cases = [
        dict(batch_size=2, num_steps=1, input_size=3, num_hiddens=4, dtype=F64, seed=31),
        dict(batch_size=1, num_steps=9, input_size=6, num_hiddens=2, dtype=F64, seed=32),
        dict(batch_size=4, num_steps=5, input_size=3, num_hiddens=3, dtype=F32, seed=33),
        dict(batch_size=3, num_steps=4, input_size=2, num_hiddens=5, seed=34, zero_state=True),
    ]
    _quietly(run_cases, lstm.check_lstm_forward, forbidding(lstm_forward, "lstm"), cases)
    print("Hidden checks passed.")


def check_lstm_bidirectional_forward_hidden(lstm_bidirectional_forward):
    cases = [
        dict(batch_size=2, num_steps=1, input_size=3, num_hiddens=4, dtype=F64, seed=41),
        dict(batch_size=1, num_steps=7, input_size=5, num_hiddens=2, dtype=F64, seed=42),
        dict(batch_size=3, num_steps=4, input_size=2, num_hiddens=3, dtype=F32, seed=43),
        dict(batch_size=2, num_steps=6, input_size=4, num_hiddens=5, seed=44, zero_state=True),
    ]
    _quietly(
        run_cases,
        lstm.check_lstm_bidirectional_forward,
        forbidding(lstm_bidirectional_forward, "lstm"),
        cases,
    )
    print("Hidden checks passed.")


def check_lstm_stacked_forward_hidden(lstm_stacked_forward):
    cases = [
        dict(num_layers=3, bidirectional=True, batch_size=2, num_steps=4, input_size=5, seed=51),
        dict(num_layers=1, bidirectional=False, batch_size=1, num_steps=1, input_size=2, seed=52),
        dict(num_layers=2, bidirectional=True, batch_size=1, num_steps=1, num_hiddens=2, seed=53),
        dict(num_layers=3, bidirectional=False, num_steps=3, dtype=F32, zero_state=True, seed=54),
    ]
    _quietly(
        run_cases, lstm.check_lstm_stacked_forward, forbidding(lstm_stacked_forward, "lstm"), cases
    )
    print("Hidden checks passed.")


def check_state_gradient_norms_hidden(state_gradient_norms):
    """Not guarded: the check hands the student's function recurrences built on PyTorch's cells."""
    cases = [
        dict(batch_size=1, num_steps=1, num_hiddens=3, seed=61),
        dict(batch_size=5, num_steps=20, num_hiddens=2, two_states=False, seed=62),
        dict(batch_size=2, num_steps=9, num_hiddens=6, dtype=F32, seed=63),
    ]
    _quietly(run_cases, lstm.check_state_gradient_norms, state_gradient_norms, cases)
    print("Hidden checks passed.")
