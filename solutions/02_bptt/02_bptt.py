# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 02 — Backpropagation through time, and why vanilla RNNs forget
#
# In lesson 01 autograd differentiated through your RNN loop. Here you write that backward pass
# yourself: the gradient of a loss with respect to every weight and every earlier state, carried
# back through time step by step. Doing it by hand shows *why* a vanilla RNN struggles to learn
# long dependencies: the gradient is multiplied by the same matrix at every step, and shrinks or
# blows up geometrically.
#
# **Learning goals.** After this lesson you can
# - derive and implement backpropagation through time (BPTT) for a vanilla RNN and its softmax
#   read-out, and prove it right against autograd and with a centred-difference gradient
#   check that you write;
# - train on long sequences with truncated BPTT, carrying the state but cutting the gradient;
# - measure vanishing and exploding gradients, relate them to the spectral radius and the largest
#   singular value of $W_{hh}$, and tame explosions with gradient-norm clipping.
#
# **Prerequisites.** Lesson 01 (the RNN forward pass and its shapes), the chain rule for matrix
# products, and what an optimizer step does.
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
    check_clip_grad_norm,
    check_clip_grad_norm_non_finite,
    check_clipping_tames_explosion,
    check_gradient_flow,
    check_jacobian_norms,
    check_numerical_gradient,
    check_readout_backward,
    check_rnn_backward,
    check_rnn_backward_edge_cases,
    check_rnn_cell_backward,
    check_train_step_clipped,
    check_train_truncated_bptt,
    check_with_spectral_radius,
)
from rnncourse.numerics import rel_error_norm
from rnncourse.plots import draw_bptt, plot_curves, plot_log_curves
from rnncourse.toy_tasks import encode_pattern, periodic_batch

DEVICE = get_device()  # prints its choice; graded code never needs a GPU
set_seed(0)

# %% [markdown]
# ## 1. One step backwards
#
# The forward step of lesson 01, with the pre-activation written out:
#
# $$a_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h, \qquad h_t = \tanh(a_t).$$
#
# A backward pass needs values from the forward pass. The step below (provided: you wrote it in
# lesson 01) returns, besides $h_t$, a **cache** with everything its backward pass will need:
# the input $x_t$, the previous state $h_{t-1}$, the new state $h_t$ and the two weight
# matrices. The layer keeps one cache per step, so BPTT's memory grows with the sequence length
# $T$ (section 3 deals with that).


# %%
def rnn_cell_forward_with_cache(x_t, h_prev, W_xh, W_hh, b_h):
    """One RNN step (lesson 01) that also returns what its backward pass needs.

    Args:
        x_t: (B, D).  h_prev: (B, H).  W_xh: (D, H).  W_hh: (H, H).  b_h: (H,).
    Returns:
        h_t: (B, H).  cache: the tuple (x_t, h_prev, h_t, W_xh, W_hh).
    """
    h_t = torch.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)  # (B, H)
    return h_t, (x_t, h_prev, h_t, W_xh, W_hh)


def rnn_forward_with_cache(X, h0, W_xh, W_hh, b_h):
    """The RNN unrolled over T steps (lesson 01), keeping every step's cache.

    Args:
        X: (B, T, D).  h0: (B, H).  W_xh: (D, H).  W_hh: (H, H).  b_h: (H,).
    Returns:
        H_all: the states h_1 .. h_T, (B, T, H).  caches: a list of T caches.
    """
    h, states, caches = h0, [], []
    for t in range(X.shape[1]):
        h, cache = rnn_cell_forward_with_cache(X[:, t], h, W_xh, W_hh, b_h)  # (B, H)
        states.append(h)
        caches.append(cache)
    return torch.stack(states, dim=1), caches  # (B, T, H), T caches


# %% [markdown]
# ### The chain rule for one step
#
# Write $\delta h_t = \partial \mathcal{L} / \partial h_t$ for the gradient of the loss with
# respect to the step's output (shape $(B, H)$, called `dh_next` in code: it comes from the
# *next* things computed). The step's backward pass turns it into the gradients of everything
# the step read.
#
# **Through the tanh.** $\tanh'(a) = 1 - \tanh^2(a)$, and $h_t = \tanh(a_t)$ is in the cache,
# so, element by element,
#
# $$\delta a_t = \delta h_t \odot \left(1 - h_t^{2}\right) \qquad \texttt{da = dh\_next * (1 - h\_t**2)}.$$
#
# **Through the affine map.** $a_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h$ is a sum of matrix
# products. For $Y = A W$ with upstream gradient $\delta Y$, the chain rule gives
# $\delta A = \delta Y\, W^\top$ and $\delta W = A^\top \delta Y$, and a bias broadcast over the
# batch collects the sum over the batch. So
#
# $$\frac{\partial \mathcal{L}}{\partial x_t} = \delta a_t W_{xh}^\top, \quad
#   \frac{\partial \mathcal{L}}{\partial h_{t-1}} = \delta a_t W_{hh}^\top, \quad
#   \frac{\partial \mathcal{L}}{\partial W_{xh}} = x_t^\top \delta a_t, \quad
#   \frac{\partial \mathcal{L}}{\partial W_{hh}} = h_{t-1}^\top \delta a_t, \quad
#   \frac{\partial \mathcal{L}}{\partial b_h} = \sum_{b=1}^{B} (\delta a_t)_{b,:}.$$
#
# Check every one by its shape, as in lesson 01:
#
# | gradient | code | product | shape |
# |---|---|---|---|
# | $\partial\mathcal{L}/\partial x_t$ | `dx_t` | $(B, H)(H, D)$ | $(B, D)$ |
# | $\partial\mathcal{L}/\partial h_{t-1}$ | `dh_prev` | $(B, H)(H, H)$ | $(B, H)$ |
# | $\partial\mathcal{L}/\partial W_{xh}$ | `dW_xh` | $(D, B)(B, H)$ | $(D, H)$ |
# | $\partial\mathcal{L}/\partial W_{hh}$ | `dW_hh` | $(H, B)(B, H)$ | $(H, H)$ |
# | $\partial\mathcal{L}/\partial b_h$ | `db_h` | sum over $B$ | $(H,)$ |
#
# A gradient always has the shape of what it is the gradient of: if a shape does not come out
# right, a transpose is missing or misplaced.
#
# ### Exercise 1 — `rnn_cell_backward`


# %% nbgrader={"grade": false, "grade_id": "rnn_cell_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_cell_backward(dh_next, cache):
    """Backward pass of one RNN step.

    Args:
        dh_next: dL/dh_t, the gradient reaching the step's output, (B, H).
        cache: (x_t, h_prev, h_t, W_xh, W_hh) from rnn_cell_forward_with_cache.
    Returns:
        dx_t (B, D), dh_prev (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,).
    Hint: compute da = dL/da_t first; each gradient is then one product or one sum.
    """
    ### BEGIN SOLUTION
    x_t, h_prev, h_t, W_xh, W_hh = cache
    da = dh_next * (1 - h_t**2)  # (B, H): through tanh, tanh'(a_t) = 1 - h_t^2
    dx_t = da @ W_xh.T  # (B, D)
    dh_prev = da @ W_hh.T  # (B, H)
    dW_xh = x_t.T @ da  # (D, H)
    dW_hh = h_prev.T @ da  # (H, H)
    db_h = da.sum(dim=0)  # (H,)
    return dx_t, dh_prev, dW_xh, dW_hh, db_h
    ### END SOLUTION


# %% [markdown]
# Try it against autograd. To test a backward pass with *any* upstream gradient `dh_next`, take
# the loss $\mathcal{L} = \sum h_t \odot \delta h_t$: its gradient with respect to $h_t$ is
# exactly $\delta h_t$. `torch.autograd.grad(h_t, inputs, grad_outputs=dh_next)` computes the
# gradients of that loss.

# %%
B, D, H = 3, 2, 4
names = ["dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h"]
inputs = [
    torch.randn(B, D, dtype=torch.float64),  # x_t
    torch.randn(B, H, dtype=torch.float64).tanh(),  # h_prev
    torch.randn(D, H, dtype=torch.float64),  # W_xh
    0.5 * torch.randn(H, H, dtype=torch.float64),  # W_hh
    torch.randn(H, dtype=torch.float64),  # b_h
]
inputs = [t.requires_grad_() for t in inputs]
h_t, cache = rnn_cell_forward_with_cache(*inputs)
dh_next = torch.randn(B, H, dtype=torch.float64)
by_autograd = torch.autograd.grad(h_t, inputs, grad_outputs=dh_next)
with torch.no_grad():
    by_hand = rnn_cell_backward(dh_next, cache)
for name, mine, theirs in zip(names, by_hand, by_autograd, strict=True):
    print(
        f"{name:8s} {tuple(mine.shape)!s:8s} relative error vs autograd {rel_error(mine, theirs):.1e}"
    )

# %% nbgrader={"grade": true, "grade_id": "test_rnn_cell_backward_matches_autograd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""rnn_cell_backward matches autograd through one step of torch.nn.RNN.
When graded, more cases are checked outside the notebook."""
check_rnn_cell_backward(rnn_cell_backward, rnn_cell_forward_with_cache)

# %% [markdown]
# ### Gradient checking with centred differences
#
# Autograd is a fine reference when you have it. When you do not (a new layer, a custom CUDA
# kernel, a paper's formula), check a gradient numerically. For one entry $\theta_i$ of any
# input, the **centred difference**
#
# $$\frac{\partial \mathcal{L}}{\partial \theta_i} \approx
#   \frac{\mathcal{L}(\theta + \varepsilon e_i) - \mathcal{L}(\theta - \varepsilon e_i)}{2\varepsilon}$$
#
# has an error of order $\varepsilon^2$: the Taylor terms of even order cancel between the two
# sides. The one-sided difference
# $(\mathcal{L}(\theta + \varepsilon e_i) - \mathcal{L}(\theta)) / \varepsilon$ keeps the
# second-order term, an error of order $\varepsilon$: with $\varepsilon = 10^{-6}$ about
# $10^{-6}$ relative, ten times what a right gradient must reach below. Two more rules make a
# check reliable:
# - work in **float64**: with $\varepsilon = 10^{-6}$ the rounding error of float32 ($10^{-7}$
#   relative) divided by $2\varepsilon$ would swamp the answer;
# - compare **relative** errors, since gradients come in every size, and measure them on the
#   whole tensor: $\|a - n\| / (\|a\| + \|n\|)$ (`rel_error_norm`). Entry by entry
#   (`rel_error`, lesson 01), an entry that happens to be tiny shows a large relative error
#   from rounding alone. In float64, below $10^{-7}$ means right; $10^{-4}$ or above, a bug.
#
# It costs two evaluations of the loss per entry: fine for a check on a tiny problem, hopeless
# for training (which is why we backpropagate).
#
# ### Exercise 2 — `numerical_gradient`
# Write the checker. The loss is a function `f` of **no** arguments that reads the tensor `x`
# (a closure, as below): to move $\theta_i$, change entry `i` of `x` itself, in place, call
# `f()`, and put the entry back before the next one, since `f` (and whoever called you) reads
# `x` again. `x.view(-1)` is a flat view of `x`: writing its entry `i` writes `x`.


# %% nbgrader={"grade": false, "grade_id": "numerical_gradient", "locked": false, "schema_version": 3, "solution": true, "task": false}
def numerical_gradient(f, x, eps=1e-6):
    """Centred-difference gradient of a scalar function f() with respect to the tensor x.

    Args:
        f: a function of no arguments that reads x and returns the loss, a 0-dim tensor.
        x: a float64 tensor of any shape; changed in place one entry at a time, then restored.
        eps: the step.
    Returns:
        grad, shaped like x: grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).
    Hint: remember the old value of entry i, set it to old + eps, then old - eps, then old.
    """
    ### BEGIN SOLUTION
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)  # views: writing them writes x and grad
    for i in range(flat_x.numel()):
        old = flat_x[i].item()
        flat_x[i] = old + eps
        loss_plus = f().item()
        flat_x[i] = old - eps
        loss_minus = f().item()
        flat_x[i] = old  # restore: f reads x for every later entry, and so does the caller
        flat_grad[i] = (loss_plus - loss_minus) / (2 * eps)
    return grad
    ### END SOLUTION


# %% [markdown]
# Try it on a function whose gradient you know, $\sum_i x_i^3$ (gradient $3x_i^2$), with a
# large $\varepsilon$ to see the error terms, then on the RNN step of Exercise 1. A backward
# pass is checked through a scalar loss: with $\mathcal{L} = \sum h_t \odot \delta h_t$ (the
# trick above) the gradients are exactly the five that `rnn_cell_backward` returns for
# `dh_next` $= \delta h_t$.

# %%
x_try = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
print("centred, eps = 0.1:", numerical_gradient(lambda: (x_try**3).sum(), x_try, eps=0.1))
print("exact 3 x^2:       ", 3 * x_try**2, "(the centred difference adds eps^2 = 0.01)")

x_t, h_prev, W_xh, W_hh, b_h = (t.detach() for t in inputs)  # plain float64 tensors
h_t, cache = rnn_cell_forward_with_cache(x_t, h_prev, W_xh, W_hh, b_h)
by_hand = rnn_cell_backward(dh_next, cache)


def step_loss():
    h_t, _ = rnn_cell_forward_with_cache(x_t, h_prev, W_xh, W_hh, b_h)  # (B, H)
    return (h_t * dh_next).sum()  # its gradient with respect to h_t is dh_next


for name, mine, tensor in zip(names, by_hand, [x_t, h_prev, W_xh, W_hh, b_h], strict=True):
    numerical = numerical_gradient(step_loss, tensor)
    print(
        f"{name:8s} relative error vs centred differences: whole tensor "
        f"{rel_error_norm(mine, numerical):.1e}, worst entry {rel_error(mine, numerical):.1e}"
    )

# %% nbgrader={"grade": true, "grade_id": "test_numerical_gradient_centred_differences", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""numerical_gradient takes centred differences with the eps it is given, within 1e-7 of the
true gradient at its default eps, and leaves x as it found it.
When graded, more cases are checked outside the notebook."""
check_numerical_gradient(numerical_gradient)

# %% [markdown]
# **Remember.** Backward through `tanh`: multiply by $1 - h_t^2$, using the $h_t$ you already
# have. Backward through `A @ W`: `dA = dY @ W.T`, `dW = A.T @ dY`. Check shapes first, then
# values (autograd), then, when there is no autograd, centred differences in float64: perturb
# in place, restore, divide by $2\varepsilon$, and compare relative errors of whole tensors.
#
# ## 2. Backpropagation through time
#
# Unrolled, the RNN is a deep network whose layers share $W_{xh}$, $W_{hh}$, $b_h$. The loss
# has a term at every step, $\mathcal{L} = \sum_t \mathcal{L}_t$ (a language model predicts at
# every step), so each state $h_t$ receives gradient from **two** places: from its own loss
# term above it, and from the next step, whose pre-activation $a_{t+1}$ reads it.

# %%
draw_bptt(num_steps=4)
plt.show()

# %% [markdown]
# Call `dH` the gradient that arrives at every state from above, shape $(B, T, H)$: the
# part $\partial \mathcal{L}_t / \partial h_t$ that comes from the read-out and loss at step
# $t$ itself (for a classifier that reads only the last state, all of it is zero but the last
# step's). Going backwards from the last step,
#
# $$\delta h_T = \frac{\partial \mathcal{L}_T}{\partial h_T}, \qquad
#   \delta h_t = \frac{\partial \mathcal{L}_t}{\partial h_t}
#   + \underbrace{\delta a_{t+1} W_{hh}^\top}_{\texttt{dh\_prev} \text{ of step } t+1}
#   \quad (t < T),$$
#
# and each step runs your `rnn_cell_backward` on $\delta h_t$. The weights are **shared**, so
# their gradients are sums over the steps:
#
# $$\frac{\partial \mathcal{L}}{\partial W_{hh}} = \sum_{t=1}^{T} h_{t-1}^\top \delta a_t, \qquad
#   \frac{\partial \mathcal{L}}{\partial W_{xh}} = \sum_{t=1}^{T} x_t^\top \delta a_t, \qquad
#   \frac{\partial \mathcal{L}}{\partial b_h} = \sum_{t=1}^{T} \sum_{b} (\delta a_t)_{b,:},$$
#
# while $\partial\mathcal{L}/\partial x_t$ is one per step (`dX[:, t]`), and the `dh_prev` of
# the first step is $\partial\mathcal{L}/\partial h_0$ (`dh0`), the gradient for whoever
# produced the initial state (in section 3, the previous chunk). In code the time index is
# 0-based: `dH[:, t]`, `H_all[:, t]`, `X[:, t]` and `caches[t]` all belong to step $t + 1$, and
# the loop runs `t = T - 1, ..., 0`.
#
# ### Exercise 3 — `rnn_backward`


# %% nbgrader={"grade": false, "grade_id": "rnn_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_backward(dH, caches):
    """Backpropagation through time over T steps.

    Args:
        dH: upstream gradient of every hidden state, dL/dH_all, (B, T, H).
        caches: the T caches returned by rnn_forward_with_cache.
    Returns:
        dX (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,).
    Hint: loop t = T-1, ..., 0; the gradient reaching h_t is dH[:, t] plus step t+1's dh_prev.
    """
    ### BEGIN SOLUTION
    B, T, H = dH.shape
    x_first, _, _, W_xh, W_hh = caches[0]
    dX = dH.new_zeros(B, T, x_first.shape[1])  # (B, T, D)
    dW_xh, dW_hh, db_h = torch.zeros_like(W_xh), torch.zeros_like(W_hh), dH.new_zeros(H)
    dh_prev = dH.new_zeros(B, H)  # nothing comes back from after the last step
    for t in reversed(range(T)):
        dx_t, dh_prev, dW_xh_t, dW_hh_t, db_h_t = rnn_cell_backward(dH[:, t] + dh_prev, caches[t])
        dX[:, t] = dx_t  # (B, D)
        dW_xh += dW_xh_t  # shared weights: add up every step's contribution
        dW_hh += dW_hh_t
        db_h += db_h_t
    return dX, dh_prev, dW_xh, dW_hh, db_h
    ### END SOLUTION


# %% [markdown]
# Try it on a batch of sequences, with autograd through your forward pass as the reference.

# %%
B, T, D, H = 2, 6, 3, 4
layer_names = ["dX", "dh0", "dW_xh", "dW_hh", "db_h"]
layer_inputs = [
    torch.randn(B, T, D, dtype=torch.float64),  # X
    torch.randn(B, H, dtype=torch.float64).tanh(),  # h0
    torch.randn(D, H, dtype=torch.float64),  # W_xh
    0.5 * torch.randn(H, H, dtype=torch.float64),  # W_hh
    torch.randn(H, dtype=torch.float64),  # b_h
]
layer_inputs = [t.requires_grad_() for t in layer_inputs]
H_all, caches = rnn_forward_with_cache(*layer_inputs)
dH = torch.randn(B, T, H, dtype=torch.float64)
by_autograd = torch.autograd.grad(H_all, layer_inputs, grad_outputs=dH)
with torch.no_grad():
    by_hand = rnn_backward(dH, caches)
for name, mine, theirs in zip(layer_names, by_hand, by_autograd, strict=True):
    print(
        f"{name:6s} {tuple(mine.shape)!s:10s} relative error vs autograd {rel_error(mine, theirs):.1e}"
    )

# %% nbgrader={"grade": true, "grade_id": "test_rnn_backward_matches_autograd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""rnn_backward matches autograd through torch.nn.RNN over T steps.
When graded, more cases are checked outside the notebook."""
check_rnn_backward(rnn_backward, rnn_forward_with_cache)

# %% nbgrader={"grade": true, "grade_id": "test_rnn_backward_edge_cases", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""rnn_backward handles T = 1, a loss on the last step only, zero upstream gradient at some steps.
When graded, more cases are checked outside the notebook."""
check_rnn_backward_edge_cases(rnn_backward, rnn_forward_with_cache)

# %% [markdown]
# **Remember.** Two sums make BPTT: the gradient reaching a state sums what comes from above
# and what comes from the future; the gradient of a shared weight sums every step's
# contribution. Forgetting either is the classic bug, and the checks name it.
#
# ### The loss on top: read-out and softmax cross-entropy
#
# So far `dH` was given. In a model it comes from the loss. A language model (section 3 trains
# one) reads out a score for each of $V$ symbols from every state, and is trained with the
# cross-entropy of the next symbol, averaged over all $N = BT$ positions:
#
# $$z_t = h_t W_{hy} + b_y, \qquad p_t = \operatorname{softmax}(z_t), \qquad
#   \mathcal{L} = -\frac{1}{N} \sum_{b=1}^{B} \sum_{t=1}^{T} \log p_{b,t,\,y_{b,t}},$$
#
# in code `logits = H_all @ W_hy + b_y`, shape $(B, T, V)$, with `W_hy` $(H, V)$, `b_y` $(V,)$
# and the targets `Y` $(B, T)$: what `F.cross_entropy` computes.
#
# **Through the softmax and the log.** For one position, $-\log p_y = \log \sum_j e^{z_j} - z_y$,
# so
#
# $$\frac{\partial (-\log p_y)}{\partial z_k} = \frac{e^{z_k}}{\sum_j e^{z_j}} - [k = y]
#   = p_k - [k = y],$$
#
# the predicted distribution minus the true one, $p - \operatorname{onehot}(y)$. The mean
# divides every position's share by $N$:
#
# $$\delta z_{b,t} = \frac{p_{b,t} - \operatorname{onehot}(y_{b,t})}{N}
#   \qquad \texttt{dlogits = (p - F.one\_hot(Y, V)) / N}.$$
#
# **Through the read-out**, the affine rule of section 1, with $W_{hy}$ and $b_y$ shared by
# every position (so summed over batch *and* time):
#
# $$\frac{\partial \mathcal{L}}{\partial W_{hy}} = \sum_{b,t} h_{b,t}^\top \delta z_{b,t}, \qquad
#   \frac{\partial \mathcal{L}}{\partial b_y} = \sum_{b,t} \delta z_{b,t}, \qquad
#   \frac{\partial \mathcal{L}}{\partial h_{b,t}} = \delta z_{b,t} W_{hy}^\top.$$
#
# The last one, shape $(B, T, H)$, is the `dH` that your `rnn_backward` takes.
#
# **Large logits.** $e^{z}$ overflows float64 from $z \approx 710$ (float32 from 89), and
# `inf / inf` is `nan`. A softmax does not change when the same number is subtracted from all
# the logits of a position, so subtract each position's maximum first: the largest exponential
# is then $e^0 = 1$. The same for the loss: $\log \sum_j e^{z_j} = m + \log \sum_j e^{z_j - m}$
# with $m = \max_j z_j$ (`torch.logsumexp` does it). `torch.softmax` and `F.log_softmax` are
# stable, and you may use them: the gradient is what you write here.
#
# | gradient | code | product | shape |
# |---|---|---|---|
# | $\partial\mathcal{L}/\partial z$ | `dlogits` | $(p - \operatorname{onehot}) / N$ | $(B, T, V)$ |
# | $\partial\mathcal{L}/\partial W_{hy}$ | `dW_hy` | $(H, N)(N, V)$ | $(H, V)$ |
# | $\partial\mathcal{L}/\partial b_y$ | `db_y` | sum over $B$ and $T$ | $(V,)$ |
# | $\partial\mathcal{L}/\partial h$ | `dH` | $(B, T, V)(V, H)$ | $(B, T, H)$ |
#
# ### Exercise 4 — `readout_backward`


# %% nbgrader={"grade": false, "grade_id": "readout_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def readout_backward(H_all, W_hy, b_y, Y):
    """Read-out of every state, mean softmax cross-entropy, and its backward pass.

    Args:
        H_all: the states h_1 .. h_T, (B, T, H).  W_hy: (H, V).  b_y: (V,).
        Y: the target symbol at every step, (B, T), integers in 0 .. V - 1.
    Returns:
        loss: the mean cross-entropy over the N = B * T positions, a 0-dim tensor.
        dH (B, T, H): dL/dH_all, for rnn_backward.  dW_hy (H, V).  db_y (V,).
    Hint: dlogits = (softmax(logits) - onehot(Y)) / N; subtract each row's max before exp.
    """
    ### BEGIN SOLUTION
    B, T, V = Y.shape[0], Y.shape[1], W_hy.shape[1]
    N = B * T
    logits = H_all @ W_hy + b_y  # (B, T, V)
    shifted = logits - logits.max(dim=-1, keepdim=True).values  # (B, T, V): exp(...) <= 1
    log_p = shifted - shifted.exp().sum(dim=-1, keepdim=True).log()  # (B, T, V): log-softmax
    loss = -log_p.gather(-1, Y.unsqueeze(-1)).sum() / N  # ()
    dlogits = (log_p.exp() - F.one_hot(Y, V).to(log_p.dtype)) / N  # (B, T, V): (p - onehot) / N
    dW_hy = H_all.reshape(N, -1).T @ dlogits.reshape(N, V)  # (H, V): sums over batch and time
    db_y = dlogits.sum(dim=(0, 1))  # (V,)
    dH = dlogits @ W_hy.T  # (B, T, H)
    return loss, dH, dW_hy, db_y
    ### END SOLUTION


# %% [markdown]
# Try it against autograd through `F.cross_entropy`, then on logits in the thousands.

# %%
B, T, H, V = 2, 5, 4, 3
readout_inputs = [
    torch.randn(B, T, H, dtype=torch.float64).tanh(),  # H_all
    torch.randn(H, V, dtype=torch.float64),  # W_hy
    torch.randn(V, dtype=torch.float64),  # b_y
]
readout_inputs = [t.requires_grad_() for t in readout_inputs]
Y_try = torch.randint(0, V, (B, T))
logits = readout_inputs[0] @ readout_inputs[1] + readout_inputs[2]  # (B, T, V)
loss_ref = F.cross_entropy(logits.reshape(-1, V), Y_try.reshape(-1))
by_autograd = torch.autograd.grad(loss_ref, readout_inputs)
with torch.no_grad():
    loss, *by_hand = readout_backward(*readout_inputs, Y_try)
    large = readout_backward(readout_inputs[0], 1000 * readout_inputs[1], readout_inputs[2], Y_try)
print(f"loss {loss.item():.6f}, F.cross_entropy {loss_ref.item():.6f}")
for name, mine, theirs in zip(["dH", "dW_hy", "db_y"], by_hand, by_autograd, strict=True):
    print(
        f"{name:6s} {tuple(mine.shape)!s:10s} relative error vs autograd {rel_error(mine, theirs):.1e}"
    )
print("with logits 1000 times larger, all finite:", all(bool(t.isfinite().all()) for t in large))

# %% nbgrader={"grade": true, "grade_id": "test_readout_backward_matches_autograd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""readout_backward matches autograd through F.cross_entropy, also with logits in the thousands.
When graded, more cases are checked outside the notebook."""
check_readout_backward(readout_backward)
check_readout_backward(readout_backward, logit_scale=1000.0)

# %% [markdown]
# ### Checking the whole model
#
# Now the backward pass of a whole model, read-out, loss and BPTT, against your own centred
# differences. `full_loss` computes the loss from scratch with `F.cross_entropy` (independent
# of your `readout_backward`); the analytic gradients chain your two backward passes:
# `readout_backward` gives `dH`, and `rnn_backward` turns it into the gradients of the RNN's
# weights, of its inputs and of its initial state. Every one should agree to better than
# $10^{-7}$; a larger error says which parameter to look at. (A check like this one, run once
# on a tiny model, is how you would test a backward pass nobody has written before.)

# %%
B, T, D, H, V = 2, 4, 3, 4, 5
model_tensors = {
    "X": torch.randn(B, T, D, dtype=torch.float64),
    "h0": torch.randn(B, H, dtype=torch.float64).tanh(),
    "W_xh": torch.randn(D, H, dtype=torch.float64),
    "W_hh": 0.5 * torch.randn(H, H, dtype=torch.float64),
    "b_h": torch.randn(H, dtype=torch.float64),
    "W_hy": torch.randn(H, V, dtype=torch.float64),
    "b_y": torch.randn(V, dtype=torch.float64),
}
Y_model = torch.randint(0, V, (B, T))


def full_loss():
    """The model's loss from scratch: forward pass, read-out, F.cross_entropy."""
    m = model_tensors  # numerical_gradient changes these tensors in place
    H_all, _ = rnn_forward_with_cache(m["X"], m["h0"], m["W_xh"], m["W_hh"], m["b_h"])
    logits = H_all @ m["W_hy"] + m["b_y"]  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, V), Y_model.reshape(-1))


m = model_tensors
H_all, caches = rnn_forward_with_cache(m["X"], m["h0"], m["W_xh"], m["W_hh"], m["b_h"])
loss, dH, dW_hy, db_y = readout_backward(H_all, m["W_hy"], m["b_y"], Y_model)
dX, dh0, dW_xh, dW_hh, db_h = rnn_backward(dH, caches)
analytic = {"X": dX, "h0": dh0, "W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h}
analytic |= {"W_hy": dW_hy, "b_y": db_y}
print(f"loss {loss.item():.6f}, from scratch {full_loss().item():.6f}")
for name, tensor in model_tensors.items():
    error = rel_error_norm(analytic[name], numerical_gradient(full_loss, tensor))
    verdict = "right" if error < 1e-7 else "look here"
    print(f"d{name:5s} relative error vs centred differences {error:.1e}: {verdict}")

# %% [markdown]
# **Remember.** Softmax cross-entropy backward is `dlogits = (p - onehot(y)) / N`, the predicted
# distribution minus the true one; subtract the maximum before `exp`. A gradient check of the
# whole loss, with centred differences you wrote, tests every backward pass at once and names
# the parameter whose gradient is wrong.
#
# ## 3. Truncated BPTT: long sequences in chunks
#
# Full BPTT over a stream of a million characters would keep a million caches and update the
# weights once. **Truncated BPTT** cuts the stream into chunks of $k$ steps and updates after
# each chunk. Two things must happen at a chunk boundary:
# - the **state is carried**: chunk $c+1$ starts from the last state of chunk $c$, so the model
#   still *sees* the whole past in its forward pass;
# - the **gradient is cut**: `h = h.detach()` keeps the values and drops the history, so the
#   backward pass stops at the boundary and memory stays $O(k)$. (Without it, autograd would
#   try to backpropagate into the previous chunk, whose graph was already freed, and fail.)
#
# The price: no gradient connects a loss to anything more than $k - 1$ steps before it, so
# dependencies longer than the chunk are never *trained* for, even though the state carries them.

# %%
draw_bptt(num_steps=6, chunk_size=3)
plt.show()

# %% [markdown]
# Now that you know what its backward pass computes, we let `nn.RNN` do the work. The model
# takes a state and returns its last one, so that a training loop can carry it:


# %%
class CharRNN(nn.Module):
    """One-hot symbols -> nn.RNN -> logits at every step; also returns the last state."""

    def __init__(self, vocab_size, num_hiddens):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens, batch_first=True)
        self.head = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X, h=None):
        """X: ids (B, T); h: (B, H) or None for zeros -> logits (B, T, V), last state (B, H)."""
        inputs = F.one_hot(X, self.vocab_size).float()  # (B, T, V)
        outputs, h_n = self.rnn(inputs, None if h is None else h.unsqueeze(0))  # (B, T, H)
        return self.head(outputs), h_n[0]  # (B, T, V), (B, H)


# %% [markdown]
# ### Exercise 5 — `train_truncated_bptt`
# One pass over long sequences `X`, `Y` of shape $(B, T)$ in chunks of `chunk_size` steps
# (the last chunk may be shorter): per chunk, one forward pass from the carried state, the mean
# cross-entropy over the chunk, one optimizer step. Return the chunk losses as floats.


# %% nbgrader={"grade": false, "grade_id": "train_truncated_bptt", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_truncated_bptt(model, optimizer, X, Y, chunk_size):
    """Truncated BPTT over long sequences: carry the state, cut the gradient at chunk boundaries.

    Args:
        model: model(X_chunk, h) -> (logits (B, k, V), h_last (B, H)); h None means zeros.
        optimizer: a torch.optim optimizer over the model's parameters.
        X, Y: symbol ids and next-symbol targets, (B, T).  chunk_size: k.
    Returns:
        losses: one float per chunk, the mean cross-entropy of that chunk.
    Hint: `h.detach()` keeps the values of h and drops its history.
    """
    ### BEGIN SOLUTION
    h, losses = None, []
    for start in range(0, X.shape[1], chunk_size):
        X_chunk, Y_chunk = X[:, start : start + chunk_size], Y[:, start : start + chunk_size]
        if h is not None:
            h = h.detach()  # carry the state, cut the gradient
        logits, h = model(X_chunk, h)  # (B, k, V), (B, H)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y_chunk.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_truncated_bptt_carries_and_detaches", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""train_truncated_bptt carries the state, detaches it, and updates with each chunk's gradient.
When graded, more cases are checked outside the notebook."""
check_train_truncated_bptt(train_truncated_bptt)

# %% [markdown]
# ### What carrying and truncating do
#
# Lesson 01's pattern `abacabad`, now as 16 long streams read in chunks. Three runs:
# - chunks of $k = 4$, state carried: your function as written;
# - chunks of $k = 4$, state **reset**: the same function, given a model that ignores the state
#   it is passed (each chunk starts from zeros);
# - chunks of $k = 2$, state carried.

# %%
PATTERN, ALPHABET = encode_pattern("abacabad")
VOCAB_SIZE, NUM_HIDDENS = len(ALPHABET), 32
stream = torch.Generator().manual_seed(0)
X_stream, Y_stream = periodic_batch(PATTERN, 16, 1200, generator=stream)  # (16, 1200)


def tbptt_run(chunk_size, carry=True, seed=0, block=24):
    """Train a fresh model on the streams; return its mean chunk loss per `block` steps read."""
    set_seed(seed)
    model = CharRNN(VOCAB_SIZE, NUM_HIDDENS)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    step = model if carry else (lambda X_chunk, h: model(X_chunk, None))  # forgets at every chunk
    losses = train_truncated_bptt(step, optimizer, X_stream, Y_stream, chunk_size)
    n = block // chunk_size  # chunks per block: a block spans 3 periods of the pattern
    return [sum(losses[i : i + n]) / n for i in range(0, len(losses) - n + 1, n)]


runs = {
    "k = 4, state carried": tbptt_run(4),
    "k = 4, state reset": tbptt_run(4, carry=False),
    "k = 2, state carried": tbptt_run(2),
}
plot_log_curves(
    runs,
    x=[24 * (i + 1) for i in range(len(runs["k = 4, state carried"]))],
    title="Truncated BPTT on abacabad",
    xlabel="time steps of the stream read",
    ylabel="mean chunk loss",
    reference={"lesson 01's plateau, (2/8) log 2": 0.25 * math.log(2)},
)
plt.show()

# %% [markdown]
# **Reading the curves.** With the state reset, the first steps of every chunk are guesses (a
# chunk starts at a random phase of the pattern), so the loss cannot go below a floor however
# long it trains. With chunks of 2 the state is carried but the model stays on lesson 01's
# plateau near $\tfrac{2}{8}\log 2$: deciding between `c` and `d` needs the symbol three steps
# back, and no gradient reaches that far inside a chunk of 2. With $k = 4$ and the state carried
# it learns the pattern. (Each point averages the chunk losses over 24 steps of the stream,
# three periods of the pattern, since single chunks cover different phases.)
#
# **Remember.** Truncated BPTT = carry the state (`h` from the previous chunk), cut the
# gradient (`h.detach()`), one update per chunk. $k$ bounds what gradients can teach.
#
# ## 4. Vanishing and exploding gradients
#
# How much of the loss at the last step reaches an early state? By the chain rule, for one
# sequence,
#
# $$\frac{\partial h_T}{\partial h_s} = J_T J_{T-1} \cdots J_{s+1}, \qquad
#   J_t = \frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}\!\left(1 - h_t^{2}\right) W_{hh}^\top,$$
#
# with row $i$ of $J_t$ belonging to unit $i$ of $h_t$ (entry $[i, j]$ is
# $(1 - h_{t,i}^2)\, (W_{hh})_{j,i}$). The gradient that the loss at step $T$ sends to $h_s$ is
# $(\partial h_T/\partial h_s)^\top \delta h_T$: its size is governed by the norm of this
# product of $T - s$ matrices. Two facts about such products:
#
# - **The largest singular value bounds it.** Every factor $1 - h_t^2$ lies in $(0, 1]$, and the
#   spectral norm of a product is at most the product of the norms, so
#   $$\left\| \frac{\partial h_T}{\partial h_s} \right\|_2 \le \sigma_{\max}(W_{hh})^{\,T-s}.$$
#   If $\sigma_{\max}(W_{hh}) < 1$ the gradient **must** vanish, geometrically.
# - **The spectral radius sets the long-run rate.** Near $h = 0$ (where $\tanh' = 1$) the product
#   is $(W_{hh}^\top)^{T-s}$, and $\|(W_{hh}^\top)^k\|^{1/k} \to \rho(W_{hh})$, the largest
#   $|\text{eigenvalue}|$ (Gelfand's formula). So the gradient grows like $\rho^{T-s}$ if
#   $\rho > 1$ and shrinks like $\rho^{T-s}$ if $\rho < 1$; $\sigma_{\max} \ge \rho$ is only an
#   upper bound, and for a random (non-symmetric) matrix it is well above $\rho$.
#
# Saturation adds to the vanishing: where $|h_t| \approx 1$ the factors $1 - h_t^2$ are close to
# 0 and cut the gradient whatever $W_{hh}$ is.
#
# ### Exercise 6 — `jacobian_norms`
# Compute $\|\partial h_T/\partial h_s\|_2$ for $s = 0, \dots, T$ for every sequence of a batch,
# from the states of a forward pass. With `H_all[:, t - 1]` holding $h_t$, build the product
# from the end: start with $G = I = \partial h_T/\partial h_T$, then repeatedly
# $G \leftarrow G\,J_s$ to get $\partial h_T / \partial h_{s-1}$. Batched, $J_s$ is a
# $(B, H, H)$ tensor, `@` multiplies batches of matrices, and
# `torch.linalg.matrix_norm(G, ord=2)` gives one spectral norm per sequence.


# %% nbgrader={"grade": false, "grade_id": "jacobian_norms", "locked": false, "schema_version": 3, "solution": true, "task": false}
def jacobian_norms(H_all, W_hh):
    """Spectral norms of dh_T/dh_s for s = 0, ..., T, for every sequence.

    Args:
        H_all: the states h_1 .. h_T of a forward pass, (B, T, H).  W_hh: (H, H).
    Returns:
        norms: (B, T + 1) with norms[:, s] = ||dh_T/dh_s||_2; so norms[:, T] = 1.
    Hint: J_s = diag(1 - h_s^2) W_hh^T as a batch: (1 - h_s**2)[:, :, None] * W_hh.T.
    """
    ### BEGIN SOLUTION
    B, T, H = H_all.shape
    G = torch.eye(H, dtype=H_all.dtype, device=H_all.device).expand(B, H, H)  # dh_T/dh_T
    norms = [torch.ones(B, dtype=H_all.dtype, device=H_all.device)]  # s = T
    for s in range(T, 0, -1):  # G = dh_T/dh_s  ->  dh_T/dh_(s-1)
        J = (1 - H_all[:, s - 1] ** 2)[:, :, None] * W_hh.T  # (B, H, H): dh_s/dh_(s-1)
        G = G @ J  # (B, H, H)
        norms.append(torch.linalg.matrix_norm(G, ord=2))  # (B,)
    return torch.stack(norms[::-1], dim=1)  # (B, T + 1), s = 0 first
    ### END SOLUTION


# %%
H_all, _ = rnn_forward_with_cache(*[t.detach() for t in layer_inputs])  # the run of section 2
print(jacobian_norms(H_all, layer_inputs[3].detach()))  # one row per sequence, ends with 1

# %% nbgrader={"grade": true, "grade_id": "test_jacobian_norms_matches_autograd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""jacobian_norms matches the norms of autograd Jacobians dh_T/dh_s.
When graded, more cases are checked outside the notebook."""
check_jacobian_norms(jacobian_norms)

# %% [markdown]
# ### Exercise 7 — `with_spectral_radius`
# To run controlled experiments, rescale a matrix to a chosen spectral radius
# $\rho(W) = \max_i |\lambda_i(W)|$. `torch.linalg.eigvals` returns the eigenvalues, which are
# complex for a non-symmetric matrix; their absolute values are real.


# %% nbgrader={"grade": false, "grade_id": "with_spectral_radius", "locked": false, "schema_version": 3, "solution": true, "task": false}
def with_spectral_radius(W, radius):
    """W rescaled so that its spectral radius (largest |eigenvalue|) is `radius`.

    Args:
        W: a square matrix, (H, H).  radius: a positive float.
    Returns:
        a new (H, H) tensor, W times a positive number; W itself is unchanged.
    Hint: scaling a matrix by c scales every eigenvalue by c.
    """
    ### BEGIN SOLUTION
    return W * (radius / torch.linalg.eigvals(W).abs().max())
    ### END SOLUTION


# %%
W_try = torch.randn(5, 5, dtype=torch.float64)
W_scaled = with_spectral_radius(W_try, 0.9)
print("rho:", torch.linalg.eigvals(W_scaled).abs().max().item())
print("largest singular value:", torch.linalg.matrix_norm(W_scaled, ord=2).item())

# %% nbgrader={"grade": true, "grade_id": "test_with_spectral_radius_sets_the_radius", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""with_spectral_radius returns a positive multiple of W with the requested spectral radius.
When graded, more cases are checked outside the notebook."""
check_with_spectral_radius(with_spectral_radius)

# %% [markdown]
# ### The measurement
#
# One random $W_{hh}$ (32 units), rescaled to $\rho = 0.5$, $1.0$ and $1.5$. With **quiet**
# inputs (zeros) the state stays at $h = 0$, where $\tanh$ is linear: the pure effect of
# $W_{hh}$. With **loud** inputs (large random ones) and $\rho = 1.5$ the states saturate.
# For each run we average $\|\partial h_T / \partial h_s\|$ over 8 sequences, and draw the bound
# $\sigma_{\max}(W_{hh})^{T-s}$ dashed, against the number of steps back, $T - s$.

# %%
set_seed(0)
NUM_STEPS, BATCH = 30, 8
W_base = torch.randn(NUM_HIDDENS, NUM_HIDDENS, dtype=torch.float64) / math.sqrt(NUM_HIDDENS)
W_in = torch.randn(4, NUM_HIDDENS, dtype=torch.float64)  # (D, H) with D = 4
h_zero, b_zero = (
    torch.zeros(BATCH, NUM_HIDDENS, dtype=torch.float64),
    torch.zeros(NUM_HIDDENS, dtype=torch.float64),
)
quiet = torch.zeros(BATCH, NUM_STEPS, 4, dtype=torch.float64)  # (B, T, D): the state stays at 0
loud = 3 * torch.randn(BATCH, NUM_STEPS, 4, dtype=torch.float64)  # (B, T, D): tanh saturates

flow, bounds = {}, {}
steps_back = list(range(NUM_STEPS, -1, -1))  # T - s for s = 0, ..., T
for label, radius, inputs in [
    ("ρ = 0.5", 0.5, quiet),
    ("ρ = 1.0", 1.0, quiet),
    ("ρ = 1.5", 1.5, quiet),
    ("ρ = 1.5, saturated", 1.5, loud),
]:
    W_hh = with_spectral_radius(W_base, radius)
    H_all, _ = rnn_forward_with_cache(inputs, h_zero, W_in, W_hh, b_zero)  # (B, T, H)
    flow[label] = jacobian_norms(H_all, W_hh).mean(dim=0)  # (T + 1,)
    sigma_max = torch.linalg.matrix_norm(W_hh, ord=2).item()
    if inputs is quiet:
        bounds[label] = [sigma_max**k for k in steps_back]
    saturated = (H_all.abs() > 0.95).double().mean().item()
    print(
        f"{label:20s} sigma_max = {sigma_max:.2f}  |h_t| > 0.95 for {saturated:4.0%} of units  "
        f"||dh_T/dh_0|| = {flow[label][0].item():.1e}"
    )

plot_log_curves(
    flow,
    x=steps_back,
    bounds=bounds,
    bound_label=r"bound $\sigma_{\max}(W_{hh})^{T-s}$",
    title="How much of the gradient at step T reaches step s",
    xlabel="steps back, T - s",
    ylabel=r"$\|\partial h_T / \partial h_s\|$",
)
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_gradient_flow_vanishes_and_explodes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""The measured gradient norms vanish (ρ = 0.5, saturated), explode (ρ = 1.5) or neither (ρ = 1)."""
check_gradient_flow(flow)

# %% [markdown]
# **Reading the plot.** On a log scale a geometric trend is a straight line with slope
# $\log \rho$.
# - $\rho = 0.5$: $\sigma_{\max} < 1$, so the bound already forces the gradient to vanish;
#   30 steps back less than a millionth of it is left.
# - $\rho = 1.5$: the gradient grows like $1.5^{T-s}$, below its bound $\sigma_{\max}^{T-s}$
#   (the bound is loose: $\sigma_{\max} \approx 1.7\,\rho$ for this random matrix).
# - $\rho = 1.0$: $\sigma_{\max} > 1$ yet the gradient neither vanishes nor explodes: the bound
#   says what *can* happen, the spectral radius what happens in the long run.
# - Saturated: the same $W_{hh}$ as the exploding run, yet the gradient vanishes: every
#   $1 - h_t^2 \approx 0$ cuts it.
#
# A vanilla RNN lives on this knife edge: to keep information for many steps it needs $\rho$ near
# 1 and unsaturated states, and training moves it off the edge in either direction. Vanishing
# gradients make long dependencies unlearnable (lesson 03's LSTM answers that); exploding ones
# wreck training, which the next section fixes.
#
# **Remember.** $\|\partial h_T/\partial h_s\|$ is a product of $T - s$ Jacobians
# $\operatorname{diag}(1 - h_t^2) W_{hh}^\top$: bounded by $\sigma_{\max}(W_{hh})^{T-s}$, growing
# or shrinking like $\rho(W_{hh})^{T-s}$ near $h = 0$, and cut by saturation.
#
# ## 5. Clipping exploding gradients
#
# When the gradient explodes, one optimizer step throws the weights far away and the loss
# jumps, often for good. **Gradient-norm clipping** (Pascanu et al., 2013) rescales the whole
# gradient when its norm is too large, keeping its direction:
#
# $$\|g\| = \sqrt{\textstyle\sum_{\text{tensors } p} \|g_p\|^2}, \qquad
#   g_p \leftarrow g_p \cdot \min\!\left(\frac{\texttt{max\_norm}}{\|g\| + 10^{-6}},\ 1\right).$$
#
# The norm is taken over **all** gradients together; every tensor gets the same factor. This is
# what `torch.nn.utils.clip_grad_norm_` does, and your version must agree with it. When a
# gradient is `inf` or `NaN` the norm is too, and your function must return it as it is: the
# returned norm is how a training loop notices and skips such a step (what the gradients
# become then does not matter; PyTorch multiplies them anyway, by 0 or NaN).
#
# ### Exercise 8 — `clip_grad_norm`


# %% nbgrader={"grade": false, "grade_id": "clip_grad_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def clip_grad_norm(grads, max_norm):
    """Rescale gradients in place so that their total 2-norm is at most max_norm.

    Args:
        grads: a list of gradient tensors, any shapes.  max_norm: a float.
    Returns:
        the total 2-norm of all gradients before clipping, a 0-dim tensor.
    Hint: one factor for all tensors, computed with `torch.clamp` (no `if`); `g.mul_(f)` is in place.
    """
    ### BEGIN SOLUTION
    total_norm = torch.sqrt(sum((g**2).sum() for g in grads))  # ()
    factor = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # ()
    for g in grads:
        g.mul_(factor)
    return total_norm
    ### END SOLUTION


# %%
grads = [
    torch.full((2, 2), 3.0, dtype=torch.float64),
    torch.full((3,), 4.0, dtype=torch.float64),
]  # norm sqrt(4 * 9 + 3 * 16) = sqrt(84)
print("total norm:", clip_grad_norm(grads, max_norm=1.0).item(), "should be", math.sqrt(84))
print("after clipping:", torch.sqrt(sum((g**2).sum() for g in grads)).item())

# %% nbgrader={"grade": true, "grade_id": "test_clip_grad_norm_matches_torch", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""clip_grad_norm matches torch.nn.utils.clip_grad_norm_ above and below max_norm.
When graded, more cases are checked outside the notebook."""
check_clip_grad_norm(clip_grad_norm)
check_clip_grad_norm(clip_grad_norm, max_norm=100.0)

# %% nbgrader={"grade": true, "grade_id": "test_clip_grad_norm_non_finite", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""clip_grad_norm returns the inf or NaN norm of inf or NaN gradients, like clip_grad_norm_."""
check_clip_grad_norm_non_finite(clip_grad_norm)

# %% [markdown]
# ### Exercise 9 — `train_step_clipped`
# One training step with clipping. The place matters: after `loss.backward()` has filled the
# gradients, before `optimizer.step()` uses them.


# %% nbgrader={"grade": false, "grade_id": "train_step_clipped", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_step_clipped(model, optimizer, X, Y, max_norm):
    """One step of gradient descent on the next-symbol loss, with gradient-norm clipping.

    Args:
        model: model(X) -> (logits (B, T, V), last state).  optimizer: a torch.optim optimizer.
        X, Y: symbol ids and next-symbol targets, (B, T).  max_norm: a float (inf: no clipping).
    Returns:
        (loss before the update, total gradient norm before clipping), two floats.
    Hint: the gradients are [p.grad for p in model.parameters()].
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    logits, _ = model(X)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    loss.backward()
    grad_norm = clip_grad_norm([p.grad for p in model.parameters() if p.grad is not None], max_norm)
    optimizer.step()
    return loss.item(), grad_norm.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_step_clipped_clips_before_the_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""train_step_clipped clips the gradient between backward() and step().
When graded, more cases are checked outside the notebook."""
check_train_step_clipped(train_step_clipped)

# %% [markdown]
# ### An explosion, with and without clipping
#
# A model built to explode: $W_{hh}$ at spectral radius 1.5 and small input weights, so that
# the states start in the linear regime where gradients grow like $1.5^{T}$; 40-step windows of
# the pattern; plain SGD with a large learning rate ($\eta = 2$). The same run twice: without
# clipping (`max_norm = inf`), and clipped at 0.25, so that no step moves the weights by more
# than $\eta \cdot 0.25 = 0.5$.


# %%
def explosive_model(seed=0):
    set_seed(seed)
    model = CharRNN(VOCAB_SIZE, NUM_HIDDENS)
    with torch.no_grad():
        W = torch.randn(NUM_HIDDENS, NUM_HIDDENS) / math.sqrt(NUM_HIDDENS)
        model.rnn.weight_hh_l0.copy_(with_spectral_radius(W, 1.5))
        model.rnn.weight_ih_l0.mul_(0.1)
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
    return model


def clipping_run(max_norm, num_iters=120, seed=0):
    model = explosive_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    g = torch.Generator().manual_seed(seed)
    losses, norms = [], []
    for _ in range(num_iters):
        X, Y = periodic_batch(PATTERN, 32, 40, generator=g)  # (32, 40)
        loss, norm = train_step_clipped(model, optimizer, X, Y, max_norm)
        losses.append(loss)
        norms.append(norm)
    return losses, norms


unclipped_losses, unclipped_norms = clipping_run(math.inf)
clipped_losses, clipped_norms = clipping_run(0.25)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
plot_curves(
    {"no clipping": unclipped_losses, "clipped at 0.25": clipped_losses},
    ax=axes[0],
    title="Training loss",
    xlabel="iteration",
    logy=True,
    reference={"chance: log V": math.log(VOCAB_SIZE)},
)
plot_curves(
    {"no clipping": unclipped_norms, "clipped at 0.25": clipped_norms},
    ax=axes[1],
    title="Gradient norm before clipping",
    xlabel="iteration",
    ylabel="||g||",
    logy=True,
)
plt.show()

# %% nbgrader={"grade": true, "grade_id": "test_clipping_tames_the_explosion", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""Without clipping the loss explodes; clipped at 0.25, the same run learns the pattern."""
check_clipping_tames_explosion(unclipped_losses, clipped_losses, vocab_size=VOCAB_SIZE)

# %% [markdown]
# **Reading the curves.** Without clipping, a few early steps with a large gradient throw the
# weights into a region where the loss is many times worse than guessing, and plain SGD never
# finds its way back. Clipped, the very same gradients only set the *direction* of a step of
# bounded size, and the run learns the pattern. Clipping does nothing against *vanishing*
# gradients: for those the architecture has to change (lessons 03 and 04).
#
# **Remember.** Clip the global norm of all gradients, after `backward()` and before `step()`;
# watch the norm it returns (a spike means an explosion, `inf` or `NaN` a step to skip).
#
# ## Exercises to go further (not graded)
# 1. Clip at `max_norm` 0.01, 1 and 10 in the explosion run. Which trains fastest, why does
#    too small a threshold slow training down, and why does too large a one not help?
# 2. Compare with clipping by value (`torch.nn.utils.clip_grad_value_`). Which one keeps the
#    gradient's direction?
# 3. Repeat the measurement of section 4 with an **orthogonal** $W_{hh}$
#    (`torch.linalg.qr(torch.randn(H, H)).Q`): what are its singular values, and what happens to
#    the gradient in the linear regime? Why is it a popular initialisation?
# 4. Run truncated BPTT with $k = 3$. Where does the loss stop, and why?
# 5. Gradient-check `readout_backward`'s `dW_hy` with `eps` from $10^{-1}$ down to $10^{-12}$
#    and plot the relative error against `eps` (both axes logarithmic). Why does it fall like
#    $\varepsilon^2$ on the right, rise like $10^{-16}/\varepsilon$ on the left, and bottom out
#    near $\varepsilon = 10^{-5}$? Where would the bottom be in float32, and with a one-sided
#    difference?
#
# ## Summary
# - One step backwards: $\delta a_t = \delta h_t \odot (1 - h_t^2)$, then `dx_t = da @ W_xh.T`,
#   `dh_prev = da @ W_hh.T`, `dW_xh = x_t.T @ da`, `dW_hh = h_prev.T @ da`, `db_h = da.sum(0)`.
# - Through time: the gradient reaching $h_t$ is `dH[:, t]` plus the next step's `dh_prev`, and
#   shared weights sum their gradients over all steps.
# - The softmax cross-entropy sends `dlogits = (p - onehot(y)) / N` back into the read-out,
#   whose `dH = dlogits @ W_hy.T` is where BPTT starts; subtract the max before `exp`.
# - Prove a backward pass with autograd, and without it with centred differences in float64
#   (perturb in place, restore, divide by $2\varepsilon$; relative error below $10^{-7}$),
#   on the whole loss at once.
# - Truncated BPTT carries the state and detaches it at chunk boundaries; the chunk length
#   bounds the dependencies the gradient can teach.
# - $\|\partial h_T/\partial h_s\| \le \sigma_{\max}(W_{hh})^{T-s}$; in the linear regime it
#   behaves like $\rho(W_{hh})^{T-s}$; saturation makes it vanish. Gradient-norm clipping tames
#   explosions, nothing here cures vanishing.
#
# The whole notebook runs in about 20 seconds on two CPU cores, a third of it importing
# PyTorch. Next: **lesson 03** builds the LSTM, whose additive cell state lets gradients survive
# hundreds of steps.
