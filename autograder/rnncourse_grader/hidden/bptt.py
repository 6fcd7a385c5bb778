"""Hidden checks for lesson 02: other shapes, T = 1, B = 1, D != H, float32, no autograd."""

import contextlib
import functools
import io
from unittest import mock

import torch

from rnncourse.checks import CheckFailed, bptt
from rnncourse_grader.guards import run_cases

F32, F64 = torch.float32, torch.float64


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line, so hidden cases do not flood the output."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


@contextlib.contextmanager
def no_autograd(who: str):
    """Inside the block, any backward pass of autograd raises CheckFailed.

    ``Tensor.backward``, ``torch.autograd.backward``, ``torch.autograd.grad`` and what is built on
    them (``torch.autograd.functional``, ``torch.func``) all run the engine through
    ``_engine_run_backward``, looked up in these two modules.
    """

    def refuse(*args, **kwargs):
        raise CheckFailed(
            f"{who} calls autograd (backward() or torch.autograd.grad): compute the gradients "
            "by hand, with tensor operations."
        )

    with (
        mock.patch.object(torch.autograd, "_engine_run_backward", refuse),
        mock.patch.object(torch.autograd.graph, "_engine_run_backward", refuse),
    ):
        yield


def by_hand(fn):
    """``fn`` wrapped so that each call runs inside ``no_autograd``."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        with no_autograd(getattr(fn, "__name__", "your function")):
            return fn(*args, **kwargs)

    return guarded


def check_rnn_cell_backward_hidden(rnn_cell_backward, rnn_cell_forward_with_cache):
    cases = [
        dict(batch_size=1, input_size=7, num_hiddens=2, dtype=F64, seed=11),
        dict(batch_size=6, input_size=2, num_hiddens=6, dtype=F64, seed=12),
        dict(batch_size=3, input_size=4, num_hiddens=4, dtype=F32, seed=13),
    ]
    _quietly(
        run_cases,
        bptt.check_rnn_cell_backward,
        by_hand(rnn_cell_backward),
        cases,
        rnn_cell_forward_with_cache=rnn_cell_forward_with_cache,
    )
    print("Hidden checks passed.")


def check_rnn_cell_backward_numerical_hidden(rnn_cell_backward, rnn_cell_forward_with_cache):
    cases = [dict(batch_size=1, input_size=5, num_hiddens=3, seed=14)]
    _quietly(
        run_cases,
        bptt.check_rnn_cell_backward_numerical,
        by_hand(rnn_cell_backward),
        cases,
        rnn_cell_forward_with_cache=rnn_cell_forward_with_cache,
    )
    print("Hidden checks passed.")


def check_rnn_backward_hidden(rnn_backward, rnn_forward_with_cache):
    cases = [
        dict(batch_size=1, num_steps=7, input_size=2, num_hiddens=5, dtype=F64, seed=21),
        dict(batch_size=4, num_steps=3, input_size=6, num_hiddens=3, dtype=F32, seed=22),
        dict(batch_size=2, num_steps=9, input_size=3, num_hiddens=3, upstream="sparse", seed=23),
    ]
    _quietly(
        run_cases,
        bptt.check_rnn_backward,
        by_hand(rnn_backward),
        cases,
        rnn_forward_with_cache=rnn_forward_with_cache,
    )
    print("Hidden checks passed.")


def check_rnn_backward_numerical_hidden(rnn_backward, rnn_forward_with_cache):
    cases = [dict(batch_size=3, num_steps=3, input_size=2, num_hiddens=3, seed=24)]
    _quietly(
        run_cases,
        bptt.check_rnn_backward_numerical,
        by_hand(rnn_backward),
        cases,
        rnn_forward_with_cache=rnn_forward_with_cache,
    )
    print("Hidden checks passed.")


def check_rnn_backward_edge_cases_hidden(rnn_backward, rnn_forward_with_cache):
    cases = [
        dict(batch_size=1, num_steps=1, input_size=4, num_hiddens=2, seed=25),
        dict(batch_size=2, num_steps=1, input_size=3, num_hiddens=3, dtype=F32, seed=26),
        dict(batch_size=3, num_steps=4, input_size=2, num_hiddens=4, upstream="last", seed=27),
    ]
    _quietly(
        run_cases,
        bptt.check_rnn_backward,
        by_hand(rnn_backward),
        cases,
        rnn_forward_with_cache=rnn_forward_with_cache,
    )
    print("Hidden checks passed.")


def check_train_truncated_bptt_hidden(train_truncated_bptt):
    cases = [
        dict(num_steps=5, chunk_size=1, seed=31),
        dict(num_steps=11, chunk_size=3, batch_size=1, seed=32),
        dict(num_steps=4, chunk_size=6, seed=33),  # one chunk, shorter than chunk_size
    ]
    _quietly(run_cases, bptt.check_train_truncated_bptt, train_truncated_bptt, cases)
    print("Hidden checks passed.")


def check_jacobian_norms_hidden(jacobian_norms):
    cases = [
        dict(batch_size=1, num_steps=1, num_hiddens=3, seed=41),
        dict(batch_size=3, num_steps=8, num_hiddens=6, seed=42),
        dict(batch_size=2, num_steps=4, num_hiddens=5, dtype=F32, seed=43),
    ]
    _quietly(run_cases, bptt.check_jacobian_norms, by_hand(jacobian_norms), cases)
    print("Hidden checks passed.")


def check_with_spectral_radius_hidden(with_spectral_radius):
    cases = [
        dict(size=2, radius=0.5, seed=51),
        dict(size=9, radius=1.0, dtype=F32, seed=52),
    ]
    _quietly(run_cases, bptt.check_with_spectral_radius, with_spectral_radius, cases)
    print("Hidden checks passed.")


def check_clip_grad_norm_hidden(clip_grad_norm):
    cases = [
        dict(shapes=((7,),), max_norm=0.5, seed=61),
        dict(shapes=((2, 3), (3,), (1,)), max_norm=2.0, dtype=F32, seed=62),
        dict(shapes=((4, 4), (2,)), max_norm=1.0, scale=0.0, seed=63),  # zero gradients stay zero
    ]
    _quietly(run_cases, bptt.check_clip_grad_norm, clip_grad_norm, cases)
    print("Hidden checks passed.")
