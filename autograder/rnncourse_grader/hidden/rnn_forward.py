"""Hidden checks for lesson 01: other shapes, T = 1, B = 1, D != H, float32, no nn.RNN."""

import contextlib
import io

import torch

from rnncourse.checks import rnn
from rnncourse_grader.guards import forbidding, run_cases

F32, F64 = torch.float32, torch.float64


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line, so hidden cases do not flood the output."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def check_rnn_cell_forward_hidden(rnn_cell_forward):
    cases = [
        dict(batch_size=1, input_size=7, num_hiddens=2, dtype=F64, seed=11),
        dict(batch_size=9, input_size=2, num_hiddens=6, dtype=F64, seed=12),
        dict(batch_size=5, input_size=4, num_hiddens=4, dtype=F32, seed=13),
    ]
    _quietly(run_cases, rnn.check_rnn_cell_forward, forbidding(rnn_cell_forward, "rnn"), cases)
    print("Hidden checks passed.")


def check_rnn_forward_hidden(rnn_forward):
    cases = [
        dict(batch_size=2, num_steps=1, input_size=3, num_hiddens=4, dtype=F64, seed=21),
        dict(batch_size=1, num_steps=9, input_size=6, num_hiddens=2, dtype=F64, seed=22),
        dict(batch_size=4, num_steps=5, input_size=3, num_hiddens=3, dtype=F32, seed=23),
        dict(
            batch_size=3, num_steps=4, input_size=2, num_hiddens=5, dtype=F64, seed=24, zero_h0=True
        ),
    ]
    _quietly(run_cases, rnn.check_rnn_forward, forbidding(rnn_forward, "rnn"), cases)
    print("Hidden checks passed.")


def check_rnn_params_from_torch_hidden(rnn_params_from_torch, rnn_forward):
    cases = [dict(input_size=1, num_hiddens=4, seed=31), dict(input_size=8, num_hiddens=3, seed=32)]
    _quietly(
        run_cases,
        rnn.check_rnn_params_from_torch,
        rnn_params_from_torch,
        cases,
        rnn_forward=rnn_forward,
    )
    print("Hidden checks passed.")


def check_sequence_loss_hidden(sequence_loss):
    cases = [
        dict(batch_size=1, num_steps=1, vocab_size=3, seed=41),
        dict(batch_size=6, num_steps=9, vocab_size=11, seed=42),
        dict(batch_size=4, num_steps=7, vocab_size=5, seed=43, dtype=F32),
    ]
    _quietly(run_cases, rnn.check_sequence_loss, sequence_loss, cases)
    print("Hidden checks passed.")
