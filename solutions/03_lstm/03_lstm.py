# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 03 — The LSTM: a memory that gradients can travel through
#
# Lesson 02 showed why a vanilla RNN forgets: the gradient that reaches step $t$ from step $T$
# is a product of $T - t$ Jacobians $\operatorname{diag}(1 - h^2)\,W_{hh}^\top$, and it shrinks
# geometrically. The **long short-term memory** (LSTM; Hochreiter & Schmidhuber 1997, with the
# forget gate of Gers et al. 2000) adds a second state, the *cell state* $c_t$, that is only
# ever scaled and added to, and learned **gates** that decide what to forget, what to write
# and what to show.
#
# **Learning goals.** After this lesson you can
# - write an LSTM cell and layer in PyTorch's parameter layout and reproduce `torch.nn.LSTM`
#   to ten decimal places, stacked and bidirectional included;
# - measure how the gradient flows back through time in an LSTM and in a vanilla RNN, and
#   explain the difference with the cell state's direct path $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$;
# - initialise the forget gate so that an LSTM learns a memory task quickly, and read what
#   its gates do in a trained model.
#
# **Prerequisites.** Lessons 01 (RNN forward pass, batch-first shapes, `nn.RNN`'s layout) and
# 02 (backpropagation through time, vanishing gradients); `torch.autograd.grad`.
#
# Work top to bottom. Each exercise has an answer cell (replace `raise NotImplementedError()`),
# a cell to try it, and a locked test cell; the tests you see are a subset of those used for
# grading. Before you submit: *Kernel → Restart Kernel and Run All Cells*.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse import get_device, rel_error, set_seed
from rnncourse.checks import (
    check_init_forget_bias,
    check_lstm_bidirectional_forward,
    check_lstm_cell_forward,
    check_lstm_forward,
    check_lstm_gates,
    check_lstm_gradient_decays_slower,
    check_lstm_stacked_forward,
    check_recall_model,
    check_state_gradient_norms,
)
from rnncourse.checks.lstm import decay_rate
from rnncourse.device import under_nbgrader
from rnncourse.plots import draw_lstm_cell, plot_curves, plot_gate_activations, plot_runs
from rnncourse.toy_tasks import recall_batch

DEVICE = get_device()  # prints its choice; graded code never needs a GPU
set_seed(0)

# %% [markdown]
# ## 1. One LSTM step
#
# At step $t$ the cell reads the input $x_t$ and the previous state, which now has two parts:
# the hidden state $h_{t-1}$ (what the cell shows the world) and the cell state $c_{t-1}$
# (what it remembers). One affine map of $x_t$ and $h_{t-1}$ gives $4H$ *pre-activations*,
# in PyTorch's layout:
#
# $$z_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh} \in \mathbb{R}^{B \times 4H},
#   \qquad z_t = \bigl[\, z^i_t \;\big|\; z^f_t \;\big|\; z^g_t \;\big|\; z^o_t \,\bigr],$$
#
# four consecutive blocks of $H$ columns, always in the order **i, f, g, o**. Each block
# becomes one gate:
#
# $$i_t = \sigma(z^i_t), \qquad f_t = \sigma(z^f_t), \qquad g_t = \tanh(z^g_t),
#   \qquad o_t = \sigma(z^o_t),$$
#
# and the state is updated with elementwise products $\odot$:
#
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).$$
#
# - the **forget gate** $f_t \in (0, 1)$ keeps a fraction of each memory cell;
# - the **input gate** $i_t \in (0, 1)$ decides how much of the **candidate** $g_t \in (-1, 1)$
#   is written;
# - the **output gate** $o_t \in (0, 1)$ decides how much of the (squashed) memory is shown
#   as $h_t$.
#
# | symbol | code | shape |
# |---|---|---|
# | $x_t$ | `x_t` | $(B, D)$ |
# | $h_{t-1}$, $c_{t-1}$; $h_t$, $c_t$ | `h_prev`, `c_prev`; `h_t`, `c_t` | $(B, H)$ |
# | $W_{ih}$ | `params["weight_ih"]` | $(4H, D)$ |
# | $W_{hh}$ | `params["weight_hh"]` | $(4H, H)$ |
# | $b_{ih}$, $b_{hh}$ | `params["bias_ih"]`, `params["bias_hh"]` | $(4H,)$ each |
# | $i_t$, $f_t$, $g_t$, $o_t$ | `i`, `f`, `g`, `o` | $(B, H)$ |
#
# The parameters come as a dict with the names of `torch.nn.LSTMCell`'s parameters, so a
# PyTorch cell's weights drop straight in. Row block $k$ of every tensor belongs to gate $k$ of
# (i, f, g, o). As in lesson 01 the two biases are redundant mathematically; PyTorch keeps both.

# %%
cell = nn.LSTMCell(input_size=3, hidden_size=4)
for name, p in cell.named_parameters():
    print(f"{name:10s} {tuple(p.shape)}")
draw_lstm_cell()
plt.show()

# %% [markdown]
# ### Exercise 1 — `lstm_gates`
# Compute the four gates. Two matrix products, two biases, one split, four nonlinearities.


# %% nbgrader={"grade": false, "grade_id": "lstm_gates", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_gates(x_t, h_prev, params):
    """The gates of one LSTM step, in PyTorch's layout.

    Args:
        x_t: input at time t, (B, D).  h_prev: hidden state at t-1, (B, H).
        params: dict with weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
    Returns:
        (i, f, g, o), each (B, H): gates i, f, o in (0, 1), candidate g in (-1, 1).
    Hint: compute the (B, 4H) pre-activations once, then `torch.chunk(z, 4, dim=1)`.
    """
    ### BEGIN SOLUTION
    z = (
        x_t @ params["weight_ih"].T
        + params["bias_ih"]
        + h_prev @ params["weight_hh"].T
        + params["bias_hh"]
    )  # (B, 4H)
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # each (B, H)
    return torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g), torch.sigmoid(z_o)
    ### END SOLUTION


# %% [markdown]
# Try it with the cell's parameters: three gates must lie in $(0, 1)$, the candidate in $(-1, 1)$.

# %%
params = {name: p.detach() for name, p in cell.named_parameters()}
x_t, h_prev = torch.randn(2, 3), torch.randn(2, 4)  # (B, D), (B, H)
for name, value in zip("ifgo", lstm_gates(x_t, h_prev, params), strict=True):
    print(f"{name}: shape {tuple(value.shape)}, range [{value.min():.3f}, {value.max():.3f}]")

# %% nbgrader={"grade": true, "grade_id": "test_lstm_gates_match_torch", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""lstm_gates returns the gates of torch.nn.LSTM, in the order i, f, g, o.
When graded, more cases are checked outside the notebook."""
check_lstm_gates(lstm_gates)

# %% [markdown]
# PyTorch never shows you the gates; the check reads them back out of `nn.LSTMCell` (it sets
# the cell state to 0 and then 1, and saturates one gate at a time). Read
# `rnncourse/checks/lstm.py` if you are curious how.
#
# ### Exercise 2 — `lstm_cell_forward`
# One full step: gates, then the new cell state, then the new hidden state.


# %% nbgrader={"grade": false, "grade_id": "lstm_cell_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_cell_forward(x_t, state, params):
    """One step of an LSTM.

    Args:
        x_t: input at time t, (B, D).  state: (h_prev, c_prev), each (B, H).
        params: dict with weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
    Returns:
        (h_t, c_t), each (B, H).
    Hint: call your lstm_gates; `*` multiplies elementwise.
    """
    ### BEGIN SOLUTION
    h_prev, c_prev = state
    i, f, g, o = lstm_gates(x_t, h_prev, params)  # each (B, H)
    c_t = f * c_prev + i * g  # (B, H)
    h_t = o * torch.tanh(c_t)  # (B, H)
    return h_t, c_t
    ### END SOLUTION


# %% [markdown]
# Compare with `nn.LSTMCell` in float64: the relative error should be around $10^{-16}$.

# %%
cell64 = cell.double()
params = {name: p.detach() for name, p in cell64.named_parameters()}
x_t, h_prev, c_prev = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
h_t, c_t = lstm_cell_forward(x_t, (h_prev, c_prev), params)
with torch.no_grad():
    h_ref, c_ref = cell64(x_t, (h_prev, c_prev))
print("relative error of h_t:", rel_error(h_t, h_ref), " of c_t:", rel_error(c_t, c_ref))

# %% nbgrader={"grade": true, "grade_id": "test_lstm_cell_forward_matches_torch", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""lstm_cell_forward matches one step of torch.nn.LSTM: h_t and c_t.
When graded, more cases are checked outside the notebook."""
check_lstm_cell_forward(lstm_cell_forward)

# %% [markdown]
# **Remember.** Three sigmoid gates and one tanh candidate from a single $(B, 4H)$ product; the
# memory $c_t$ is *scaled* by $f_t$ and *added to*; only $h_t$ goes through a second $\tanh$.
#
# ## 2. The LSTM layer
#
# Unrolling is the same as in lesson 01, except that the state is a pair: from $(h_0, c_0)$
# (zeros when none is given) the layer applies the cell $T$ times to $X$ of shape $(B, T, D)$
# and returns all hidden states $H_{\text{all}}$, $(B, T, H)$, and the final state
# $(h_T, c_T)$. Only the $h_t$ are outputs; the $c_t$ stay inside.
#
# `torch.nn.LSTM` names its parameters per layer: `weight_ih_l0`, `weight_hh_l0`,
# `bias_ih_l0`, `bias_hh_l0` for layer 0. `layer_params` below picks one layer (and
# direction, see section 3) out of such a dict and renames it the way your functions expect.

# %%
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def layer_params(named, layer=0, reverse=False):
    """One layer and direction out of nn.LSTM's named parameters, named as lstm_gates expects."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {name: named[name + suffix] for name in PARAM_NAMES}


# %% [markdown]
# ### Exercise 3 — `lstm_forward`
# Loop over time and carry **both** $h$ and $c$. Allocate on the input's device and dtype.


# %% nbgrader={"grade": false, "grade_id": "lstm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_forward(X, state0, params):
    """An LSTM layer unrolled over T steps.

    Args:
        X: inputs, (B, T, D).  state0: (h0, c0), each (B, H), or None for zeros.
        params: dict with weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
    Returns:
        H_all: every hidden state, (B, T, H).  (h_T, c_T): the final state, each (B, H).
    Hint: H = params["weight_hh"].shape[1]; `X.new_zeros(B, H)` has X's dtype and device.
    """
    ### BEGIN SOLUTION
    B, T, _ = X.shape
    if state0 is None:
        zeros = X.new_zeros(B, params["weight_hh"].shape[1])  # (B, H)
        state0 = (zeros, zeros)
    h, c = state0
    states = []
    for t in range(T):
        h, c = lstm_cell_forward(X[:, t], (h, c), params)  # (B, H) each
        states.append(h)
    return torch.stack(states, dim=1), (h, c)  # (B, T, H), ((B, H), (B, H))
    ### END SOLUTION


# %%
lstm = nn.LSTM(input_size=3, hidden_size=4, batch_first=True).double()
named = {name: p.detach() for name, p in lstm.named_parameters()}
X = torch.randn(2, 6, 3, dtype=torch.float64)  # (B, T, D)
H_all, (h_T, c_T) = lstm_forward(X, None, layer_params(named))
with torch.no_grad():
    H_ref, (h_n, c_n) = lstm(X)  # h_n, c_n: (num_layers, B, H)
print("relative error of H_all:", rel_error(H_all, H_ref), " of c_T:", rel_error(c_T, c_n[0]))

# %% nbgrader={"grade": true, "grade_id": "test_lstm_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""lstm_forward matches torch.nn.LSTM: all hidden states and the final (h, c), state0 given or None.
When graded, more cases are checked outside the notebook."""
check_lstm_forward(lstm_forward)
check_lstm_forward(lstm_forward, zero_state=True)

# %% [markdown]
# **Remember.** `nn.LSTM` returns `(outputs, (h_n, c_n))`, and `h_n`, `c_n` have a leading
# axis of size `num_layers * num_directions` even for one layer: `h_n[0]` is your `h_T`.
#
# ## 3. Reading both ways, and stacking layers
#
# **Bidirectional.** To label a word you may need the words after it. A bidirectional layer
# runs two independent LSTMs: a forward one over $x_1, \dots, x_T$ and a backward one over
# $x_T, \dots, x_1$, with its own parameters (suffix `_reverse` in `nn.LSTM`):
#
# $$\overrightarrow{h}_t = \text{LSTM}_{\rightarrow}\bigl(x_t, \overrightarrow{h}_{t-1}\bigr),
#   \qquad
#   \overleftarrow{h}_t = \text{LSTM}_{\leftarrow}\bigl(x_t, \overleftarrow{h}_{t+1}\bigr),
#   \qquad
#   \text{output}_t = \bigl[\, \overrightarrow{h}_t \;\big|\; \overleftarrow{h}_t \,\bigr] \in \mathbb{R}^{B \times 2H}.$$
#
# The output at $t$ pairs both directions' states *for the same* $x_t$. The final states are
# stacked, forward first: $h_n = [\overrightarrow{h}_T;\ \overleftarrow{h}_1]$ of shape
# $(2, B, H)$, because the backward direction finishes at $t = 1$.
#
# **Stacked.** With `num_layers=2` the outputs of layer 0, $(B, T, H \cdot \text{dirs})$, are
# the inputs of layer 1 (so `weight_ih_l1` is $(4H, 2H)$ when bidirectional). The rows of
# $h_0$, $c_0$, $h_n$, $c_n$ are ordered layer by layer: row `layer * dirs + direction`.
# `nn.LSTM(dropout=p)` would drop units between layers while training; the course compares
# with `dropout=0`, where the layer is deterministic.

# %%
deep = nn.LSTM(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True)
for name, p in deep.named_parameters():
    print(f"{name:24s} {tuple(p.shape)}")

# %% [markdown]
# ### Exercise 4 — `lstm_bidirectional_forward`
# Use your `lstm_forward` twice. `X.flip(1)` reverses the time axis.


# %% nbgrader={"grade": false, "grade_id": "lstm_bidirectional_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_bidirectional_forward(X, state0, params_fwd, params_bwd):
    """One bidirectional LSTM layer, like nn.LSTM(bidirectional=True).

    Args:
        X: inputs, (B, T, D).  state0: (h0, c0), each (2, B, H) (row 0 forward, row 1
            backward), or None for zeros.  params_fwd, params_bwd: the two directions'
            parameters, each a dict as lstm_gates takes.
    Returns:
        outputs (B, T, 2H): [forward h_t, backward h_t] at every t.
        (h_n, c_n): each (2, B, H), the forward and then the backward final state.
    Hint: run the backward direction on X.flip(1), then flip its outputs back.
    """
    ### BEGIN SOLUTION
    fwd_state = bwd_state = None
    if state0 is not None:
        h0, c0 = state0
        fwd_state, bwd_state = (h0[0], c0[0]), (h0[1], c0[1])
    out_fwd, (h_fwd, c_fwd) = lstm_forward(X, fwd_state, params_fwd)  # (B, T, H)
    out_bwd, (h_bwd, c_bwd) = lstm_forward(X.flip(1), bwd_state, params_bwd)  # reversed time
    outputs = torch.cat([out_fwd, out_bwd.flip(1)], dim=-1)  # (B, T, 2H)
    return outputs, (torch.stack([h_fwd, h_bwd]), torch.stack([c_fwd, c_bwd]))  # (2, B, H)
    ### END SOLUTION


# %% [markdown]
# Compare with a one-layer bidirectional `nn.LSTM`; the backward direction's final state must
# be its output at the *first* step.

# %%
bi = nn.LSTM(input_size=3, hidden_size=4, bidirectional=True, batch_first=True).double()
named = {name: p.detach() for name, p in bi.named_parameters()}
X = torch.randn(2, 5, 3, dtype=torch.float64)  # (B, T, D)
outputs, (h_n, c_n) = lstm_bidirectional_forward(
    X, None, layer_params(named), layer_params(named, reverse=True)
)
with torch.no_grad():
    out_ref, _ = bi(X)
print(tuple(outputs.shape), tuple(h_n.shape), "relative error:", rel_error(outputs, out_ref))
print("backward h_n is the output at t = 1:", torch.equal(h_n[1], outputs[:, 0, 4:]))

# %% nbgrader={"grade": true, "grade_id": "test_lstm_bidirectional_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""lstm_bidirectional_forward matches torch.nn.LSTM(bidirectional=True).
When graded, more cases are checked outside the notebook."""
check_lstm_bidirectional_forward(lstm_bidirectional_forward)
check_lstm_bidirectional_forward(lstm_bidirectional_forward, zero_state=True)

# %% [markdown]
# ### Exercise 5 — `lstm_stacked_forward`
# Any number of layers, one or two directions, with `nn.LSTM`'s parameter names
# (`layer_params(params, layer, reverse)` picks one layer and direction).


# %% nbgrader={"grade": false, "grade_id": "lstm_stacked_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lstm_stacked_forward(X, state0, params, num_layers, bidirectional=False):
    """A stack of LSTM layers, like nn.LSTM(num_layers, bidirectional, batch_first=True).

    Args:
        X: inputs, (B, T, D).  state0: (h0, c0), each (num_layers * dirs, B, H), or None.
        params: nn.LSTM's parameters by name (weight_ih_l0, ..., bias_hh_l1_reverse).
        num_layers: int.  bidirectional: bool (dirs = 2 if True else 1).
    Returns:
        outputs of the last layer, (B, T, dirs * H); (h_n, c_n), each (num_layers * dirs, B, H).
    Hint: layer k reads layer k - 1's outputs and starts from rows k * dirs ... (k + 1) * dirs - 1.
    """
    ### BEGIN SOLUTION
    dirs = 2 if bidirectional else 1
    layer_input, h_n, c_n = X, [], []
    for layer in range(num_layers):
        rows = slice(layer * dirs, (layer + 1) * dirs)
        start = None if state0 is None else (state0[0][rows], state0[1][rows])  # (dirs, B, H)
        if bidirectional:
            layer_input, (h, c) = lstm_bidirectional_forward(
                layer_input, start, layer_params(params, layer), layer_params(params, layer, True)
            )  # (B, T, 2H), (2, B, H)
        else:
            start = None if start is None else (start[0][0], start[1][0])  # (B, H)
            layer_input, (h, c) = lstm_forward(layer_input, start, layer_params(params, layer))
            h, c = h.unsqueeze(0), c.unsqueeze(0)  # (1, B, H)
        h_n.append(h)
        c_n.append(c)
    return layer_input, (torch.cat(h_n), torch.cat(c_n))  # (B, T, dirs H), (L dirs, B, H)
    ### END SOLUTION


# %%
deep = deep.double()
named = {name: p.detach() for name, p in deep.named_parameters()}
X = torch.randn(2, 5, 3, dtype=torch.float64)  # (B, T, D)
outputs, (h_n, c_n) = lstm_stacked_forward(X, None, named, num_layers=2, bidirectional=True)
with torch.no_grad():
    out_ref, (h_ref, c_ref) = deep(X)
print(tuple(outputs.shape), tuple(h_n.shape), "relative errors:")
print(rel_error(outputs, out_ref), rel_error(h_n, h_ref), rel_error(c_n, c_ref))

# %% nbgrader={"grade": true, "grade_id": "test_lstm_stacked_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""lstm_stacked_forward matches torch.nn.LSTM(num_layers=2), one and two directions.
When graded, more cases are checked outside the notebook."""
check_lstm_stacked_forward(lstm_stacked_forward, num_layers=2, bidirectional=True)
check_lstm_stacked_forward(lstm_stacked_forward, num_layers=2, bidirectional=False)

# %% [markdown]
# **Remember.** Directions are independent LSTMs that meet only in the output's last axis;
# layers meet through their outputs. Your code now computes everything `nn.LSTM` does, only
# slower (lesson 04 measures how much, and why).
#
# ## 4. The forget gate's bias
#
# PyTorch initialises every weight and bias uniformly in $(-1/\sqrt{H}, 1/\sqrt{H})$, so at
# the start of training $z^f_t \approx 0$ and $f_t \approx \sigma(0) = \tfrac12$: each step
# **halves** the memory, and after 10 steps $2^{-10} \approx 0.001$ of it is left. The model
# must first learn to keep things before it can learn what to keep. The classic remedy
# (Gers et al. 2000; Jozefowicz et al. 2015) is to start the forget gate's bias at 1, so
# that $f_t \approx \sigma(1) \approx 0.73$: the log of the memory falls by $0.31$ per step
# instead of $\ln 2 \approx 0.69$, about 2.2 times more slowly (after 10 steps
# $0.73^{10} \approx 0.04$ of it is left instead of $0.001$).
#
# PyTorch adds two biases, so the forget gate's total bias is
# `bias_ih[H:2H] + bias_hh[H:2H]` (block 1 of i, f, g, o). Setting it to 1 means setting
# one block to 1 and the other to 0, in every layer and direction.
#
# ### Exercise 6 — `init_forget_bias`
# Change the module's parameters in place. They require gradients, so write inside
# `with torch.no_grad():`.


# %% nbgrader={"grade": false, "grade_id": "init_forget_bias", "locked": false, "schema_version": 3, "solution": true, "task": false}
def init_forget_bias(lstm, value=1.0):
    """Set the forget-gate bias of every layer and direction of an nn.LSTM to `value`.

    Args:
        lstm: a torch.nn.LSTM.  value: the total forget-gate bias, bias_ih + bias_hh.
    Returns:
        lstm, changed in place (weights and the other gates' biases untouched).
    Hint: `lstm.named_parameters()` lists bias_ih_l0, bias_hh_l0, bias_ih_l0_reverse, ...
    """
    ### BEGIN SOLUTION
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[H : 2 * H] = value
            elif name.startswith("bias_hh"):
                p[H : 2 * H] = 0.0
    return lstm
    ### END SOLUTION


# %%
demo = init_forget_bias(nn.LSTM(3, 4, num_layers=2, batch_first=True))
print("forget-gate bias of layer 1:", (demo.bias_ih_l1 + demo.bias_hh_l1)[4:8].tolist())

# %% nbgrader={"grade": true, "grade_id": "test_init_forget_bias_sets_every_layer", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""init_forget_bias sets b_ih + b_hh = value on the forget gate of every layer and direction.
When graded, more cases are checked outside the notebook."""
check_init_forget_bias(init_forget_bias)

# %% [markdown]
# **Remember.** A gate's bias in PyTorch is the sum of two parameters, and initialisation is
# part of the design: a forget gate that starts half closed throws memories away before the
# model has learned which ones matter.

# %% [markdown]
# ## 5. How far back does the gradient reach?
#
# Take a loss that depends only on the last hidden state, $\mathcal{L} = \sum h_T$ (the sum
# of all its entries, over the batch), and ask how strongly each earlier state $h_t$ still
# influences it: $\lVert \partial \mathcal{L} / \partial h_t \rVert$ for $t = 1, \dots, T$.
# Going back one step multiplies the gradient by a Jacobian:
#
# - vanilla RNN: $\dfrac{\partial \mathcal{L}}{\partial h_{t-1}} = \dfrac{\partial \mathcal{L}}{\partial h_t}\,
#   \operatorname{diag}\bigl(1 - h_t^2\bigr)\, W_{hh}^\top$ — a matrix and a squashing
#   factor at every step, so the norm shrinks geometrically (lesson 02);
# - LSTM: the cell state has a **direct path**, $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$
#   (holding the gates fixed), with no weight matrix and no $\tanh'$: where $f_t \approx 1$,
#   gradient passes along it almost untouched. It is not the only path: the gates depend on
#   $h_{t-1}$, so gradient also flows through $W_{hh}$ as in the vanilla RNN, and what we
#   measure below, $\lVert \partial \mathcal{L} / \partial h_t \rVert$, enters and leaves the cell
#   state once through $h_t = o_t \odot \tanh(c_t)$ (a factor $o_t \tanh'(c_t)$ at each end).
#   The direct path is what keeps the total from shrinking geometrically.
#
# Lesson 02 multiplied the vanilla RNN's Jacobians by hand. Here autograd does the work, for
# any recurrence: describe it by a `step(x_t, state) -> state` function whose state is a tuple
# with $h_t$ first, `(h,)` for the RNN and `(h, c)` for the LSTM.
#
# ### Exercise 7 — `state_gradient_norms`
# Run the recurrence, keep every $h_t$, and let autograd differentiate $\mathcal{L}$ with
# respect to all of them at once: `torch.autograd.grad(loss, [h_1, ..., h_T])` returns one
# gradient per state.


# %% nbgrader={"grade": false, "grade_id": "state_gradient_norms", "locked": false, "schema_version": 3, "solution": true, "task": false}
def state_gradient_norms(step, X, state0):
    """||dL/dh_t|| for t = 1..T, where L = h_T.sum(), for the recurrence `step`.

    Args:
        step: function (x_t (B, D), state) -> next state, a tuple whose first entry is h_t (B, H).
        X: inputs, (B, T, D).  state0: the initial state, a tuple like step's result.
    Returns:
        norms: (T,), norms[t - 1] = the norm of dL/dh_t over the whole batch. X is left as
        it was (it does not start requiring gradients).
    Hint: `X = X.detach().requires_grad_()` puts every h_t on autograd's graph.
    """
    ### BEGIN SOLUTION
    X = X.detach().requires_grad_()
    state, hs = state0, []
    for t in range(X.shape[1]):
        state = step(X[:, t], state)
        hs.append(state[0])  # (B, H)
    grads = torch.autograd.grad(hs[-1].sum(), hs)  # T tensors, each (B, H)
    return torch.stack([g.norm() for g in grads])  # (T,)
    ### END SOLUTION


# %% [markdown]
# Try it where the answer is known: for the linear recurrence $h_t = \tfrac12 h_{t-1} + x_t$,
# $\partial \mathcal{L} / \partial h_t$ is a matrix of ones halved once per step back, so
# its norm is $\sqrt{B H}\, 2^{-(T - t)}$.


# %%
def halving(x_t, state):
    """The recurrence h_t = h_{t-1} / 2 + x_t, with its state as a tuple (h,)."""
    return (0.5 * state[0] + x_t,)


norms = state_gradient_norms(halving, torch.randn(2, 6, 3), (torch.zeros(2, 3),))
print(norms)  # sqrt(6) = 2.449 at t = T, then halves at every step back

# %% nbgrader={"grade": true, "grade_id": "test_state_gradient_norms_matches_closed_form", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""state_gradient_norms returns ||dL/dh_t|| for t = 1..T (checked on recurrences with known gradients).
When graded, more cases are checked outside the notebook."""
check_state_gradient_norms(state_gradient_norms)
check_state_gradient_norms(state_gradient_norms, two_states=False)

# %% [markdown]
# Now the comparison, on the same input: a vanilla RNN (`nn.RNNCell`, the cell of lessons 01
# and 02), an LSTM as PyTorch initialises it, and the same LSTM with its forget-gate bias at 1.
# All three have $H = 32$ units and PyTorch's default initialisation; `decay_rate` fits a line
# to $\log_{10} \lVert \partial \mathcal{L} / \partial h_t \rVert$ and reports how many
# decades the gradient loses per step back in time.

# %%
set_seed(0)
BATCH_SIZE, NUM_STEPS, NUM_HIDDENS = 8, 50, 32
X = torch.randn(BATCH_SIZE, NUM_STEPS, NUM_HIDDENS, dtype=torch.float64)  # (B, T, D), D = H
zeros = torch.zeros(BATCH_SIZE, NUM_HIDDENS, dtype=torch.float64)  # (B, H)
rnn_cell = nn.RNNCell(NUM_HIDDENS, NUM_HIDDENS).double()
lstm = nn.LSTM(NUM_HIDDENS, NUM_HIDDENS, batch_first=True).double()
default_params = layer_params({name: p.detach().clone() for name, p in lstm.named_parameters()})
init_forget_bias(lstm, 1.0)
biased_params = layer_params({name: p.detach() for name, p in lstm.named_parameters()})

gradient_norms = {
    "vanilla RNN": state_gradient_norms(lambda x_t, s: (rnn_cell(x_t, s[0]),), X, (zeros,)),
    "LSTM, PyTorch's init": state_gradient_norms(
        lambda x_t, s: lstm_cell_forward(x_t, s, default_params), X, (zeros, zeros)
    ),
    "LSTM, forget bias 1": state_gradient_norms(
        lambda x_t, s: lstm_cell_forward(x_t, s, biased_params), X, (zeros, zeros)
    ),
}
for name, norms in gradient_norms.items():
    print(f"{name:22s} loses {decay_rate(norms):.3f} decades per step back in time")
ax = plot_curves(
    {name: norms.tolist() for name, norms in gradient_norms.items()},
    title="How much of the gradient of L = sum(h_T) reaches h_t",
    xlabel="time step t (0 = first step; the loss is at the last one)",
    ylabel="||dL/dh_t||",
    logy=True,
)
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_lstm_gradient_decays_slower", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""With the forget-gate bias at 1, the LSTM's gradient decays more slowly than the vanilla RNN's."""
check_lstm_gradient_decays_slower(state_gradient_norms, lstm_cell_forward)
### BEGIN HIDDEN TESTS
check_lstm_gradient_decays_slower(state_gradient_norms, lstm_cell_forward, seed=3, num_hiddens=48)
### END HIDDEN TESTS

# %% [markdown]
# **Reading the plot.** All three lines fall to the left (going back in time), at a constant
# rate on a log scale: gradients decay *geometrically*. The vanilla RNN loses about a third of
# a decade per step, so 20 steps back a millionth or less of the gradient is left. The LSTM as
# initialised by PyTorch does somewhat better; with the forget bias at 1 it loses only about
# a tenth of a decade per step — over three times slower than the RNN, which over 50 steps is the
# difference between about $10^{-5}$ and $10^{-16}$ of the gradient. Nothing was trained yet: this is what
# the architecture and the initialisation give for free, and it is what lets training find
# long-range dependencies at all.
#
# **Remember.** The cell state's direct path, $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$, is
# what the forget gate controls; learning can then push $f_t$ towards 1 where a memory must last.
#
# ## 6. A memory task: recall the first symbol
#
# Each sequence starts with one of four symbols (A, B, C, D), followed by distractors; after
# the last step the model must say which symbol came first. The loss only arrives at the
# end, so learning depends entirely on the gradient reaching step 1. The model is an
# `nn.LSTM` (the same computation as your layer, in C++ on a CPU and in cuDNN's fused kernels
# on a GPU, so faster to train) and a linear
# read-out of the last hidden state. We train it from several random seeds, with PyTorch's
# initialisation and with your `init_forget_bias`, on exactly the same batches.

# %%
NUM_SYMBOLS, NUM_DISTRACTORS, MEMORY_STEPS, MEMORY_HIDDENS = 4, 4, 12, 32
VOCAB_SIZE = NUM_SYMBOLS + NUM_DISTRACTORS
SEEDS = range(2) if under_nbgrader() else range(4)  # smaller run when graded
NUM_ITERS = 150 if under_nbgrader() else 400


class RecallLSTM(nn.Module):
    """One-hot symbols -> nn.LSTM -> a linear read-out of the last hidden state."""

    def __init__(self, vocab_size, num_hiddens, num_classes):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, num_hiddens, batch_first=True)
        self.readout = nn.Linear(num_hiddens, num_classes)

    def forward(self, X):
        """X: symbol ids (B, T) -> logits over the first symbol (B, num_classes)."""
        inputs = F.one_hot(X, self.vocab_size).float()  # (B, T, V)
        H_all, _ = self.lstm(inputs)  # (B, T, H)
        return self.readout(H_all[:, -1])  # (B, K)


def train_recall(forget_bias, seed, num_iters, batch_size=64, lr=0.01):
    """Train a RecallLSTM (forget_bias None: PyTorch's init); return it and its losses."""
    set_seed(seed)
    model = RecallLSTM(VOCAB_SIZE, MEMORY_HIDDENS, NUM_SYMBOLS)
    if forget_bias is not None:
        init_forget_bias(model.lstm, forget_bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(seed)  # same batches for both initialisations
    losses = []
    for _ in range(num_iters):
        X, y = recall_batch(batch_size, MEMORY_STEPS, NUM_SYMBOLS, NUM_DISTRACTORS, batches)
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


runs = {"PyTorch's init": [], "forget bias 1": []}
for seed in SEEDS:
    runs["PyTorch's init"].append(train_recall(None, seed, NUM_ITERS)[1])
    model, losses = train_recall(1.0, seed, NUM_ITERS)
    runs["forget bias 1"].append(losses)
    if seed == 0:
        recall_model = model  # kept for section 7
plot_runs(
    runs,
    title=f"Recall the first of {MEMORY_STEPS} symbols (thin: one seed, thick: median)",
    xlabel="iteration",
    reference={"chance: log 4": math.log(NUM_SYMBOLS)},
)
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_recall_model_remembers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""The LSTM trained with forget bias 1 recalls the first symbol (accuracy >= 95 %)."""
check_recall_model(recall_model, MEMORY_STEPS)

# %% [markdown]
# **Reading the curves.** Both start at chance, $\log 4 \approx 1.39$. With the forget bias at
# 1, every seed finds the memory within about a hundred iterations and the loss drops to
# almost zero. With PyTorch's initialisation the runs leave chance later and then stall on
# plateaus (near $\log 2 \approx 0.69$ a model tells two pairs of symbols apart, but not the
# symbols within a pair); after 400 iterations most have not solved the task. Along the cell
# state, the 11 steps from
# the first symbol to the end scale the gradient by $\prod f_t$: about $0.5^{11} \approx
# 5 \cdot 10^{-4}$ at PyTorch's initialisation, $0.73^{11} \approx 0.03$ with the forget
# bias at 1, sixty times more signal against the noise of the distractors. Same
# architecture, same data, only one bias changed.
#
# ## 7. What the gates do in the trained model
#
# Run the trained model's weights through **your** `lstm_gates` and `lstm_cell_forward` on
# one sequence and record every gate at every step. Each panel is one quantity: rows are the
# 32 units (sorted by how much they store at the end, $|c_T|$, largest on top), columns the
# time steps, labelled with the symbol read (A to D: the symbol to remember; w to z:
# distractors).

# %%
SYMBOL_NAMES = list("ABCD") + list("wxyz")[:NUM_DISTRACTORS]
X, y = recall_batch(1, MEMORY_STEPS, NUM_SYMBOLS, NUM_DISTRACTORS, torch.Generator().manual_seed(3))
params = layer_params({name: p.detach() for name, p in recall_model.lstm.named_parameters()})
inputs = F.one_hot(X, VOCAB_SIZE).float()  # (1, T, V)
h = c = torch.zeros(1, MEMORY_HIDDENS)  # (1, H)
record = {"input gate i_t": [], "forget gate f_t": [], "candidate g_t": [], "output gate o_t": []}
record["cell state c_t"] = []
with torch.no_grad():
    for t in range(MEMORY_STEPS):
        i, f, g, o = lstm_gates(inputs[:, t], h, params)  # each (1, H)
        h, c = lstm_cell_forward(inputs[:, t], (h, c), params)
        for name, value in zip(record, (i, f, g, o, c), strict=True):
            record[name].append(value[0])
activity = {name: torch.stack(values) for name, values in record.items()}  # each (T, H)
order = activity["cell state c_t"][-1].abs().argsort(descending=True)  # units by |c_T|
activity = {name: a[:, order] for name, a in activity.items()}
limit = activity["cell state c_t"].abs().max().item()
plot_gate_activations(
    activity,
    xticklabels=[SYMBOL_NAMES[s] for s in X[0]],
    ranges={"candidate g_t": (-1, 1), "cell state c_t": (-limit, limit)},
    title=f"Gates of the trained LSTM, first symbol {SYMBOL_NAMES[y[0]]}",
)
plt.show()

# %% [markdown]
# **What to look for.** In the first few steps the gates are undecided (middle colours).
# Then the forget gate of almost every unit goes to 1 and stays there, so nothing is erased;
# the input gate stays open on most units; and the candidate $g_t$ settles at $\pm 1$, in a
# sign pattern that the first symbol chose and that the loop $h_t \to g_{t+1}$ keeps alive.
# The cell state therefore *integrates*: $c_t$ drifts steadily, in a direction that encodes
# the symbol, and the read-out only needs the signs of $h_T$. The distractors hardly matter:
# after the first steps all columns look alike. This is one solution among many that gradient
# descent could have found (another seed may write once and then close the input gate); set
# `X[0, 0]` to another symbol and rerun the cell to see which units flip sign.
#
# ## Exercises to go further (not graded)
# 1. Set `MEMORY_STEPS = 30`. Does forget bias 1 still suffice? Try 2 and 3. What does
#    $\sigma(b)^{29}$ say about how much gradient reaches the first symbol?
# 2. Train `RecallLSTM` with your own `lstm_forward` in place of `nn.LSTM` (load the
#    parameters with `layer_params`). The curves should be identical up to float rounding;
#    time both.
# 3. Count the parameters of `nn.LSTM(D, H)` and compare with `nn.RNN(D, H)`: why exactly four
#    times as many? Lesson 04 builds the GRU, which needs three.
# 4. Plot the mean forget gate of the trained model over time for sequences of different
#    lengths. Does it stay the same after the first step?
#
# ## Summary
# - An LSTM step computes $4H$ pre-activations
#   $x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}$, splits them into the gates
#   i, f, g, o (in this order in PyTorch), and updates
#   $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$.
# - A layer carries the pair $(h, c)$; bidirectional layers run a second LSTM on the reversed
#   sequence and concatenate per time step; stacked layers feed outputs upwards. Your code
#   reproduces `nn.LSTM` in float64 to about $10^{-16}$.
# - The cell state's direct path is scaled only by $f_t$: with the forget bias at 1, the
#   gradient decays about three times more slowly than a vanilla RNN's, and a memory task
#   that PyTorch's initialisation barely learns is solved within about a hundred iterations.
#
# Next: **lesson 04** builds the GRU, compares RNN, LSTM and GRU on a long-memory task, and
# times your loops against PyTorch's built-in layers.
