"""Hidden checks for lesson 04: other shapes, T = 1, B = 1, D != H, float32, no nn.GRU."""

import contextlib
import io

import torch

from rnncourse.checks import gru
from rnncourse_grader.guards import forbidding, run_cases

F32, F64 = torch.float32, torch.float64


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line, so hidden cases do not flood the output."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def check_gru_cell_forward_hidden(gru_cell_forward):
    cases = [
        dict(batch_size=1, input_size=7, num_hiddens=2, dtype=F64, seed=51),
        dict(batch_size=9, input_size=2, num_hiddens=6, dtype=F64, seed=52),
        dict(batch_size=5, input_size=4, num_hiddens=4, dtype=F32, seed=53),
        dict(batch_size=3, input_size=1, num_hiddens=1, dtype=F64, seed=54),
    ]
    _quietly(run_cases, gru.check_gru_cell_forward, forbidding(gru_cell_forward, "gru"), cases)
    print("Hidden checks passed.")


def check_gru_forward_hidden(gru_forward):
    cases = [
        dict(batch_size=2, num_steps=1, input_size=3, num_hiddens=4, dtype=F64, seed=61),
        dict(batch_size=1, num_steps=9, input_size=6, num_hiddens=2, dtype=F64, seed=62),
        dict(batch_size=4, num_steps=5, input_size=3, num_hiddens=3, dtype=F32, seed=63),
        dict(
            batch_size=3, num_steps=4, input_size=2, num_hiddens=5, dtype=F64, seed=64, zero_h0=True
        ),
    ]
    _quietly(run_cases, gru.check_gru_forward, forbidding(gru_forward, "gru"), cases)
    print("Hidden checks passed.")


def check_gru_convention_hidden(gru_convention):
    """More cells that are neither convention: reversed interpolation, no reset gate, ..."""
    _quietly(gru.check_gru_convention, gru_convention, hidden=True)
    print("Hidden checks passed.")


def check_recurrent_num_params_hidden(recurrent_num_params):
    """Other sizes and depths (the visible check refuses a count made by building a module)."""
    cases = (
        ("gru", 1, 1, 1),
        ("lstm", 300, 64, 1),
        ("gru", 50, 128, 3),
        ("rnn", 2, 9, 4),
        ("lstm", 8, 8, 2),
    )
    _quietly(gru.check_recurrent_num_params, recurrent_num_params, cases)
    print("Hidden checks passed.")
