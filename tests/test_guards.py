"""The hidden checks' guard: PyTorch's own recurrent layers refuse to run inside it."""

import pytest
import torch

from rnncourse.checks import CheckFailed
from rnncourse_grader.guards import FORBIDDEN, forbidding, run_cases

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("kind", sorted(FORBIDDEN))
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


def test_run_cases_names_the_failing_case():
    def check(fn, size):
        if size > 2:
            raise CheckFailed("too big")

    with pytest.raises(CheckFailed, match=r"\[hidden case size=3\] too big"):
        run_cases(check, None, [{"size": 1}, {"size": 3}])
