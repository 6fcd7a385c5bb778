# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 01 — The vanilla RNN, from the equations
#
# A feed-forward network sees a fixed-size input. Text, speech, prices and sensor streams are
# *sequences* of any length, where what comes next depends on what came before. A recurrent
# neural network (RNN) reads a sequence one step at a time and carries a **hidden state**, a
# vector that summarises everything it has seen so far.
#
# **Learning goals.** After this lesson you can
# - write the forward pass of a vanilla RNN cell and unroll it over a sequence, with every
#   tensor shape in your head;
# - read PyTorch's `torch.nn.RNN` parameters and reproduce its outputs exactly;
# - train a small RNN with autograd on a sequence task, using a loss that ignores padding.
#
# **Prerequisites.** Matrix products and broadcasting in PyTorch, softmax and cross-entropy,
# and what an optimizer step does.
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
    check_next_symbol_model,
    check_rnn_cell_forward,
    check_rnn_forward,
    check_rnn_num_params,
    check_rnn_params_from_torch,
    check_sequence_loss,
    check_train_step,
)
from rnncourse.plots import draw_unrolled_rnn, plot_curves, plot_heatmap
from rnncourse.toy_tasks import encode_pattern, periodic_batch

DEVICE = get_device()  # prints its choice; graded code never needs a GPU
set_seed(0)

# %% [markdown]
# ## 1. One step of a recurrent cell
#
# At time step $t$ the cell combines the current input $x_t$ with the previous hidden state
# $h_{t-1}$:
#
# $$h_t = \tanh\left(x_t W_{xh} + h_{t-1} W_{hh} + b_h\right), \qquad
#   y_t = h_t W_{hy} + b_y .$$
#
# We work on a **batch** of $B$ sequences at once, so $x_t$ is a matrix with one row per
# sequence. With input size $D$, hidden size $H$ and output size $O$:
#
# | symbol | code | shape |
# |---|---|---|
# | $x_t$ | `x_t` | $(B, D)$ |
# | $h_{t-1}$, $h_t$ | `h_prev`, `h_t` | $(B, H)$ |
# | $W_{xh}$ | `W_xh` | $(D, H)$ |
# | $W_{hh}$ | `W_hh` | $(H, H)$ |
# | $b_h$ | `b_h` | $(H,)$, broadcast over the batch |
# | $W_{hy}$, $b_y$ | `W_hy`, `b_y` | $(H, O)$, $(O,)$ |
#
# Check the shapes: $(B, D)(D, H) + (B, H)(H, H) + (H,) \to (B, H)$. The $\tanh$ keeps every
# entry of $h_t$ in $(-1, 1)$, so the state cannot blow up however long the sequence is
# (lesson 02 shows what this costs the gradients).
#
# The same weights are used at **every** time step. Unrolled over time, the RNN is a deep
# network whose layers share their parameters:

# %%
draw_unrolled_rnn(num_steps=4)
plt.show()

# %% [markdown]
# ### Exercise 1 — `rnn_cell_forward`
# Implement one step of the cell. One line of PyTorch is enough.


# %% nbgrader={"grade": false, "grade_id": "rnn_cell_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):
    """One step of a vanilla RNN.

    Args:
        x_t: input at time t, (B, D).  h_prev: hidden state at t-1, (B, H).
        W_xh: (D, H).  W_hh: (H, H).  b_h: (H,).
    Returns:
        h_t: (B, H).
    Hint: `@` multiplies matrices; `torch.tanh` is the nonlinearity.
    """
    ### BEGIN SOLUTION
    return torch.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)  # (B, H)
    ### END SOLUTION


# %% [markdown]
# Try it on a small batch; the state should have one row per sequence and stay in $(-1, 1)$.

# %%
B, D, H = 2, 3, 4
x_t, h_prev = torch.randn(B, D), torch.zeros(B, H)
W_xh, W_hh, b_h = torch.randn(D, H), torch.randn(H, H), torch.zeros(H)
h_t = rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h)
print(h_t.shape, h_t.min().item(), h_t.max().item())

# %% nbgrader={"grade": true, "grade_id": "test_rnn_cell_forward_matches_torch", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""rnn_cell_forward matches one step of torch.nn.RNN.
When graded, more cases are checked outside the notebook."""
check_rnn_cell_forward(rnn_cell_forward)

# %% [markdown]
# **Remember.** One step is one affine map of $[x_t, h_{t-1}]$ followed by $\tanh$. If a check
# fails, it tells you which term is wrong: it zeroes all weights but one and compares again.
#
# ## 2. Unrolling over a sequence
#
# A batch of sequences is a tensor $X$ of shape $(B, T, D)$: batch first, then time, then
# features (the course uses this layout everywhere, like `batch_first=True` in PyTorch).
# Starting from $h_0$ (zeros when none is given), the layer applies the cell $T$ times:
#
# $$h_t = \tanh\left(X_{:,t} W_{xh} + h_{t-1} W_{hh} + b_h\right), \qquad t = 1, \dots, T,$$
#
# and returns **all** hidden states $H_{\text{all}}$, shape $(B, T, H)$, for models that
# predict at every step, plus the **last** one, $h_T$ of shape $(B, H)$, the simplest summary
# of a whole sequence. (Lesson 05's review classifier does better with a summary of all the
# states: the mean and the maximum over each review's real steps.)

# %% [markdown]
# ### Exercise 2 — `rnn_forward`
# Loop over time, call your cell, collect the states. Allocate new tensors on the inputs'
# device and dtype (`device=X.device, dtype=X.dtype`), so that the same code runs on a GPU.
# The test checks it without a GPU: it also runs your layer on PyTorch's `meta` device, whose
# tensors have shapes but no data, where a tensor made on the CPU is an error.


# %% nbgrader={"grade": false, "grade_id": "rnn_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_forward(X, h0, W_xh, W_hh, b_h):
    """A vanilla RNN layer unrolled over T steps.

    Args:
        X: inputs, (B, T, D).  h0: initial state (B, H), or None for zeros.
        W_xh: (D, H).  W_hh: (H, H).  b_h: (H,).
    Returns:
        H_all: every hidden state, (B, T, H).  h_T: the last one, (B, H).
    Hint: collect the h_t in a list and `torch.stack(states, dim=1)`.
    """
    ### BEGIN SOLUTION
    B, T, _ = X.shape
    h = h0 if h0 is not None else X.new_zeros(B, W_hh.shape[0])  # (B, H)
    states = []
    for t in range(T):
        h = rnn_cell_forward(X[:, t], h, W_xh, W_hh, b_h)  # (B, H)
        states.append(h)
    return torch.stack(states, dim=1), h  # (B, T, H), (B, H)
    ### END SOLUTION


# %%
X = torch.randn(2, 5, 3)  # (B, T, D)
H_all, h_T = rnn_forward(X, None, W_xh, W_hh, b_h)
print(H_all.shape, h_T.shape, torch.equal(H_all[:, -1], h_T))

# %% nbgrader={"grade": true, "grade_id": "test_rnn_forward_matches_torch", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""rnn_forward matches torch.nn.RNN: all states, the last state, h0 given or None, and a
missing h0 is made on the inputs' device. When graded, more cases are checked outside the
notebook."""
check_rnn_forward(rnn_forward)
check_rnn_forward(rnn_forward, zero_h0=True)

# %% [markdown]
# **Remember.** The loop over time is sequential: step $t$ needs $h_{t-1}$. This is why RNNs
# are slower than their parameter count suggests, and why cuDNN's fused kernels matter (lesson 04).
#
# ## 3. Reading `torch.nn.RNN`'s parameters
#
# PyTorch implements the same layer, but stores its weights the other way round and keeps
# **two** bias vectors. For layer 0 of `nn.RNN(D, H)`:
#
# $$h_t = \tanh\left(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}\right),$$
#
# with `weight_ih_l0` of shape $(H, D)$, `weight_hh_l0` $(H, H)$, and `bias_ih_l0`,
# `bias_hh_l0` both $(H,)$. (cuDNN's kernels use this layout; the two biases are redundant
# mathematically, but that is how the parameters come.)

# %%
rnn = nn.RNN(input_size=3, hidden_size=4, batch_first=True)
for name, p in rnn.named_parameters():
    print(f"{name:14s} {tuple(p.shape)}")

# %% [markdown]
# ### Exercise 3 — `rnn_params_from_torch`
# Return the course's parameters (`W_xh`, `W_hh`, `b_h`) so that **your** `rnn_forward`
# computes exactly what `rnn` computes. Return detached tensors (`.detach()`).


# %% nbgrader={"grade": false, "grade_id": "rnn_params_from_torch", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_params_from_torch(rnn):
    """Parameters of a one-layer `nn.RNN(D, H)` in the course's layout.

    Args:
        rnn: a `torch.nn.RNN` with num_layers=1, tanh nonlinearity and biases.
    Returns:
        dict with W_xh (D, H), W_hh (H, H), b_h (H,).
    Hint: compare the two equations term by term.
    """
    ### BEGIN SOLUTION
    return {
        "W_xh": rnn.weight_ih_l0.detach().T,  # (D, H)
        "W_hh": rnn.weight_hh_l0.detach().T,  # (H, H)
        "b_h": (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach(),  # (H,)
    }
    ### END SOLUTION


# %%
params = rnn_params_from_torch(rnn.double())
X = torch.randn(2, 6, 3, dtype=torch.float64)
ours, _ = rnn_forward(X, None, **params)
theirs, _ = rnn(X)
print("relative error vs nn.RNN:", rel_error(ours, theirs.detach()))

# %% nbgrader={"grade": true, "grade_id": "test_rnn_params_from_torch_reproduces_outputs", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""Parameters read from nn.RNN make rnn_forward reproduce nn.RNN in float64.
When graded, more cases are checked outside the notebook."""
check_rnn_params_from_torch(rnn_params_from_torch, rnn_forward)

# %% [markdown]
# **Remember.** A relative error around $10^{-16}$ in float64 means *the same computation*;
# around $10^{-7}$ is float32 rounding; anything above $10^{-4}$ is a bug.
#
# ### Exercise 4 — counting parameters
# A sequence model made of `nn.RNN(D, H)` followed by a read-out `nn.Linear(H, O)`: how many
# numbers does it learn? Write the count as a formula of $D$, $H$, $O$ (as PyTorch stores
# them, two RNN biases included). Note that it does not depend on the sequence length $T$:
# that is weight sharing.


# %% nbgrader={"grade": false, "grade_id": "rnn_num_params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_num_params(input_size, num_hiddens, num_outputs):
    """Number of parameters of nn.RNN(input_size, num_hiddens) + nn.Linear(num_hiddens, num_outputs).

    Returns:
        int.
    Hint: list the tensors and their shapes first.
    """
    ### BEGIN SOLUTION
    D, H, O = input_size, num_hiddens, num_outputs
    return D * H + H * H + 2 * H + H * O + O
    ### END SOLUTION


# %%
print(rnn_num_params(3, 4, 2), "parameters for D=3, H=4, O=2")

# %% nbgrader={"grade": true, "grade_id": "test_rnn_num_params_matches_torch", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""rnn_num_params agrees with the parameters of the PyTorch modules.
When graded, more cases are checked outside the notebook."""
check_rnn_num_params(rnn_num_params)

# %% [markdown]
# ## 4. A loss over every time step, with padding
#
# A language model predicts the next symbol at every step: its outputs are logits
# $z_{b,t} \in \mathbb{R}^V$ over a vocabulary of size $V$, and the loss averages the
# cross-entropy over all steps. Sequences in a batch have different lengths, so short ones are
# **padded** to length $T$; a mask $m_{b,t} \in \{0, 1\}$ marks the real steps, and padding
# must not count:
#
# $$\mathcal{L} = \frac{1}{\sum_{b,t} m_{b,t}} \sum_{b,t} m_{b,t}\,
#   \bigl(-\log \operatorname{softmax}(z_{b,t})_{y_{b,t}}\bigr).$$
#
# Dividing by $B \cdot T$ instead would make a batch with much padding look better than it is.
#
# ### Exercise 5 — `sequence_loss`


# %% nbgrader={"grade": false, "grade_id": "sequence_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sequence_loss(logits, targets, mask):
    """Mean cross-entropy over the real (unpadded) time steps.

    Args:
        logits: (B, T, V).  targets: class ids, (B, T), int64.  mask: (B, T), True on real steps.
    Returns:
        loss: a scalar tensor, differentiable with respect to logits.
    Hint: `F.cross_entropy(..., reduction="none")` wants (N, V) and (N,).
    """
    ### BEGIN SOLUTION
    V = logits.shape[-1]
    per_step = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    weights = mask.reshape(-1).to(per_step.dtype)  # (B * T,)
    return (per_step * weights).sum() / weights.sum()
    ### END SOLUTION


# %%
logits = torch.zeros(1, 4, 5)  # uniform prediction over V = 5 symbols
targets = torch.tensor([[1, 2, 0, 0]])
mask = torch.tensor([[True, True, False, False]])  # the last two steps are padding
print(sequence_loss(logits, targets, mask).item(), "should be log 5 =", math.log(5))

# %% nbgrader={"grade": true, "grade_id": "test_sequence_loss_masks_padding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""sequence_loss matches masked cross-entropy and ignores padding.
When graded, more cases are checked outside the notebook."""
check_sequence_loss(sequence_loss)

# %% [markdown]
# ## 5. Training your RNN to continue a pattern
#
# Time to learn something. The sequence repeats the pattern `abacabad` forever. After an `a`
# comes `b`, `c`, `b` or `d` depending on where we are in the pattern, so the model must
# *remember*: it has to carry in $h_t$ how far back the last `c` or `d` was. A model that only
# looks at the current symbol cannot do better than guessing.
#
# Each training window starts at a random phase, so the first few steps are ambiguous even for
# a perfect model. We therefore mask the first `BURN_IN` steps out of the loss — the padding
# mask of Exercise 5 doing a second job.
#
# The model below embeds each symbol as a one-hot vector, runs **your** `rnn_forward`, and
# reads out logits with $y_t = h_t W_{hy} + b_y$. Autograd differentiates through your loop.
#
# **One-hot inputs and embeddings.** A one-hot vector times $W_{xh}$ only *selects a row*:
# for symbol $i$, $\mathrm{onehot}(i)\, W_{xh} = W_{xh}[i]$. So the input term of the cell is
# a learned vector per symbol, looked up in a table. That table is what `nn.Embedding` holds
# (lesson 05 and later): it indexes the row directly instead of multiplying by a mostly-zero
# vector, the same function at a fraction of the cost when there are thousands of symbols.

# %%
PATTERN, ALPHABET = encode_pattern("abacabad")
VOCAB_SIZE, NUM_HIDDENS, BURN_IN = len(ALPHABET), 32, 4


class NextSymbolRNN(nn.Module):
    """One-hot input -> the student's rnn_forward -> linear read-out, at every step."""

    def __init__(self, vocab_size, num_hiddens):
        super().__init__()
        scale = 1 / math.sqrt(num_hiddens)  # PyTorch's default init range for nn.RNN
        self.W_xh = nn.Parameter(torch.empty(vocab_size, num_hiddens).uniform_(-scale, scale))
        self.W_hh = nn.Parameter(torch.empty(num_hiddens, num_hiddens).uniform_(-scale, scale))
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))
        self.W_hy = nn.Parameter(torch.empty(num_hiddens, vocab_size).uniform_(-scale, scale))
        self.b_y = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, X, return_states=False):
        """X: symbol ids (B, T) -> logits (B, T, V) (and the hidden states (B, T, H))."""
        inputs = F.one_hot(X, self.W_xh.shape[0]).to(self.W_xh.dtype)  # (B, T, V)
        H_all, _ = rnn_forward(inputs, None, self.W_xh, self.W_hh, self.b_h)  # (B, T, H)
        logits = H_all @ self.W_hy + self.b_y  # (B, T, V)
        return (logits, H_all) if return_states else logits


# %% [markdown]
# ### Exercise 6 — `train_step`
# One optimisation step: forward pass, your `sequence_loss`, backward pass, update. Return the
# loss as a Python float (for plotting).


# %% nbgrader={"grade": false, "grade_id": "train_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_step(model, optimizer, X, Y, mask):
    """One step of gradient descent on the masked next-symbol loss.

    Args:
        model: maps X (B, T) to logits (B, T, V).  optimizer: a torch.optim optimizer.
        X, Y: inputs and next-symbol targets, (B, T).  mask: (B, T), True where the loss counts.
    Returns:
        the loss before the update, a float.
    Hint: zero the gradients first, or they add up across steps.
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = sequence_loss(model(X), Y, mask)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %%
set_seed(0)
model = NextSymbolRNN(VOCAB_SIZE, NUM_HIDDENS)
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
BATCH_SIZE, NUM_STEPS, NUM_ITERS = 32, 24, 300
mask = torch.zeros(BATCH_SIZE, NUM_STEPS, dtype=torch.bool)
mask[:, BURN_IN:] = True  # the first steps are ambiguous: leave them out of the loss

losses = []
for _ in range(NUM_ITERS):
    X, Y = periodic_batch(PATTERN, BATCH_SIZE, NUM_STEPS)
    losses.append(train_step(model, optimizer, X, Y, mask))

plot_curves(
    {"training loss": losses},
    title="Learning abacabad",
    xlabel="iteration",
    logy=True,
    reference={"chance: log V": math.log(VOCAB_SIZE)},
)
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_train_step_learns_pattern", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""train_step steps on the masked sequence_loss; trained, the model predicts the pattern (loss < 0.1)."""
check_train_step(train_step, sequence_loss)
check_next_symbol_model(model, PATTERN, burn_in=BURN_IN)

# %% [markdown]
# **Reading the curve.** The loss first drops to a plateau near $0.17$ and stays there for a
# while before falling again. The plateau has a meaning. A model that sees only the current
# symbol is sure after `b`, `c` and `d` (an `a` follows) but not after `a`, which is followed
# by `b`, `c`, `b`, `d`: half of the positions cost $\tfrac12\log 2 + \tfrac12\log 4$, a loss
# of about $0.52$. A model that also remembers the symbol before knows everything except
# what follows the `a` after `ba`, which is `c` or `d` with equal odds. Those are 2 of the 8
# positions, each costing $\log 2$, so the loss is $\tfrac{2}{8}\log 2 \approx 0.173$: the
# plateau. Leaving it means learning to look three steps back.
#
# ### What did the hidden state learn?
# Each column is a time step, each row one of the 32 hidden units. The state settles into a
# cycle with the period of the pattern: the network has built itself a counter.

# %%
X, _ = periodic_batch(PATTERN, 1, 24)
with torch.no_grad():
    logits, states = model(X, return_states=True)
ax = plot_heatmap(
    states[0].T,
    title="Hidden state h_t while reading the pattern",
    xlabel="time step t",
    ylabel="hidden unit",
    colorbar_label="activation",
)
ax.set_xticks(range(24), [ALPHABET[i] for i in X[0]])
plt.show()

# %% [markdown]
# ### Letting the model write (a preview of lesson 06)
#
# A model that predicts the next symbol can also *generate*: give it a start, take its most
# likely next symbol, append it, and repeat. (Our model re-reads the whole sequence at every
# step, which is fine for 30 symbols; lesson 06 carries the state instead, and samples from
# the predicted distribution rather than taking its argmax.) From `ab` alone it cannot know
# which half of the pattern it is in — `abac` and `abad` both start that way — so it commits
# to one, and from then on continues the pattern exactly.

# %%
written = [ALPHABET.index(ch) for ch in "ab"]  # the start we give it
with torch.no_grad():
    for _ in range(30):
        logits = model(torch.tensor([written]))  # (1, t, V)
        written.append(int(logits[0, -1].argmax()))
print("".join(ALPHABET[i] for i in written))

# %% [markdown]
# ## Exercises to go further (not graded)
# 1. Replace $\tanh$ by ReLU in a copy of your cell and train again. What happens to the
#    hidden-state heatmap and to the loss curve? Why can the states grow?
# 2. Set `BURN_IN = 0`. The loss can no longer reach zero: compute the best achievable loss
#    on the first step by hand (how many symbols can follow at a random phase?).
# 3. Train on `abacabadabacabae` (period 16). How many hidden units and steps does it need?
#    Lesson 02 explains why longer memory is harder.
#
# ## Summary
# - A vanilla RNN applies one shared cell, $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$,
#   at every step; unrolled, it is a deep network with tied weights.
# - Batch-first shapes: $X$ is $(B, T, D)$, states $(B, H)$, all states $(B, T, H)$.
# - `torch.nn.RNN` computes the same thing with transposed weights and two biases.
# - The parameter count, $DH + H^2 + 2H + HO + O$, does not grow with the sequence length.
# - A masked mean over time steps gives a loss that padding cannot distort.
#
# Next: **lesson 02** derives the backward pass through time by hand and measures why
# vanilla RNNs forget.
