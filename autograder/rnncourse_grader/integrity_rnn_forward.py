"""Integrity probes for lesson 01 (vanilla RNN): the same properties as its tests, checked outside.

Recipes (``call``, ``params_then_forward``, ``loss_and_grad``, ``one_step``) run in the
student's sandboxed process; ``*_cases``, ``*_expected`` and ``*_compare`` run in the grader,
where the reference is PyTorch's own modules.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks.rnn import (
    reference_rnn_cell,
    reference_rnn_forward,
    reference_sequence_loss,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    case_sizes,
    compare_tensor,
    describe,
    recorder,
    swapped,
)

# ----------------------------------------------------------------------------- student side


def params_then_forward(ns, function, case):
    """Parameters read from an nn.RNN by the student, run through the student's rnn_forward;
    and the names of those that still require gradients (the docstring says: detached)."""
    D, H = case["D"], case["H"]
    rnn = nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, name).copy_(case[name])
    params = ns[function](rnn)
    attached = [k for k, p in params.items() if getattr(p, "requires_grad", False)]
    with torch.no_grad():
        H_all, _ = ns["rnn_forward"](case["X"], None, params["W_xh"], params["W_hh"], params["b_h"])
    return [H_all, attached]


def loss_and_grad(ns, function, case):
    logits = case["logits"].requires_grad_(True)
    loss = ns[function](logits, case["targets"], case["mask"])
    (grad,) = torch.autograd.grad(loss, logits)
    return [loss, grad]


class TinyNextSymbol(nn.Module):
    """A one-layer next-symbol model: one-hot(x_t) W + b, at every step (B, T) -> (B, T, V)."""

    def __init__(self, W, b):
        super().__init__()
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())

    def forward(self, X):
        return F.one_hot(X, self.W.shape[0]).to(self.W.dtype) @ self.W + self.b  # (B, T, V)


def one_step(ns, function, case):
    """One call of the student's train_step on a model whose gradients an earlier step left
    dirty: the loss it returned and the gradients each ``optimizer.step()`` applied.

    The notebook's own loss is swapped for the public reference, so that this checks the
    training step and not (again) the student's sequence_loss.
    """
    model = TinyNextSymbol(case["W"], case["b"])
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    optimizer = recorder(model.parameters(), lr=0.1)
    with swapped(ns, "sequence_loss", reference_sequence_loss):
        loss = ns[function](model, optimizer, case["X"], case["Y"], case["mask"])
    return [loss, optimizer.applied]


# ----------------------------------------------------------------------------- grader side


F32 = np.float32
# The grader's cases: sizes that catch known bugs (B = 1, D != H both ways, T = 1, float32,
# no initial state), then random ones. A failure's message names the case.
CELL_SIZES = [
    {"B": 1, "D": 7, "H": 2},
    {"B": 9, "D": 2, "H": 6},
    {"B": 5, "D": 4, "H": 4, "dtype": F32},
]
FORWARD_SIZES = [
    {"B": 2, "T": 1, "D": 3, "H": 4},
    {"B": 1, "T": 9, "D": 6, "H": 2},
    {"B": 4, "T": 5, "D": 3, "H": 3, "dtype": F32},
    {"B": 3, "T": 4, "D": 2, "H": 5, "zero_state": True},
]


def _rnn_params(rng, D, H, dtype):
    """W_xh (D, H), W_hh (H, H), b_h (H,): large enough that tanh is not linear."""
    return [
        (rng.standard_normal((D, H)) * 0.6).astype(dtype),
        (rng.standard_normal((H, H)) * 0.4).astype(dtype),
        (rng.standard_normal(H) * 0.5).astype(dtype),
    ]


def cell_cases(rng):
    cases = []
    for s in case_sizes(rng, CELL_SIZES):
        B, D, H, dt = s["B"], s["D"], s["H"], s["dtype"]
        x_t = rng.standard_normal((B, D)).astype(dt)
        h_prev = np.tanh(rng.standard_normal((B, H))).astype(dt)
        cases.append({"label": s["label"], "args": [x_t, h_prev, *_rnn_params(rng, D, H, dt)]})
    return cases


def cell_expected(case):
    return reference_rnn_cell(*[as_tensor(a) for a in case["args"]])


def cell_compare(got, want, case):
    return compare_tensor("h_t", got, want)


def forward_cases(rng):
    cases = []
    for s in case_sizes(rng, FORWARD_SIZES):
        B, T, D, H, dt = s["B"], s["T"], s["D"], s["H"], s["dtype"]
        X = rng.standard_normal((B, T, D)).astype(dt)
        h0 = None if s["zero_state"] else np.tanh(rng.standard_normal((B, H))).astype(dt)
        cases.append({"label": s["label"], "args": [X, h0, *_rnn_params(rng, D, H, dt)]})
    return cases


def forward_expected(case):
    X, h0, *params = as_tensor(case["args"])
    return reference_rnn_forward(X, h0, *params)


def forward_compare(got, want, case):
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"rnn_forward returned {describe(got)}; expected a pair (H_all, h_T)"
    return compare_tensor("H_all", got[0], want[0]) or compare_tensor("h_T", got[1], want[1])


def params_cases(rng):
    cases = []
    for s in case_sizes(rng, [{"D": 1, "H": 4}, {"D": 8, "H": 3}]):
        D, H = s["D"], s["H"]
        case = {"label": s["label"], "D": D, "H": H, "X": rng.standard_normal((2, 4, D))}
        shapes = {
            "weight_ih_l0": (H, D),
            "weight_hh_l0": (H, H),
            "bias_ih_l0": (H,),
            "bias_hh_l0": (H,),
        }
        case.update({k: rng.uniform(-0.8, 0.8, size=s) for k, s in shapes.items()})
        cases.append(case)
    return cases


def params_expected(case):
    rnn = nn.RNN(case["D"], case["H"], batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, name).copy_(as_tensor(case[name]))
        out, _ = rnn(as_tensor(case["X"]))
    return out


def params_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"rnn_params_from_torch gave {describe(got)}"
    H_all, attached = got
    if attached:
        return f"{', '.join(map(str, attached))} still require gradients: return detached tensors"
    return compare_tensor("rnn_forward's output with your parameters", H_all, want)


def count_cases(rng):
    """Sizes of the lesson's own models, then random ones."""
    fixed = [(2, 9, 4), (50, 128, 2), (300, 64, 1)]
    drawn = [tuple(int(v) for v in rng.integers(1, 300, size=3)) for _ in range(2)]
    return [{"args": list(args)} for args in fixed + drawn]


def count_expected(case):
    D, H, O = case["args"]
    return sum(p.numel() for m in (nn.RNN(D, H), nn.Linear(H, O)) for p in m.parameters())


def count_compare(got, want, case):
    if type(got) is not int:
        return f"rnn_num_params returned {describe(got)}; expected an int"
    return None if got == want else f"rnn_num_params{tuple(case['args'])} = {got}; expected {want}"


LOSS_SIZES = [
    {"B": 1, "T": 1, "V": 3},
    {"B": 6, "T": 9, "V": 11},
    {"B": 4, "T": 7, "V": 5, "dtype": F32},
]


def loss_cases(rng):
    cases = []
    for s in case_sizes(rng, LOSS_SIZES):
        B, T, V, dt = s["B"], s["T"], s["V"], s["dtype"]
        lengths = rng.integers(1, T + 1, size=B)
        mask = np.arange(T)[None, :] < lengths[:, None]
        cases.append(
            {
                "label": s["label"],
                "logits": (rng.standard_normal((B, T, V)) * 2).astype(dt),
                "targets": rng.integers(0, V, size=(B, T)).astype(np.int64),
                "mask": mask,
            }
        )
    return cases


def loss_expected(case):
    logits = as_tensor(case["logits"]).requires_grad_(True)
    loss = reference_sequence_loss(logits, as_tensor(case["targets"]), as_tensor(case["mask"]))
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


def loss_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"sequence_loss gave {describe(got)}"
    return compare_tensor("loss", got[0], want[0]) or compare_tensor(
        "the gradient of the loss", got[1], want[1]
    )


def step_cases(rng):
    """A burn-in and a shorter sequence, no padding at all, one sequence of one step."""
    cases = []
    for label, (B, T, V) in (
        ("with padding", (4, 7, 5)),
        ("no padding", (3, 5, 4)),
        ("B = 1, T = 1", (1, 1, 3)),
    ):
        X = rng.integers(0, V, size=(B, T)).astype(np.int64)
        mask = np.ones((B, T), dtype=bool)
        if label == "with padding":
            mask[:, :2] = False
            mask[0, 5:] = False
        W, b = rng.standard_normal((V, V)) * 0.5, rng.standard_normal(V) * 0.1
        Y = rng.integers(0, V, size=(B, T)).astype(np.int64)
        cases.append({"label": label, "W": W, "b": b, "X": X, "Y": Y, "mask": mask})
    return cases


def step_expected(case):
    """The masked loss before the update, and its gradient for (W, b)."""
    model = TinyNextSymbol(as_tensor(case["W"]), as_tensor(case["b"]))
    X, Y, mask = (as_tensor(case[k]) for k in ("X", "Y", "mask"))
    loss = reference_sequence_loss(model(X), Y, mask)
    return loss.item(), torch.autograd.grad(loss, list(model.parameters()))


def step_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"train_step gave {describe(got)}"
    loss, applied = got
    want_loss, want_grads = want
    if not isinstance(applied, list) or len(applied) != 1:
        n = len(applied) if isinstance(applied, list) else "?"
        return f"one train_step called optimizer.step() {n} times; expected once"
    grads = applied[0]
    if any(g is None for g in grads):
        return "optimizer.step() ran with no gradient: call loss.backward() before it"
    for name, g, w in zip(("W", "b"), grads, want_grads, strict=True):
        if compare_tensor(name, g, w):
            return (
                f"the gradient optimizer.step() applied to {name} is not that of "
                "sequence_loss(model(X), Y, mask) from fresh gradients"
            )
    if not isinstance(loss, float) or not math.isclose(loss, want_loss, rel_tol=1e-9):
        return f"train_step returned {describe(loss)}; expected the loss {want_loss:.6g} (a float)"
    return None


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "rnn_cell_forward": Method("call", cell_cases, cell_expected, cell_compare),
    "rnn_forward": Method("call", forward_cases, forward_expected, forward_compare),
    "rnn_params_from_torch": Method(
        "params_then_forward", params_cases, params_expected, params_compare
    ),
    "rnn_num_params": Method("call", count_cases, count_expected, count_compare),
    "sequence_loss": Method("loss_and_grad", loss_cases, loss_expected, loss_compare),
    "train_step": Method("one_step", step_cases, step_expected, step_compare),
}
