"""Lesson 03's checks, gradients through time and the memory task (recall)."""

import math

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    matches,
)
from rnncourse.checks._core import (
    randn as _randn,
)


def _linear_recurrence(H, *, two_states, dtype, device, seed):
    """A linear recurrence with a closed-form gradient, as a ``step`` and its coefficients.

    One state:  h_t = a h_{t-1} + 2 x_t.  Two states: (h_t, c_t) = M (h_{t-1}, c_{t-1}) +
    (2 x_t, 0) per unit, with a 2 x 2 matrix M per unit. Then for L = h_T.sum(),
    dL/dh_t = (M^(T - t))[0, 0] for every batch row.
    """
    g = torch.Generator().manual_seed(seed)
    if two_states:
        M = (
            torch.stack(
                [
                    torch.stack(
                        [torch.rand(H, generator=g) * 0.4, torch.rand(H, generator=g) * 0.3]
                    ),
                    torch.stack(
                        [torch.rand(H, generator=g) * 0.3, 0.5 + torch.rand(H, generator=g) * 0.4]
                    ),
                ]
            )
            .permute(2, 0, 1)
            .to(dtype=torch.float64)
        )  # (H, 2, 2): rows (h, c), columns (h, c)
    else:
        M = (0.4 + torch.rand(H, 1, 1, generator=g) * 0.55).to(torch.float64)  # (H, 1, 1)
    M_dev = M.to(dtype=dtype, device=device)

    def step(x_t, state):
        h, *rest = state
        if not two_states:
            return (h * M_dev[:, 0, 0] + 2 * x_t,)
        c = rest[0]
        h_new = h * M_dev[:, 0, 0] + c * M_dev[:, 0, 1] + 2 * x_t
        c_new = h * M_dev[:, 1, 0] + c * M_dev[:, 1, 1]
        return h_new, c_new

    return step, M


def _closed_form_norms(M, batch_size, num_steps):
    """||dL/dh_t|| for t = 1..T of the linear recurrence: sqrt(B * sum_j (M_j^(T-t))[0, 0]^2)."""
    powers = [torch.linalg.matrix_power(M, num_steps - t)[:, 0, 0] for t in range(1, num_steps + 1)]
    return torch.stack([math.sqrt(batch_size) * p.norm() for p in powers])  # (T,)


def check_state_gradient_norms(
    state_gradient_norms,
    *,
    batch_size=3,
    num_steps=12,
    num_hiddens=4,
    two_states=True,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """state_gradient_norms(step, X, state0) must return ||dL/dh_t||, t = 1..T, L = h_T.sum().

    Graded on linear recurrences whose gradients have a closed form, then run on a real
    nn.LSTMCell, where the last entry must be ||ones(B, H)|| = sqrt(B H).
    """
    B, T, H = batch_size, num_steps, num_hiddens
    g = torch.Generator().manual_seed(seed + 5)
    X = _randn(B, T, H, dtype=dtype, device=device, g=g)
    step, M = _linear_recurrence(H, two_states=two_states, dtype=dtype, device=device, seed=seed)
    zeros = torch.zeros(B, H, dtype=dtype, device=device)
    state0 = (zeros, zeros.clone()) if two_states else (zeros,)
    tol = {"rtol": 1e-8, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-7}

    norms = call_student(state_gradient_norms, step, X, state0, shared=(1,))  # X: inspected
    if X.requires_grad:
        raise CheckFailed(
            "state_gradient_norms changed X: the caller's X now requires gradients. Leave it "
            "as it was: work on X.detach().requires_grad_()."
        )
    expect_tensor("norms", norms, (T,), "(T,), one entry per time step")
    want = _closed_form_norms(M, B, T).to(dtype=dtype, device=device)
    if not matches(norms, want, **tol):
        got = norms.detach().to(want.dtype)
        if torch.allclose(got, want.flip(0), **tol):
            hint = "the order is reversed: norms[0] is for h_1 (the first step), norms[-1] for h_T."
        elif torch.allclose(got[1:], want[:-1], **tol):
            hint = (
                "off by one step: norms[t - 1] is ||dL/dh_t|| for t = 1..T (h_0 is not included)."
            )
        elif torch.allclose(got, 2 * want, **tol):
            hint = (
                "these are the gradients with respect to the inputs x_t; take them with "
                "respect to the hidden states h_t returned by each step."
            )
        elif torch.allclose(got, want**2, **tol):
            hint = "these are squared norms: use the Euclidean norm, tensor.norm()."
        elif torch.allclose(got * B * H, want, **tol):
            hint = "L is the sum of h_T's entries, h_T.sum(), not the mean."
        elif torch.allclose(got[-1], want[-1], **tol) and (got[:-1].abs() < 1e-12).all():
            hint = (
                "only the last step has a gradient: the states must stay connected (no .detach(),"
                " no torch.no_grad()), and gradients taken with respect to every h_t."
            )
        else:
            hint = (
                "norms[t - 1] must be the norm of dL/dh_t over the whole batch, for L = h_T.sum() "
                "and the h_t of the same forward pass (torch.autograd.grad(L, hs))."
            )
        expect_close("norms", norms, want, hint=hint, **tol)
    # A real cell: finite, positive, and the last gradient is dL/dh_T = ones.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cell = nn.LSTMCell(H, H).to(dtype=dtype, device=device)
    norms = call_student(
        state_gradient_norms, lambda x_t, s: cell(x_t, s), X, (zeros, zeros.clone())
    )
    expect_tensor("norms", norms, (T,), "(T,)")
    if not (
        torch.isfinite(norms).all()
        and math.isclose(norms[-1].item(), math.sqrt(B * H), rel_tol=1e-4)
    ):
        raise CheckFailed(
            "On an nn.LSTMCell the last norm should be ||dL/dh_T|| = ||ones(B, H)|| = "
            f"{math.sqrt(B * H):.4g}; got {norms[-1].item():.4g}: L = h_T.sum() and the "
            "norms are taken over the whole batch."
        )
    kind = "(h, c)" if two_states else "(h,)"
    print(
        f"state_gradient_norms matches the closed form (state {kind}, B={B}, T={T}, H={H}, "
        f"{dtype})."
    )


def decay_rate(norms) -> float:
    """Decades lost per step going back in time: the least-squares slope of log10 ||dL/dh_t||."""
    y = torch.as_tensor(norms, dtype=torch.float64).log10()
    t = torch.arange(len(y), dtype=torch.float64)
    t_c, y_c = t - t.mean(), y - y.mean()
    return ((t_c * y_c).sum() / (t_c * t_c).sum()).item()


def check_lstm_gradient_decays_slower(
    state_gradient_norms,
    lstm_cell_forward,
    *,
    batch_size=8,
    num_steps=40,
    num_hiddens=32,
    forget_bias=1.0,
    seed=0,
    max_ratio=0.6,
):
    """With PyTorch's default initialisation and the forget-gate bias at 1, the LSTM's
    ||dL/dh_t|| shrinks more slowly going back in time than a vanilla RNN's on the same input."""
    B, T, H = batch_size, num_steps, num_hiddens
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lstm_cell = nn.LSTMCell(H, H).double()
        rnn_cell = nn.RNNCell(H, H).double()
    with torch.no_grad():
        lstm_cell.bias_ih[H : 2 * H] = forget_bias
        lstm_cell.bias_hh[H : 2 * H] = 0
    params = {name: p.detach() for name, p in lstm_cell.named_parameters()}
    X = torch.randn(B, T, H, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    zeros = torch.zeros(B, H, dtype=torch.float64)
    lstm_norms = call_student(
        state_gradient_norms,
        lambda x_t, s: lstm_cell_forward(x_t, s, params),
        X,
        (zeros, zeros.clone()),
    )
    rnn_norms = call_student(
        state_gradient_norms, lambda x_t, s: (rnn_cell(x_t, s[0]),), X, (zeros,)
    )
    for name, norms in (("LSTM norms", lstm_norms), ("RNN norms", rnn_norms)):
        expect_tensor(name, norms, (T,), "(T,)")
        if not (torch.isfinite(norms).all() and (norms > 0).all()):
            raise CheckFailed(f"{name} should be finite and positive; got {norms.tolist()[:5]}...")
    lstm_rate, rnn_rate = decay_rate(lstm_norms.detach()), decay_rate(rnn_norms.detach())
    if rnn_rate <= 0:
        raise CheckFailed(
            f"the RNN's norms do not grow towards the last step (slope {rnn_rate:.3f} decades per "
            "step): norms[0] is for h_1, norms[-1] for h_T, where the loss is."
        )
    if lstm_rate < max_ratio * rnn_rate:
        print(
            f"Going back in time the LSTM loses {lstm_rate:.3f} decades of gradient per step, "
            f"the RNN {rnn_rate:.3f}: the LSTM's gradient decays slower."
        )
        return
    raise CheckFailed(
        f"the LSTM loses {lstm_rate:.3f} decades per step and the RNN {rnn_rate:.3f}; expected "
        f"the LSTM below {max_ratio} x the RNN's rate. If lstm_cell_forward passes its checks, "
        "look at state_gradient_norms; a forget gate applied to h_prev instead of c_prev "
        "breaks the cell state's direct path."
    )


@torch.no_grad()
def recall_accuracy(model, num_steps, *, num_symbols, num_distractors, batch_size=512, seed=0):
    """Accuracy of ``model`` (ids (B, T) -> logits (B, K)) at recalling the first symbol."""
    from rnncourse.toy_tasks import recall_batch

    g = torch.Generator().manual_seed(seed + 6)
    X, y = recall_batch(batch_size, num_steps, num_symbols, num_distractors, generator=g)
    logits = model(X)
    return (logits.argmax(-1) == y).double().mean().item()


def check_recall_model(model, num_steps, *, num_symbols=4, num_distractors=4, min_accuracy=0.95):
    """A trained model recalls the first symbol of a sequence after num_steps - 1 distractors."""
    try:
        accuracy = recall_accuracy(
            model, num_steps, num_symbols=num_symbols, num_distractors=num_distractors
        )
    except Exception as err:
        raise CheckFailed(f"running the model failed with {type(err).__name__}: {err}") from err
    chance = 1 / num_symbols
    if accuracy >= min_accuracy:
        print(
            f"The model recalls the first symbol {num_steps} steps later: accuracy {accuracy:.1%}."
        )
        return
    hint = (
        "it is at chance: the first symbol is forgotten. Is the forget-gate bias set to 1 "
        "before training, and is the model trained?"
        if accuracy < chance + 0.1
        else "it learns but not enough: train longer."
    )
    raise CheckFailed(
        f"accuracy {accuracy:.1%} (need >= {min_accuracy:.0%}; chance is {chance:.0%}): {hint}"
    )
