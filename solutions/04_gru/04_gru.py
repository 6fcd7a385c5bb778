# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 04 — The GRU, and why gates help
#
# Lesson 02 showed why a vanilla RNN forgets: its gradient is multiplied by the same kind of
# Jacobian at every step and fades within a few dozen steps. The **gated recurrent unit**
# (GRU) fixes this with two gates and no separate memory cell: an *update gate* decides, unit by
# unit, whether to keep the old state or overwrite it, so a unit that keeps passes both its
# value and its gradient along unchanged.
#
# **Learning goals.** After this lesson you can
# - write a GRU cell and layer in PyTorch's parameter layout, reproduce `torch.nn.GRU` to ten
#   decimal places, and say how PyTorch's GRU differs from the one in Cho et al. (2014);
# - count the parameters of RNN, LSTM and GRU layers from their shapes, and measure the
#   update gate's direct gradient path, $\operatorname{diag}(z_t)$, with lesson 03's tool;
# - show on the adding problem that gated cells learn a dependency across dozens of steps where
#   a vanilla RNN does not, and measure what a Python loop costs against PyTorch's kernels.
#
# **Prerequisites.** Lesson 01 (the RNN forward pass, `nn.RNN`'s two biases), lesson 02
# (vanishing gradients, clipping). Lesson 03 (LSTM) helps but is not needed.
#
# Work top to bottom. Each exercise has an answer cell (replace `raise NotImplementedError()`),
# a cell to try it, and a locked test cell; the tests you see are a subset of those used for
# grading. Before you submit: *Kernel → Restart Kernel and Run All Cells*.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from rnncourse import get_device, rel_error, set_seed
from rnncourse.checks import (
    check_adding_baseline,
    check_gru_cell_forward,
    check_gru_convention,
    check_gru_forward,
    check_memory_task,
    check_recurrent_num_params,
)
from rnncourse.checks.lstm import decay_rate
from rnncourse.device import under_nbgrader
from rnncourse.gradient_flow import state_gradient_norms
from rnncourse.plots import (
    draw_gru_cell,
    moving_average,
    plot_curves,
    plot_heatmap,
    plot_predictions,
    plot_runs,
)
from rnncourse.toy_tasks import adding_problem_batch

DEVICE = get_device()  # prints its choice; graded code never needs a GPU
set_seed(0)

# %% [markdown]
# ## 1. One step of a GRU
#
# A GRU step reads the input $x_t$ and the previous state $h_{t-1}$ and computes two gates, a
# candidate state and the new state. In PyTorch's convention:
#
# $$\begin{aligned}
# r_t &= \sigma\left(x_t W_{ir}^\top + b_{ir} + h_{t-1} W_{hr}^\top + b_{hr}\right)
#   && \text{reset gate} \\
# z_t &= \sigma\left(x_t W_{iz}^\top + b_{iz} + h_{t-1} W_{hz}^\top + b_{hz}\right)
#   && \text{update gate} \\
# n_t &= \tanh\left(x_t W_{in}^\top + b_{in} + r_t \odot \left(h_{t-1} W_{hn}^\top + b_{hn}\right)\right)
#   && \text{candidate} \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
#   && \text{new state}
# \end{aligned}$$
#
# $\sigma$ is the logistic sigmoid, so both gates lie in $(0, 1)$, one value per hidden unit;
# $\odot$ multiplies element by element.
#
# - The **update gate** $z_t$ mixes old and new: where $z_t = 1$ the unit keeps $h_{t-1}$
#   exactly, where $z_t = 0$ it takes the candidate $n_t$.
# - The **reset gate** $r_t$ decides how much of the old state the *candidate* may see: with
#   $r_t = 0$ the candidate is computed from $x_t$ alone, as if the sequence started here.
# - The **candidate** $n_t$ is a vanilla RNN step (lesson 01) with a reset gate inside.
#
# Why this helps the gradient: $h_t$ contains the term $z_t \odot h_{t-1}$, so
# $\partial h_t / \partial h_{t-1} = \operatorname{diag}(z_t) + \dots$ (the dots are the paths
# through $n_t$ and the gates). A unit with $z_t \approx 1$ passes its gradient back almost
# unchanged, step after step, where the vanilla RNN multiplies it by
# $\operatorname{diag}(1 - h_t^2)\, W_{hh}^\top$ every time. Section 5 measures this path.

# %%
draw_gru_cell()
plt.show()

# %% [markdown]
# **Parameters, in PyTorch's layout.** `nn.GRU` stacks the three blocks of each kind of
# parameter into one tensor, in the order $r, z, n$, and stores weights as (outputs, inputs),
# so the products are $x_t W^\top$ (this lesson uses PyTorch's layout directly, not lesson
# 01's $W_{xh}$ of shape $(D, H)$). With input size $D$ and hidden size $H$:
#
# | tensor | holds | shape |
# |---|---|---|
# | `weight_ih` | $W_{ir}, W_{iz}, W_{in}$ stacked on rows | $(3H, D)$ |
# | `weight_hh` | $W_{hr}, W_{hz}, W_{hn}$ stacked on rows | $(3H, H)$ |
# | `bias_ih` | $b_{ir}, b_{iz}, b_{in}$ | $(3H,)$ |
# | `bias_hh` | $b_{hr}, b_{hz}, b_{hn}$ | $(3H,)$ |
#
# Rows $0{:}H$ belong to $r$, rows $H{:}2H$ to $z$, rows $2H{:}3H$ to $n$. Your functions take
# these four tensors in a dict with exactly these keys (the names of `nn.GRUCell`'s parameters;
# `nn.GRU` adds `_l0` for layer 0). This helper reads them out of an `nn.GRU`:

# %%
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def params_of(gru, layer=0):
    """One layer of an nn.GRU as the dict your functions take (PyTorch's tensors, detached)."""
    return {name: getattr(gru, f"{name}_l{layer}").detach() for name in PARAM_NAMES}


gru = nn.GRU(input_size=3, hidden_size=4, batch_first=True).double()
for name, p in params_of(gru).items():
    print(f"{name:10s} {tuple(p.shape)}")

# %% [markdown]
# ### Exercise 1 — `gru_cell_forward`
# Implement one step. Compute all three blocks of each product at once
# (`x_t @ params["weight_ih"].T` is $(B, 3H)$), then split with `torch.chunk`.


# %% nbgrader={"grade": false, "grade_id": "gru_cell_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gru_cell_forward(x_t, h_prev, params):
    """One step of a GRU, in PyTorch's convention.

    Args:
        x_t: input at time t, (B, D).  h_prev: hidden state at t-1, (B, H).
        params: dict with weight_ih (3H, D), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,);
            blocks of H rows in the order r, z, n.
    Returns:
        h_t: (B, H).
    Hint: r, z, n blocks: `a_r, a_z, a_n = torch.chunk(a, 3, dim=1)`; b_hn stays inside r * (...).
    """
    ### BEGIN SOLUTION
    gates_x = x_t @ params["weight_ih"].T + params["bias_ih"]  # (B, 3H)
    gates_h = h_prev @ params["weight_hh"].T + params["bias_hh"]  # (B, 3H)
    x_r, x_z, x_n = gates_x.chunk(3, dim=1)  # (B, H) each
    h_r, h_z, h_n = gates_h.chunk(3, dim=1)  # (B, H) each
    r = torch.sigmoid(x_r + h_r)  # (B, H)
    z = torch.sigmoid(x_z + h_z)  # (B, H)
    n = torch.tanh(x_n + r * h_n)  # (B, H)
    return (1 - z) * n + z * h_prev  # (B, H)
    ### END SOLUTION


# %% [markdown]
# Try it against one step of `nn.GRU` (a sequence of length 1):

# %%
x_t = torch.randn(2, 3, dtype=torch.float64)  # (B, D)
h_prev = torch.randn(2, 4, dtype=torch.float64).tanh()  # (B, H)
ours = gru_cell_forward(x_t, h_prev, params_of(gru))  # (B, H)
_, theirs = gru(x_t.unsqueeze(1), h_prev.unsqueeze(0))  # T = 1; h_n is (1, B, H)
print("relative error vs nn.GRU:", rel_error(ours, theirs[0].detach()))

# %% nbgrader={"grade": true, "grade_id": "test_gru_cell_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""gru_cell_forward matches one step of torch.nn.GRU in float64.
When graded, more cases are checked outside the notebook."""
check_gru_cell_forward(gru_cell_forward)

# %% [markdown]
# **Remember.** Two products per step, $x_t W_{ih}^\top$ and $h_{t-1} W_{hh}^\top$, each
# $(B, 3H)$, split into $r, z, n$; the reset gate multiplies $h_{t-1} W_{hn}^\top + b_{hn}$,
# and $z_t = 1$ means *keep*. If the check fails it names the part: it pins gates to exactly 0
# or 1 with huge biases ($\sigma(40) = 1$ in floating point) and compares again.
#
# ## 2. The GRU layer
#
# As in lesson 01, the layer runs the cell over $t = 1, \dots, T$ from $h_0$ (zeros when none
# is given) and returns every state, $(B, T, H)$, and the last one, $(B, H)$.
#
# ### Exercise 2 — `gru_forward`


# %% nbgrader={"grade": false, "grade_id": "gru_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gru_forward(X, h0, params):
    """A GRU layer unrolled over T steps.

    Args:
        X: inputs, (B, T, D).  h0: initial state (B, H), or None for zeros.
        params: as for gru_cell_forward.
    Returns:
        H_all: every hidden state, (B, T, H).  h_T: the last one, (B, H).
    Hint: H is params["weight_hh"].shape[1]; allocate with X.new_zeros(...).
    """
    ### BEGIN SOLUTION
    B, T, _ = X.shape
    h = h0 if h0 is not None else X.new_zeros(B, params["weight_hh"].shape[1])  # (B, H)
    states = []
    for t in range(T):
        h = gru_cell_forward(X[:, t], h, params)  # (B, H)
        states.append(h)
    return torch.stack(states, dim=1), h  # (B, T, H), (B, H)
    ### END SOLUTION


# %%
X = torch.randn(2, 6, 3, dtype=torch.float64)  # (B, T, D)
H_all, h_T = gru_forward(X, None, params_of(gru))
theirs, _ = gru(X)
print(H_all.shape, h_T.shape, "relative error vs nn.GRU:", rel_error(H_all, theirs.detach()))

# %% nbgrader={"grade": true, "grade_id": "test_gru_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""gru_forward matches torch.nn.GRU: all states, the last state, h0 given or None.
When graded, more cases are checked outside the notebook."""
check_gru_forward(gru_forward)
check_gru_forward(gru_forward, zero_h0=True)

# %% [markdown]
# **Remember.** Your `gru_forward` and `nn.GRU` now compute the same function: weights trained
# in one run in the other. Section 6 trains a model built on your layer.
#
# ## 3. Which GRU did you build? PyTorch's versus Cho et al. (2014)
#
# The GRU was introduced by Cho et al. (2014, *Learning Phrase Representations using RNN
# Encoder–Decoder for Statistical Machine Translation*). The published paper resets the state
# **before** the matrix product (written here with biases, which the paper leaves out):
#
# $$n_t^{\text{Cho}} = \tanh\left(x_t W_{in}^\top + b_{in}
#   + \left(r_t \odot h_{t-1}\right) W_{hn}^\top + b_{hn}\right),$$
#
# while PyTorch resets **after** it, bias included:
#
# $$n_t = \tanh\left(x_t W_{in}^\top + b_{in}
#   + r_t \odot \left(h_{t-1} W_{hn}^\top + b_{hn}\right)\right).$$
#
# The gates and the interpolation $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ are the same
# in both. Yet these are two different models, not two ways of writing one:
# $(r_t \odot h_{t-1}) W_{hn}^\top$ scales the *inputs* of the product unit by unit,
# $r_t \odot (h_{t-1} W_{hn}^\top)$ scales its *outputs*. In general they differ. They agree
# when $r_t \equiv 1$ (whatever $b_{hn}$), or when $r_t$ is the same for every unit and
# $b_{hn} = 0$; with $r_t = 0$, Cho's candidate still contains $b_{hn}$ and PyTorch's does not.
#
# **Why PyTorch does it this way.** In its form, $h_{t-1} W_{hh}^\top$ for all three blocks is
# one matrix product that does not wait for $r_t$: one large product per step, then
# element-wise work. In Cho's form the $W_{hn}$ product needs $r_t$ first, so each step makes
# two dependent products. NVIDIA's cuDNN defines its GRU with the reset gate applied *after*
# the product with $W_{hn}$ (PyTorch's form, often called "reset after"), and PyTorch follows
# it so that the same weights give the same results on CPU and GPU.
#
# You will meet both. Keras' `GRU(reset_after=True)` (the default in TensorFlow 2, and required
# for its cuDNN kernel) is PyTorch's form, `reset_after=False` Cho's; the ONNX `GRU` operator
# computes PyTorch's form with `linear_before_reset=1` and Cho's with the default, 0. Many
# textbooks print Cho's. Weights trained in one convention give different outputs in the other.
#
# A harmless difference, by contrast: some papers (e.g. Chung et al., 2014) write
# $h_t = (1 - z_t) \odot h_{t-1} + z_t \odot n_t$. That only renames $z_t$ as $1 - z_t$:
# negate the update gate's weights and biases, since $\sigma(-a) = 1 - \sigma(a)$, and you
# have the same model.
#
# ### Exercise 3 — `gru_convention`
# Write a test that tells, for any function with `gru_cell_forward`'s signature, which GRU it
# computes: `"pytorch"`, `"cho"`, or `"neither"` (a buggy cell). Run the cell on inputs and
# parameters of your choice and compare its output with what each convention predicts. Choose
# them so that the two conventions give different results (re-read the paragraph above).


# %% nbgrader={"grade": false, "grade_id": "gru_convention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gru_convention(cell):
    """Which GRU does `cell` compute: PyTorch's, Cho et al.'s, or neither?

    Args:
        cell: a function cell(x_t, h_prev, params) -> h_t with gru_cell_forward's signature.
    Returns:
        "pytorch", "cho" or "neither".
    Hint: random float64 inputs and parameters; compare h_t with torch.allclose(..., atol=1e-10).
    """
    ### BEGIN SOLUTION
    g = torch.Generator().manual_seed(0)
    B, D, H = 3, 4, 5
    x_t = torch.randn(B, D, generator=g, dtype=torch.float64)
    h_prev = torch.randn(B, H, generator=g, dtype=torch.float64).tanh()
    shapes = {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,)}
    shapes["bias_hh"] = (3 * H,)
    params = {k: torch.randn(*s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    W_ir, W_iz, W_in = params["weight_ih"].chunk(3)  # (H, D) each
    W_hr, W_hz, W_hn = params["weight_hh"].chunk(3)  # (H, H) each
    b_ir, b_iz, b_in = params["bias_ih"].chunk(3)  # (H,) each
    b_hr, b_hz, b_hn = params["bias_hh"].chunk(3)  # (H,) each
    r = torch.sigmoid(x_t @ W_ir.T + b_ir + h_prev @ W_hr.T + b_hr)  # (B, H)
    z = torch.sigmoid(x_t @ W_iz.T + b_iz + h_prev @ W_hz.T + b_hz)  # (B, H)
    candidates = {
        "pytorch": torch.tanh(x_t @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn)),
        "cho": torch.tanh(x_t @ W_in.T + b_in + (r * h_prev) @ W_hn.T + b_hn),
    }
    h_t = cell(x_t, h_prev, params)  # (B, H)
    for name, n in candidates.items():
        if torch.allclose(h_t, (1 - z) * n + z * h_prev, rtol=1e-8, atol=1e-10):
            return name
    return "neither"
    ### END SOLUTION


# %%
print("your gru_cell_forward is:", gru_convention(gru_cell_forward))

# %% nbgrader={"grade": true, "grade_id": "test_gru_convention_identifies_cells", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""gru_convention tells nn.GRU, Cho et al.'s GRU and a buggy GRU apart.
When graded, more cases are checked outside the notebook."""
check_gru_convention(gru_convention)

# %% [markdown]
# **Remember.** When you port GRU weights between libraries, or compare a from-scratch GRU with
# a framework's, check the convention first: it is the most common reason why "the same" GRU
# gives different numbers.
#
# ## 4. Counting parameters: RNN, LSTM, GRU
#
# All three PyTorch modules store each layer the same way: `weight_ih`, `weight_hh`,
# `bias_ih`, `bias_hh`, with one block of $H$ rows per gate or candidate. Layers are stacked
# with `num_layers`: layer 0 reads the input $x_t$, every later layer reads the $h_t$ of the
# layer below. Look at the shapes:

# %%
for module in (
    nn.RNN(3, 4, num_layers=2),
    nn.GRU(3, 4, num_layers=2),
    nn.LSTM(3, 4, num_layers=2),
):
    print(type(module).__name__)
    for name, p in module.named_parameters():
        print(f"    {name:14s} {tuple(p.shape)}")

# %% [markdown]
# ### Exercise 4 — `recurrent_num_params`
# Write the number of parameters of `nn.RNN`, `nn.LSTM` or `nn.GRU` (`kind` is `"rnn"`,
# `"lstm"` or `"gru"`) with input size $D$, hidden size $H$ and `num_layers` layers, as a
# formula (do not build the module).


# %% nbgrader={"grade": false, "grade_id": "recurrent_num_params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def recurrent_num_params(kind, input_size, num_hiddens, num_layers=1):
    """Number of parameters of nn.RNN / nn.LSTM / nn.GRU(input_size, num_hiddens, num_layers).

    Returns:
        int.
    Hint: how many blocks of H rows per layer for each kind, and what does layer 1 read?
    """
    ### BEGIN SOLUTION
    blocks = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    D, H = input_size, num_hiddens
    first = blocks * H * (D + H + 2)  # weight_ih (gH, D), weight_hh (gH, H), two biases (gH,)
    later = blocks * H * (H + H + 2)  # layers >= 1 read the previous layer's h_t: D -> H
    return first + (num_layers - 1) * later
    ### END SOLUTION


# %%
D = H = 128
for kind in ("rnn", "gru", "lstm"):
    n = recurrent_num_params(kind, D, H)
    print(
        f"{kind:5s} D = H = {H}: {n:7,d} parameters ({n / recurrent_num_params('rnn', D, H):.0f}x RNN)"
    )

# %% nbgrader={"grade": true, "grade_id": "test_recurrent_num_params_matches_torch", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""recurrent_num_params agrees with nn.RNN, nn.LSTM and nn.GRU, one layer and several.
When graded, more cases are checked outside the notebook."""
check_recurrent_num_params(recurrent_num_params)

# %% [markdown]
# **Remember.** At the same $H$ a GRU costs three vanilla RNNs and three quarters of an LSTM,
# in parameters and in work per step.
#
# ## 5. How far back does the gradient reach? The update gate's direct path
#
# Lesson 03 measured how strongly each earlier state still influences a loss at the end,
# $\lVert \partial \mathcal{L} / \partial h_t \rVert$ for $\mathcal{L} = \sum h_T$, with your
# `state_gradient_norms`. It is given from here on (`rnncourse.gradient_flow`) and works for
# any recurrence written as `step(x_t, state) -> state`. Differentiate the GRU's new state
# $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ with respect to the old one (product rule;
# $z_t$ and $n_t$ both depend on $h_{t-1}$):
#
# $$\frac{\partial h_t}{\partial h_{t-1}} =
#   \underbrace{\operatorname{diag}(z_t)}_{\text{direct path}}
#   + \underbrace{\operatorname{diag}(1 - z_t)\, \frac{\partial n_t}{\partial h_{t-1}}
#   + \operatorname{diag}(h_{t-1} - n_t)\, \frac{\partial z_t}{\partial h_{t-1}}}_{\text{through }
#   W_{hn},\ W_{hr}\ \text{and}\ W_{hz}}$$
#
# The first term is the GRU's counterpart of the LSTM's $\operatorname{diag}(f_t)$: no weight
# matrix and no $\tanh'$, only the update gate. Along this path alone, the gradient that
# travels from step $T$ back to step $t$ is multiplied unit by unit by
# $\prod_{s=t+1}^{T} z_s$. The GRU needs no separate cell state for this: $h_t$ itself is
# carried over where $z_t \approx 1$.
#
# **Measuring the direct path by itself.** Autograd differentiates whatever the code computes,
# so write a step whose *value* is the GRU's $h_t$ but whose only route back to $h_{t-1}$ is
# $z_t \odot h_{t-1}$ with $z_t$ held fixed: compute the step from a detached copy
# $\bar h_{t-1}$ (no gradient flows through it) and add $z_t \odot (h_{t-1} - \bar h_{t-1})$,
# which is zero in value and has the gradient $\operatorname{diag}(z_t)$. The cell below does
# this with your `gru_cell_forward`, then compares, on the same input as lesson 03 ($B = 8$,
# $T = 50$, $H = 32$, PyTorch's initialisation): a vanilla RNN, your GRU, its direct path alone,
# and your GRU with the update gate's bias raised by 1 (as lesson 03 raised the forget gate's).


# %%
def update_gate(x_t, h_prev, params):
    """z_t (B, H): the update gate alone, rows H:2H of PyTorch's r, z, n blocks."""
    H = h_prev.shape[1]
    rows = slice(H, 2 * H)
    return torch.sigmoid(
        x_t @ params["weight_ih"][rows].T
        + params["bias_ih"][rows]
        + h_prev @ params["weight_hh"][rows].T
        + params["bias_hh"][rows]
    )


def gru_step(params, direct_path_only=False):
    """Your GRU cell as a `step` for state_gradient_norms, state (h,). With direct_path_only,
    the gradient reaches h_{t-1} only through z_t * h_{t-1}, z_t held fixed."""

    def step(x_t, state):
        h_prev = state[0]  # (B, H)
        if not direct_path_only:
            return (gru_cell_forward(x_t, h_prev, params),)
        fixed = h_prev.detach()
        h_t = gru_cell_forward(x_t, fixed, params)  # the value; no gradient to h_{t-1}
        return (h_t + update_gate(x_t, fixed, params) * (h_prev - fixed),)  # adds 0

    return step


def gradient_norms_at_init(seed, batch_size=8, num_steps=50, num_hiddens=32):
    """||dL/dh_t|| (T,) for each recurrence, PyTorch's initialisation, one random input."""
    set_seed(seed)
    B, T, H = batch_size, num_steps, num_hiddens
    X = torch.randn(B, T, H, dtype=torch.float64)  # (B, T, D), D = H
    zeros = torch.zeros(B, H, dtype=torch.float64)  # (B, H)
    rnn_cell = nn.RNNCell(H, H).double()
    params = params_of(nn.GRU(H, H, batch_first=True).double())
    raised = dict(params, bias_ih=params["bias_ih"].clone())
    raised["bias_ih"][H : 2 * H] += 1.0  # b_iz + 1: every z_t starts closer to 1
    steps = {
        "vanilla RNN": lambda x_t, s: (rnn_cell(x_t, s[0]),),
        "your GRU": gru_step(params),
        "your GRU, direct path only": gru_step(params, direct_path_only=True),
        "your GRU, update bias + 1": gru_step(raised),
    }
    norms = {name: state_gradient_norms(step, X, (zeros,)) for name, step in steps.items()}
    return norms, direct_path_product(X, params)


def direct_path_product(X, params):
    """||prod_{s=t+1..T} z_s|| for t = 1..T along a run of your GRU on X (B, T, D): what the
    direct path alone predicts for ||dL/dh_t||."""
    h = X.new_zeros(X.shape[0], params["weight_hh"].shape[1])  # (B, H)
    gates = []
    for t in range(X.shape[1]):
        gates.append(update_gate(X[:, t], h, params))  # z_t, (B, H)
        h = gru_cell_forward(X[:, t], h, params)
    product, norms = torch.ones_like(h), []
    for z in reversed(gates):  # t = T, T-1, ..., 1
        norms.append(product.norm())
        product = product * z
    return torch.stack(norms[::-1])  # (T,)


# %%
flows = [gradient_norms_at_init(seed) for seed in range(3)]
norms, predicted = flows[0]
error = rel_error(norms["your GRU, direct path only"], predicted)
print(
    f"direct path measured by autograd vs the product of update gates: relative error {error:.1e}"
)
for name in norms:
    rates = ", ".join(f"{decay_rate(n[name]):.2f}" for n, _ in flows)
    print(f"{name:27s} loses {rates} decades per step back (seeds 0, 1, 2)")
plot_curves(
    {name: n.tolist() for name, n in norms.items()},
    title="How much of the gradient of L = sum(h_T) reaches h_t (seed 0)",
    xlabel="time step t (0 = first step; the loss is at the last one)",
    ylabel="||dL/dh_t||",
    logy=True,
)
plt.show()

# %% [markdown]
# **Reading the plot.** The direct path alone agrees with the product of the update gates to
# rounding error: it *is* $\prod_s z_s$. At PyTorch's initialisation $z_t \approx \sigma(0) =
# \tfrac12$ on average, and in our runs (three seeds, the numbers above) the direct path alone
# loses about a quarter of a decade per step and your whole GRU 0.20 to 0.22: most of the
# GRU's gradient travels along that one path, and the paths through the weights add a little.
# The vanilla RNN loses about a third of a decade per step. Raising the update gate's bias by 1
# moves every $z_t$ towards $\sigma(1) \approx 0.73$ and halves the GRU's rate, to about a
# tenth of a decade per step, close to what lesson 03 measured for the LSTM with its forget
# bias at 1. Nothing here is trained: this is what the architecture and the initialisation
# give before the first update. The next section trains the GRU as PyTorch initialises it.
#
# **Remember.** The GRU's direct path is the term $\operatorname{diag}(z_t)$ of
# $\partial h_t / \partial h_{t-1}$: the update gate plays the forget gate's part, on $h_t$
# itself.
#
# ## 6. A long-range memory task: the adding problem
#
# The adding problem is a classic test of memory, introduced by Hochreiter & Schmidhuber
# (1997); we use the simpler variant of Le, Jaitly & Hinton (2015). Each step
# carries two numbers: a value drawn uniformly from $[0, 1)$ and a marker, 0 or 1. Exactly two
# steps are marked, one in the first half of the sequence and one in the second; the target,
# given after the last step, is the **sum of the two marked values**. To solve it, a model must
# store the first marked value when it sees it and carry it, untouched by the following
# distractors, to the end: for at least $T/2$ steps.

# %%
X_demo, y_demo = adding_problem_batch(1, 30, generator=torch.Generator().manual_seed(2))
values, markers = X_demo[0, :, 0], X_demo[0, :, 1]  # (T,) each
fig, ax = plt.subplots(figsize=(9, 2.6))
ax.bar(range(30), values, color=["#c0392b" if m else "#9bbcd8" for m in markers])
ax.set(
    xlabel="time step t",
    ylabel="value",
    title=f"One sequence (T = 30): target y = {y_demo.item():.3f}",
)
ax.text(0.99, 0.9, "red: marked steps", transform=ax.transAxes, ha="right", color="#c0392b")
plt.show()

# %% [markdown]
# ### Exercise 5 — what does guessing score?
# Before training anything, know the score to beat. A model that ignores its input can only
# predict a constant $c$; the best constant for the mean squared error
# $\mathbb{E}[(y - c)^2]$ is $c = \mathbb{E}[y]$, and it scores $\operatorname{Var}(y)$.
# Compute that number for the adding problem by hand (it does not depend on $T$).


# %% nbgrader={"grade": false, "grade_id": "adding_baseline_mse", "locked": false, "schema_version": 3, "solution": true, "task": false}
def adding_baseline_mse():
    """Mean squared error of the best constant prediction on the adding problem.

    Returns:
        a float.
    Hint: y is the sum of two independent values, uniform on [0, 1).
    """
    ### BEGIN SOLUTION
    return 2 * (1 / 12)  # Var(y) = Var(u1) + Var(u2), and Var(U[0, 1)) = 1/12
    ### END SOLUTION


# %%
print(f"the best constant guess scores {adding_baseline_mse():.4f}")

# %% nbgrader={"grade": true, "grade_id": "test_adding_baseline_mse_matches_simulation", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""adding_baseline_mse agrees with a simulation of the best constant guess."""
check_adding_baseline(adding_baseline_mse)

# %% [markdown]
# ### Three models, one budget
#
# Each model is a recurrent layer that reads the whole sequence, followed by a linear read-out
# of its **last** state. The three get the same hidden size, the same batches, the same
# optimizer and the same number of updates; only the recurrent layer differs:
#
# - `nn.RNN`, the vanilla RNN of lesson 01;
# - `nn.LSTM` (lesson 03);
# - **your** `gru_forward`, wrapped as a layer whose parameters start from `nn.GRU`'s own
#   initial values.
#
# Why your GRU and PyTorch's RNN and LSTM? Your GRU is checked equal to `nn.GRU` to $10^{-10}$,
# so it is the same model: training it is the proof that autograd runs through your code. The
# price is speed, which section 7 measures.
#
# One training run is an anecdote: whether a model leaves the plateau early or late depends on
# its random initialisation and batches. So each kind trains from **three seeds** (the same
# batches for all three kinds in a seed), and the plot shows every run and their median, as
# lesson 03 did. Your GRU trains in seed 0, the model that is graded; seeds 1 and 2 use
# `nn.GRU`, which starts from the same initial values and computes the same function in C++,
# so that the whole study takes about a minute on two CPU cores.


# %%
class GRULayer(nn.Module):
    """Your gru_forward as a layer, with nn.GRU's parameter names, shapes and initial values."""

    def __init__(self, input_size, num_hiddens):
        super().__init__()
        template = nn.GRU(input_size, num_hiddens, batch_first=True)  # only for its init
        self.params = nn.ParameterDict(
            {
                name: nn.Parameter(getattr(template, f"{name}_l0").detach().clone())
                for name in PARAM_NAMES
            }
        )

    def forward(self, X):
        """X (B, T, D) -> (H_all (B, T, H), h_T (1, B, H)), laid out like nn.GRU's result."""
        H_all, h_T = gru_forward(X, None, dict(self.params))
        return H_all, h_T.unsqueeze(0)


class MemoryRegressor(nn.Module):
    """A recurrent layer reads the sequence; a linear read-out of its last state predicts y.
    kind "gru" is your layer, "nn.gru" PyTorch's (same initial values, same function)."""

    def __init__(self, kind, num_hiddens, input_size=2):
        super().__init__()
        layers = {
            "rnn": lambda: nn.RNN(input_size, num_hiddens, batch_first=True),
            "lstm": lambda: nn.LSTM(input_size, num_hiddens, batch_first=True),
            "gru": lambda: GRULayer(input_size, num_hiddens),  # your code
            "nn.gru": lambda: nn.GRU(input_size, num_hiddens, batch_first=True),
        }
        self.rnn = layers[kind]()
        self.readout = nn.Linear(num_hiddens, 1)

    def forward(self, X):
        """X (B, T, 2) -> predictions (B,)."""
        H_all, _ = self.rnn(X)  # (B, T, H); for nn.LSTM the second output is (h_n, c_n)
        return self.readout(H_all[:, -1]).squeeze(-1)  # (B,)


def train_regressor(model, num_iters, num_steps, batch_size=64, lr=0.02, seed=0):
    """Adam on the mean squared error, a fresh batch at every step (the same ones per seed)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(num_iters):
        X, y = adding_problem_batch(batch_size, num_steps, generator=generator)  # (B, T, 2), (B,)
        loss = ((model(X) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # lesson 02
        optimizer.step()
        losses.append(loss.item())
    return losses


# %% [markdown]
# The training runs on the CPU (these models are small), the same when graded: $T = 50$ steps,
# 800 updates per run. Your GRU's run is the slowest (section 7 measures why).

# %%
NUM_STEPS, NUM_ITERS, NUM_HIDDENS = 50, 800, 32
SEEDS = range(3)
KINDS = ("rnn", "lstm", "gru")

models, runs = {}, {kind: [] for kind in KINDS}
for seed in SEEDS:
    for kind in ("gru", "lstm", "rnn"):  # yours first: if it fails, you know at once
        set_seed(seed)
        model = MemoryRegressor(kind if kind != "gru" or seed == 0 else "nn.gru", NUM_HIDDENS)
        start = time.perf_counter()
        runs[kind].append(train_regressor(model, NUM_ITERS, NUM_STEPS, seed=seed))
        if seed == 0:
            models[kind] = model  # graded: your GRU, and the RNN and LSTM of the same seed
        print(
            f"seed {seed} {kind:4s}: last 50 losses average {sum(runs[kind][-1][-50:]) / 50:.4f}, "
            f"{time.perf_counter() - start:.0f} s"
        )

# %%
X_test, y_test = adding_problem_batch(500, NUM_STEPS, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    predictions = {kind.upper(): models[kind](X_test) for kind in KINDS}
fig, (ax_loss, ax_pred) = plt.subplots(1, 2, figsize=(12, 4), width_ratios=(3, 2))
plot_runs(
    {kind.upper(): [moving_average(r, 50) for r in runs[kind]] for kind in KINDS},
    ax=ax_loss,
    title=f"Adding problem, T = {NUM_STEPS}, {len(SEEDS)} seeds (thick: median)",
    xlabel="update",
    ylabel="MSE (moving average of 50)",
    logy=True,
    reference={"best constant guess": adding_baseline_mse()},
)
plot_predictions(y_test, predictions, ax=ax_pred, title="Seed 0 on new sequences", label="sum")
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_memory_task_gated_models_beat_baseline", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""The LSTM and your GRU beat the best constant guess on new sequences by a clear margin."""
check_memory_task(models, num_steps=NUM_STEPS)

# %% [markdown]
# **Reading the curves.** All three first drop to the baseline: predicting about $1$ for every
# sequence is the first thing any of them learns. The gated models sit on that plateau for a
# while, then the loss falls by two to three orders of magnitude within a short stretch: they
# have found the markers and learned to hold the first value. How long the plateau lasts is
# where the seeds disagree, which is why there are three: in our runs (two CPU cores) the GRU
# left it after 100 to 200 updates in every seed, the LSTM after about 250 to 600 depending on
# the seed, and the vanilla RNN not within 800 updates in any seed. The gradient that would
# teach the RNN to store the first value has to travel back dozens of steps, and vanishes on
# the way (lesson 02). On the right, seed 0's gated models predict on the diagonal, the RNN a
# horizontal line near the mean. The median, not one lucky or unlucky run, carries the verdict:
# on this task and budget, GRU ahead of LSTM, both far ahead of the RNN.
#
# **How does your GRU hold the value?** Below are its hidden states while reading one sequence
# (dotted lines: the marked steps). Look for units that change at the first marker and then
# stay flat through the distractors: units whose update gate is close to 1.

# %%
X_one, _ = adding_problem_batch(1, NUM_STEPS, generator=torch.Generator().manual_seed(3))
with torch.no_grad():
    H_one, _ = gru_forward(X_one, None, dict(models["gru"].rnn.params))  # (1, T, H)
ax = plot_heatmap(
    H_one[0].T,
    title="Your trained GRU's hidden state h_t on one sequence",
    xlabel="time step t",
    ylabel="hidden unit",
    colorbar_label="activation",
)
for t in X_one[0, :, 1].nonzero().flatten().tolist():
    ax.axvline(t, color="black", linestyle=":", linewidth=1.5)
plt.show()

# %% [markdown]
# ## 7. What the Python loop costs
#
# Your layer computes the same numbers as `nn.GRU`. How long does it take? The next cell times
# both on the same inputs, forward only and forward plus backward, on `DEVICE`, for two sizes:
# *small steps* (little arithmetic per time step) and *large steps*.


# %%
def time_ms(fn, repeats):
    """Median wall-clock time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def compare_speed(batch_size, num_steps, input_size, num_hiddens, repeats):
    """Times (ms) of your gru_forward and nn.GRU: {(who, "forward" / "+ backward"): ms}."""
    torch_gru = nn.GRU(input_size, num_hiddens, batch_first=True).to(DEVICE)
    live = {name: getattr(torch_gru, f"{name}_l0") for name in PARAM_NAMES}  # not detached
    X = torch.randn(batch_size, num_steps, input_size, device=DEVICE)  # (B, T, D)
    runs = {"your loop": lambda: gru_forward(X, None, live)[0], "nn.GRU": lambda: torch_gru(X)[0]}
    times = {}
    for who, run in runs.items():
        with torch.no_grad():
            times[who, "forward"] = time_ms(run, repeats)
        times[who, "+ backward"] = time_ms(lambda run=run: run().sum().backward(), repeats)
    return times


repeats = 3 if under_nbgrader() else 15
sizes = {"small steps, B = 8, H = 16": (8, 16), "large steps, B = 64, H = 128": (64, 128)}
print(f"T = 100, D = 32, float32, on {DEVICE}")
for label, (B, H) in sizes.items():
    times = compare_speed(B, 100, 32, H, repeats)
    print(label)
    for who in ("your loop", "nn.GRU"):
        fwd, both = times[who, "forward"], times[who, "+ backward"]
        print(f"    {who:10s} forward {fwd:8.2f} ms   forward + backward {both:8.2f} ms")
    fwd, both = (times["your loop", m] / times["nn.GRU", m] for m in ("forward", "+ backward"))
    print(f"    {'ratio':10s} forward {fwd:8.1f}x    forward + backward {both:8.1f}x")

# %% [markdown]
# **Where the time goes.** Per step your loop launches about a dozen separate operations (two
# products, additions, sigmoids, a tanh, products, the interpolation), each reading and writing
# whole tensors, plus Python's own overhead; autograd records every one of them and replays
# them backwards. `nn.GRU` instead
#
# - computes the input products of **all** $T$ steps at once, one $(BT, D) \times (D, 3H)$
#   product, before the loop: only $h_{t-1} W_{hh}^\top$ has to wait for the previous step;
# - runs the loop over time in C++, with no Python between steps;
# - on an NVIDIA GPU hands the whole layer, forward and backward, to **cuDNN**, which does the
#   element-wise work of each step in a single fused kernel.
#
# What the built-in layer saves is a fixed cost per operation, so the ratio depends on how
# much arithmetic each step does: expect the largest gap for small steps, and a small one for
# large steps, where the matrix products dominate and cost the same in both. On a CPU the
# backward passes are often closer than the forward ones. The numbers printed above are this
# notebook's own, on its own device and load: read them, not ours. On a GPU every small operation is a kernel
# launch of several microseconds, so a loop like yours is limited by launches rather than
# arithmetic even for large steps, and the gap widens: run this cell on a GPU to measure it.
# One cost remains in every implementation: step $t$ needs $h_{t-1}$, so the $T$ steps run one
# after another. This is why RNNs train slower than their parameter count suggests, and what
# attention-based models remove.
#
# ## Exercises to go further (not graded)
# 1. Write Cho et al.'s cell (your `gru_convention` already computes its candidate), wrap it
#    like `GRULayer` and train it on the adding problem next to yours. Does the convention
#    change what the model can learn?
# 2. Speed up `gru_forward`: compute `X @ params["weight_ih"].T + params["bias_ih"]` for all
#    time steps before the loop and pass each step its slice. Time it again. What fraction of
#    the gap to `nn.GRU` is left?
# 3. With `recurrent_num_params`, find the hidden size that gives the vanilla RNN as many
#    parameters as the GRU with $H = 32$, and train that RNN. Is the RNN's failure a matter of
#    size?
# 4. Raise `NUM_STEPS` to 200. Which model needs more updates, and which fails first? Try the
#    LSTM with its forget-gate bias set to 1 (lesson 03), and your GRU with its update gate's
#    bias raised by 1 (section 5): does the slower decay at initialisation shorten the plateau?
#
# ## Summary
# - A GRU step: gates $r_t, z_t = \sigma(\cdot)$, candidate
#   $n_t = \tanh(x_t W_{in}^\top + b_{in} + r_t \odot (h_{t-1} W_{hn}^\top + b_{hn}))$, new state
#   $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$; $z_t = 1$ copies the state and its gradient.
# - PyTorch's (and cuDNN's) GRU resets after the product with $W_{hn}$, Cho et al.'s before it;
#   they are different models, and weights do not carry over between them.
# - $\partial h_t / \partial h_{t-1}$ contains $\operatorname{diag}(z_t)$, a path with no
#   weight matrix: at initialisation most of the GRU's gradient travels along it, and raising
#   the update gate's bias slows its decay as the forget bias does for the LSTM.
# - Per layer, RNN, GRU and LSTM hold 1, 3 and 4 blocks of weights and biases; layers after
#   the first read $H$ inputs instead of $D$.
# - On the adding problem the gated models learn what the vanilla RNN cannot with the same
#   budget; the best constant guess, $\operatorname{Var}(y)$, is the bar to clear.
# - A Python loop over time computes the same function as `nn.GRU`, slower; fused kernels and
#   cuDNN remove most of the overhead but not the sequential dependence.
#
# Next: **lesson 05** trains a bidirectional LSTM/GRU classifier on real text (IMDB) on a GPU.
