"""Lesson 04's checks, counting parameters and the adding problem."""

import math
from unittest import mock

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_tensor,
)

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _module_count(kind, input_size, num_hiddens, num_layers=1):
    module = MODULES[kind](input_size, num_hiddens, num_layers=num_layers)
    return sum(p.numel() for p in module.parameters())


def _refuse_modules(*args, **kwargs):
    raise CheckFailed(
        "recurrent_num_params builds a PyTorch module to count its parameters: write the count "
        "as a formula of the sizes."
    )


def check_recurrent_num_params(
    recurrent_num_params,
    cases=(
        ("rnn", 3, 5, 1),
        ("lstm", 3, 5, 1),
        ("gru", 3, 5, 1),
        ("gru", 10, 4, 2),
        ("lstm", 2, 7, 3),
        ("rnn", 6, 3, 2),
    ),
):
    """recurrent_num_params(kind, D, H, num_layers) must count nn.RNN / nn.LSTM / nn.GRU, as a
    formula of the sizes: building the module to count it is refused (the lesson says so)."""
    for kind, D, H, L in cases:
        with mock.patch.object(nn.RNNBase, "__init__", _refuse_modules):
            got = call_student(recurrent_num_params, kind, D, H, L)
        if not isinstance(got, int) or isinstance(got, bool):
            raise CheckFailed(
                f"recurrent_num_params should return an int; got {type(got).__name__}."
            )
        want = _module_count(kind, D, H, L)
        if got == want:
            continue
        other = [k for k in MODULES if k != kind and _module_count(k, D, H, L) == got]
        blocks = {"rnn": 1, "gru": 3, "lstm": 4}[kind]  # gate blocks, as in the lessons' tables
        if other:
            hint = (
                f"that is the count of nn.{other[0].upper()}. Each layer holds one block of "
                "weights per gate: 1 for the RNN, 3 for the GRU (r, z, n), 4 for the LSTM "
                "(i, f, g, o)."
            )
        elif want - got == L * blocks * H:
            hint = "one bias short per layer: PyTorch keeps two, bias_ih and bias_hh."
        elif L > 1 and got == L * _module_count(kind, D, H):
            hint = (
                "layers after the first read the previous layer's h_t: their input size is H, "
                "not D."
            )
        elif L > 1 and got == _module_count(kind, D, H):
            hint = "that is one layer: count all num_layers layers."
        else:
            hint = "list each layer's four tensors and their shapes, as named_parameters() shows."
        raise CheckFailed(
            f"recurrent_num_params({kind!r}, {D}, {H}, num_layers={L}) = {got}; expected {want}: "
            f"{hint}"
        )
    print(f"recurrent_num_params matches PyTorch's modules for {len(cases)} configurations.")


def _adding_batch(num_samples, num_steps, seed):
    from rnncourse.toy_tasks import adding_problem_batch

    X, y = adding_problem_batch(num_samples, num_steps, torch.Generator().manual_seed(seed))
    return X, y.double()


def check_adding_baseline(adding_baseline_mse, *, num_samples=200_000, seed=0):
    """adding_baseline_mse() must be the MSE of the best constant guess on the adding problem.

    Compared with a Monte Carlo estimate (its standard error is about 0.3 %; 2 % is allowed).
    """
    got = call_student(adding_baseline_mse)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, int | float) or isinstance(got, bool):
        raise CheckFailed(f"adding_baseline_mse should return a number; got {type(got).__name__}.")
    X, y = _adding_batch(num_samples, 10, seed)
    want = ((y - y.mean()) ** 2).mean().item()  # the best constant is the mean
    if math.isclose(got, want, rel_tol=0.02):
        print(f"adding_baseline_mse = {got:.4f} agrees with a simulation ({want:.4f}).")
        return
    one_value = X[..., 0].double().var().item()  # the variance of one uniform value
    if math.isclose(got, one_value, rel_tol=0.05):
        hint = (
            "that is the variance of one uniform value. The target adds two independent "
            "ones, and variances of independent terms add."
        )
    else:
        hint = (
            "the best constant guess is the mean E[y]; its mean squared error is "
            "E[(y - E[y])^2] = Var(y). What are E[y] and Var(y) for a sum of two independent "
            "uniform values on [0, 1)?"
        )
    raise CheckFailed(f"adding_baseline_mse() = {got:.4g}; a simulation gives {want:.4f}: {hint}")


@torch.no_grad()
def adding_problem_mse(model, num_steps, *, num_samples=2000, seed=1):
    """(mean squared error of ``model``, of the best constant) on a fixed adding-problem batch."""
    X, y = _adding_batch(num_samples, num_steps, seed)
    prediction = model(X)
    expect_tensor("the model's prediction", prediction, (num_samples,), "(B,)")
    mse = ((prediction.double() - y) ** 2).mean().item()
    return mse, ((y - y.mean()) ** 2).mean().item()


def check_memory_task(models, *, num_steps, max_ratio=0.25, must_learn=("lstm", "gru")):
    """The gated models beat the best constant guess on the adding problem by a clear margin.

    ``models`` maps a name ("rnn", "lstm", "gru") to a trained model, X (B, T, 2) -> y (B,).
    Each model in ``must_learn`` needs a test MSE at most ``max_ratio`` times the baseline's.
    The others (the vanilla RNN) are reported, not graded.
    """
    if not isinstance(models, dict):
        raise CheckFailed(f"models should be a dict name -> model; got {type(models).__name__}.")
    missing = [name for name in must_learn if name not in models]
    if missing:
        raise CheckFailed(
            f"no trained model for {', '.join(missing)}: run the training cell to the end."
        )
    scores = {}
    for name, model in models.items():
        try:
            scores[name] = adding_problem_mse(model, num_steps)
        except CheckFailed:
            raise
        except Exception as err:
            raise CheckFailed(
                f"running the {name} model failed with {type(err).__name__}: {err}"
            ) from err
    baseline = next(iter(scores.values()))[1]
    report = ", ".join(f"{name} {mse:.4f}" for name, (mse, _) in scores.items())
    failed = [name for name in must_learn if scores[name][0] > max_ratio * baseline]
    if not failed:
        print(
            f"Test MSE after training (T = {num_steps}): {report}; the best constant guess "
            f"scores {baseline:.4f}. The gated models reach "
            f"{max(scores[n][0] for n in must_learn) / baseline:.1%} of it or less "
            f"(the bar: {max_ratio:.0%})."
        )
        return
    worst = failed[0]
    raise CheckFailed(
        f"the {worst} model's test MSE is {scores[worst][0]:.4f}, more than {max_ratio:g} x the "
        f"best constant guess ({baseline:.4f}); all: {report}. A model near the baseline has "
        "not found the markers yet: check that the model reads the last step, that "
        "gradients reach every parameter (no .detach() or torch.no_grad() in gru_forward), "
        "and train for the full NUM_ITERS."
    )
