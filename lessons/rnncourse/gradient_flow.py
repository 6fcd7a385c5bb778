"""Lesson 03's measurement of how far back a gradient reaches, given from lesson 04 on.

Lesson 03 asks you to write ``state_gradient_norms``; lesson 04 reuses it from here instead
of a copy. Lesson 03's grader runs your answers with this module unavailable, so importing
it there is not an answer.
"""

import torch


def state_gradient_norms(step, X, state0) -> torch.Tensor:
    """||dL/dh_t|| for t = 1..T, where L = h_T.sum(), for the recurrence ``step``.

    Args:
        step: function (x_t (B, D), state) -> next state, a tuple whose first entry is h_t (B, H).
        X: inputs, (B, T, D).  state0: the initial state, a tuple like step's result.
    Returns:
        norms: (T,), norms[t - 1] = the norm of dL/dh_t over the whole batch.
    """
    X = X.detach().requires_grad_()  # puts every h_t on autograd's graph
    state, hs = state0, []
    for t in range(X.shape[1]):
        state = step(X[:, t], state)
        hs.append(state[0])  # (B, H)
    grads = torch.autograd.grad(hs[-1].sum(), hs)  # T tensors, each (B, H)
    return torch.stack([g.norm() for g in grads])  # (T,)
