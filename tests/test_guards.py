"""The guards: PyTorch's own recurrent layers, and autograd, refuse to run inside them."""

import pytest
import torch

from rnncourse.checks import CheckFailed
from rnncourse_grader.guards import FORBIDDEN, forbidding, run_cases

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_module_cell_and_fused_op_are_refused_then_restored(kind):
    layer = MODULES[kind](3, 4, batch_first=True)
    cell = getattr(torch.nn, f"{MODULES[kind].__name__}Cell")(3, 4)
    x = torch.randn(2, 5, 3)

    for call in (lambda: layer(x), lambda: cell(x[:, 0])):
        with pytest.raises(CheckFailed, match=f"built-in {kind.upper()}"):
            forbidding(call, kind)()
    fused = "rnn_tanh_cell" if kind == "rnn" else f"{kind}_cell"
    with pytest.raises(CheckFailed):
        forbidding(lambda: getattr(torch._VF, fused)(), kind)()
    layer(x), cell(x[:, 0])  # restored afterwards


def test_every_forbidden_kind_is_tested():
    assert set(FORBIDDEN) == set(MODULES) | {"autograd"}


def test_autograd_is_refused_in_every_form_then_restored():
    w = torch.randn(3, requires_grad=True)
    calls = [
        lambda: (w * w).sum().backward(),
        lambda: torch.autograd.grad((w * w).sum(), w),
        lambda: torch.autograd.functional.jacobian(lambda v: v * v, w),
        lambda: torch.func.grad(lambda v: (v * v).sum())(w.detach()),
    ]
    for call in calls:
        with pytest.raises(CheckFailed, match="calls autograd"):
            forbidding(call, "autograd")()
    (w * w).sum().backward()  # restored afterwards
    assert torch.equal(w.grad, 2 * w.detach())


def test_run_cases_names_the_failing_case():
    def check(fn, size):
        if size > 2:
            raise CheckFailed("too big")

    with pytest.raises(CheckFailed, match=r"\[hidden case size=3\] too big"):
        run_cases(check, None, [{"size": 1}, {"size": 3}])
