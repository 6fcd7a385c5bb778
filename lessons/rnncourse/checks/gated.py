"""What the LSTM (lesson 03) and GRU (lesson 04) checks share: a gated cell in PyTorch's layout.

Both cells keep their gates stacked in four tensors, ``weight_ih`` (G H, D), ``weight_hh``
(G H, H), ``bias_ih`` and ``bias_hh`` (G H,), with G = 4 gates for the LSTM and 3 for the GRU.
"""

import torch

from rnncourse.checks._core import random_gated_params

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
SATURATED = 40.0  # sigmoid(40) and tanh(40) round to exactly 1.0 in float32 and float64
GATES = {"lstm": 4, "gru": 3}
HH_SCALE = {"lstm": 0.4, "gru": 0.5}  # large enough that no gate works in its linear range


def random_cell_params(kind, input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random parameters of an ``nn.LSTMCell`` or ``nn.GRUCell`` (``kind``), PyTorch's layout."""
    return random_gated_params(
        GATES[kind],
        input_size,
        num_hiddens,
        hh_scale=HH_SCALE[kind],
        dtype=dtype,
        device=device,
        seed=seed,
    )


def zero_but(params, *alive):
    """A copy of ``params`` where every tensor except those named in ``alive`` is zero: a probe
    that leaves one term of the cell alive, so a failure names it."""
    return {k: (p.detach() if k in alive else torch.zeros_like(p)) for k, p in params.items()}
