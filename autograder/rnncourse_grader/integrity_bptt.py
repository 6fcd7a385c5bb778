"""Integrity probes for lesson 02 (BPTT): the same properties as its tests, checked outside.

The student's functions are called in the sandboxed runner on inputs made here (``call``,
``differences``, ``clip_and_return``, ``scale_and_return``); the expected values are
PyTorch's autograd, ``nn.RNN``, ``F.cross_entropy`` and ``clip_grad_norm_``, and the closed
forms of a polynomial's finite differences, computed in the grader. The training loops get a
``RecordingRNN`` (the visible checks' model) and an optimizer that records what each step
applied (``chunks_trained``, ``clipped_step``); the grader replays the reference loop on the
same model and compares the losses and every applied gradient.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from rnncourse.checks.bptt import (
    CUBIC_ERROR,
    MAX_NUMERICAL_ERROR,
    RESTORE_TOLERANCE,
    RecordingRNN,
    cubic,
    cubic_differences,
    reference_jacobian_norms,
    reference_readout_backward,
    reference_rnn_backward,
    reference_rnn_cell_backward,
    smooth,
    without_autograd,
)
from rnncourse.checks.rnn import reference_rnn_forward
from rnncourse.numerics import rel_error_norm
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    case_sizes,
    compare_all,
    compare_tensor,
    describe,
    recorder,
    sizes,
    swapped,
)

CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
LAYER_GRADS = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")


def _params(rng, D, H, dtype):
    """W_xh (D, H), W_hh (H, H), b_h (H,): large enough that tanh is not linear."""
    return [
        (rng.standard_normal((D, H)) * 0.6).astype(dtype),
        (rng.standard_normal((H, H)) * 0.5).astype(dtype),
        (rng.standard_normal(H) * 0.5).astype(dtype),
    ]


def _numpy(tensor):
    return tensor.detach().numpy()


# ----------------------------------------------------------------------------- student side


def differences(ns, function, case):
    """numerical_gradient on a known function of a tensor made here (a cubic or a smooth
    function, run without autograd as in the test): its result, and x after the call."""
    x, coefficients = case["x"], case["coefficients"]
    known = cubic if case["f"] == "cubic" else smooth
    f = without_autograd(lambda: known(*coefficients, x)[0])
    eps = () if case["eps"] is None else (case["eps"],)  # None: the answer's default eps
    return [ns[function](f, x, *eps), x]


def clip_and_return(ns, function, case):
    """clip_grad_norm clips in place: its norm and the gradients after the call come back."""
    grads = case["grads"]
    norm = ns[function](grads, case["max_norm"])
    return [norm, grads]


def chunks_trained(ns, function, case):
    """The student's truncated BPTT on a RecordingRNN: its losses, and the gradients each
    ``optimizer.step()`` applied."""
    model = RecordingRNN(case["V"], case["H"], seed=case["seed"])
    optimizer = recorder(model.parameters(), lr=0.5)
    losses = ns[function](model, optimizer, case["X"], case["Y"], case["k"])
    return [losses, optimizer.applied]


def reference_clip(grads, max_norm):
    """clip_grad_norm as the lesson asks (in place, returns the total norm): torch's rule."""
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(factor)
    return norm


def clipped_step(ns, function, case):
    """One call of the student's train_step_clipped on a RecordingRNN: what it returned, the
    gradients each ``optimizer.step()`` applied, and how many times it ran the model. The
    notebook's clip_grad_norm is swapped for the reference: this checks the step, not (again)
    the student's clipping."""
    model = RecordingRNN(case["V"], case["H"], seed=case["seed"])
    optimizer = recorder(model.parameters(), lr=0.1)
    with swapped(ns, "clip_grad_norm", reference_clip):
        result = ns[function](model, optimizer, case["X"], case["Y"], case["max_norm"])
    return [result, optimizer.applied, len(model.calls)]


def scale_and_return(ns, function, case):
    """with_spectral_radius must leave W unchanged: its result and W after the call."""
    W = case["W"]
    return [ns[function](W, case["radius"]), W]


def _states(X, h0, W_xh, W_hh, b_h):
    """h_0 .. h_T of the reference forward pass, numpy (B, H) each."""
    H_all = _numpy(reference_rnn_forward(*as_tensor([X, h0, W_xh, W_hh, b_h]))[0])
    return [h0] + [H_all[:, t] for t in range(X.shape[1])]


# ----------------------------------------------------------------------------- rnn_cell_backward
F32 = np.float32
# The grader's cases: sizes that catch known bugs (B = 1, T = 1, D != H both ways, float32,
# an upstream gradient on the last step only or on every other step), then random ones.
CELL_SIZES = [
    {"B": 1, "D": 7, "H": 2},
    {"B": 6, "D": 2, "H": 6},
    {"B": 3, "D": 4, "H": 4, "dtype": F32},
    {"B": 1, "D": 5, "H": 3},
]


def cell_cases(rng):
    cases = []
    for s in case_sizes(rng, CELL_SIZES):
        B, D, H, dt = s["B"], s["D"], s["H"], s["dtype"]
        x_t = rng.standard_normal((B, D)).astype(dt)
        h_prev = np.tanh(rng.standard_normal((B, H))).astype(dt)
        W_xh, W_hh, b_h = _params(rng, D, H, dt)
        h_t = _states(x_t[:, None], h_prev, W_xh, W_hh, b_h)[1]
        dh_next = rng.standard_normal((B, H)).astype(dt)
        args = [dh_next, [x_t, h_prev, h_t, W_xh, W_hh]]
        cases.append({"label": s["label"], "args": args, "b_h": b_h})
    return cases


def cell_expected(case):
    dh_next, (x_t, h_prev, _, W_xh, W_hh) = case["args"]
    return reference_rnn_cell_backward(
        *map(as_tensor, (dh_next, x_t, h_prev, W_xh, W_hh, case["b_h"]))
    )


def cell_compare(got, want, case):
    return compare_all("rnn_cell_backward", CELL_GRADS, got, want)


# ----------------------------------------------------------------------------- numerical_gradient
DIFFERENCES = [  # (known function, shape of x or None for drawn, eps or None for the default)
    ("cubic", (1,), 0.05),  # a single entry
    ("cubic", (2, 3, 2), 0.1),
    ("smooth", (5,), None),
    ("cubic", None, 0.02),
    ("smooth", None, None),
]


def differences_cases(rng):
    cases = []
    for f, shape, eps in DIFFERENCES:
        shape = shape or tuple(sizes(rng, int(rng.integers(1, 4)), high=5))
        at = "the default eps" if eps is None else f"eps = {eps}"
        count = 2 if f == "cubic" else 1  # cubic: a, b; smooth: w
        cases.append(
            {
                "label": f"a {f} function of x of shape {shape}, {at}",
                "f": f,
                "eps": eps,
                "x": rng.standard_normal(shape),
                "coefficients": [rng.standard_normal(shape) for _ in range(count)],
            }
        )
    return cases


def differences_expected(case):
    """What the centred difference gives: exactly, for a cubic; the gradient, for the other."""
    x, coefficients = as_tensor(case["x"]), as_tensor(case["coefficients"])
    if case["f"] == "cubic":
        return cubic_differences(*coefficients, x, case["eps"])["centred"]
    return smooth(*coefficients, x)[1]


def differences_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"numerical_gradient gave {describe(got)}"
    grad, x_after = got
    if not isinstance(grad, torch.Tensor) or tuple(grad.shape) != tuple(want.shape):
        return f"numerical_gradient returned {describe(grad)}; expected one shaped like x"
    if grad.dtype != torch.float64:
        return f"numerical_gradient returned a {grad.dtype} tensor; expected float64 like x"
    x = as_tensor(case["x"])
    restored = isinstance(x_after, torch.Tensor) and x_after.shape == x.shape
    if not (restored and torch.allclose(x_after, x, rtol=0, atol=RESTORE_TOLERANCE)):
        return "x is not restored after the call: put each entry back after its two evaluations"
    error = rel_error_norm(grad, want)
    if case["f"] == "cubic" and not error < CUBIC_ERROR:
        return (
            f"relative error {error:.2g} against the centred difference "
            "(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)"
        )
    if case["f"] == "smooth" and not error < MAX_NUMERICAL_ERROR:
        return (
            f"relative error {error:.2g} against the exact gradient; need < {MAX_NUMERICAL_ERROR:g}"
        )
    return None


# ----------------------------------------------------------------------------- rnn_backward
BACKWARD_SIZES = [
    {"B": 1, "T": 7, "D": 2, "H": 5, "upstream": "dense"},
    {"B": 4, "T": 3, "D": 6, "H": 3, "upstream": "dense", "dtype": F32},
    {"B": 2, "T": 9, "D": 3, "H": 3, "upstream": "sparse"},
    {"B": 1, "T": 1, "D": 4, "H": 2, "upstream": "dense"},
    {"B": 2, "T": 1, "D": 3, "H": 3, "upstream": "dense", "dtype": F32},
    {"B": 3, "T": 4, "D": 2, "H": 4, "upstream": "last"},
]


def backward_cases(rng):
    cases = []
    for s in case_sizes(rng, BACKWARD_SIZES):
        B, T, D, H, dt = s["B"], s["T"], s["D"], s["H"], s["dtype"]
        X = rng.standard_normal((B, T, D)).astype(dt)
        h0 = np.tanh(rng.standard_normal((B, H))).astype(dt)
        W_xh, W_hh, b_h = _params(rng, D, H, dt)
        dH = rng.standard_normal((B, T, H)).astype(dt)
        if s.get("upstream") == "last":
            dH[:, :-1] = 0
        elif s.get("upstream") == "sparse":
            dH[:, T - 2 :: -2] = 0
        states = _states(X, h0, W_xh, W_hh, b_h)
        caches = [[X[:, t], states[t], states[t + 1], W_xh, W_hh] for t in range(T)]
        cases.append({"label": s["label"], "args": [dH, caches], "X": X, "h0": h0, "b_h": b_h})
    return cases


def backward_expected(case):
    dH, caches = case["args"]
    W_xh, W_hh = caches[0][3], caches[0][4]
    return reference_rnn_backward(
        *map(as_tensor, (dH, case["X"], case["h0"], W_xh, W_hh, case["b_h"]))
    )


def backward_compare(got, want, case):
    return compare_all("rnn_backward", LAYER_GRADS, got, want)


# ----------------------------------------------------------------------------- readout_backward
READOUT_SIZES = [
    {"B": 1, "T": 1, "H": 3, "V": 2},
    {"B": 2, "T": 5, "H": 4, "V": 7, "dtype": F32},
    {"B": 4, "T": 2, "H": 6, "V": 3, "logits": "in the thousands"},
    {"B": 3, "T": 3, "H": 2, "V": 5, "logits": "in the thousands"},
]
READOUT_NAMES = ("loss", "dH", "dW_hy", "db_y")


def readout_cases(rng):
    cases = []
    for s in case_sizes(rng, READOUT_SIZES):
        B, T, H, V, dt = s["B"], s["T"], s["H"], s["V"], s["dtype"]
        scale = 1000.0 if "logits" in s else 1.0  # exp overflows: only a stable softmax passes
        H_all = np.tanh(rng.standard_normal((B, T, H))).astype(dt)
        W_hy = (rng.standard_normal((H, V)) * scale).astype(dt)
        b_y = (rng.standard_normal(V) * 0.5 * scale).astype(dt)
        Y = rng.integers(0, V, size=(B, T)).astype(np.int64)
        cases.append({"label": s["label"], "args": [H_all, W_hy, b_y, Y]})
    return cases


def readout_expected(case):
    return reference_readout_backward(*as_tensor(case["args"]))


def readout_compare(got, want, case):
    if not isinstance(got, tuple | list) or len(got) != len(READOUT_NAMES):
        return f"readout_backward returned {describe(got)}; expected {', '.join(READOUT_NAMES)}"
    loss, *grads = got
    if isinstance(loss, int | float) and not isinstance(loss, bool):  # the test takes a number
        loss = torch.tensor(float(loss), dtype=want[0].dtype)
    problem = compare_tensor("loss", loss, want[0], exact_dtype=False)
    return problem or compare_all("readout_backward", READOUT_NAMES[1:], grads, want[1:])


# ----------------------------------------------------------------------------- jacobian_norms
JACOBIAN_SIZES = [
    {"B": 1, "T": 1, "H": 3},
    {"B": 3, "T": 8, "H": 6},
    {"B": 2, "T": 4, "H": 5, "dtype": F32},
]


def jacobian_cases(rng):
    cases = []
    for s in case_sizes(rng, JACOBIAN_SIZES):
        B, T, H, dt = s["B"], s["T"], s["H"], s["dtype"]
        X = rng.standard_normal((B, T, H)).astype(dt)
        h0 = np.tanh(rng.standard_normal((B, H))).astype(dt)
        W_xh, W_hh, b_h = _params(rng, H, H, dt)
        H_all = np.stack(_states(X, h0, W_xh, W_hh, b_h)[1:], 1)
        case = {"label": s["label"], "args": [H_all, W_hh], "X": X, "h0": h0}
        cases.append(case | {"W_xh": W_xh, "b_h": b_h})
    return cases


def jacobian_expected(case):
    _, W_hh = case["args"]
    args = [as_tensor(a).double() for a in (case["X"], case["h0"], case["W_xh"], W_hh, case["b_h"])]
    return reference_jacobian_norms(*args).to(as_tensor(W_hh).dtype)  # the inputs' dtype


def jacobian_compare(got, want, case):
    return compare_tensor("norms", got, want)


# ----------------------------------------------------------------------------- with_spectral_radius
def radius_cases(rng):
    """n x n matrices: n = 2, n = 9 in float32, random sizes; radii below, at and above 1."""
    fixed = [(2, 0.5, np.float64), (9, 1.0, F32)]
    drawn = [(int(rng.integers(2, 8)), r, np.float64) for r in (1.5, 0.5)]
    return [
        {
            "label": f"n = {n}, radius {r}, {np.dtype(dt).name}",
            "W": rng.standard_normal((n, n)).astype(dt),
            "radius": r,
        }
        for n, r, dt in fixed + drawn
    ]


def radius_expected(case):
    W = as_tensor(case["W"])
    return W * (case["radius"] / torch.linalg.eigvals(W).abs().max())


def radius_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"with_spectral_radius gave {describe(got)}"
    result, W_after = got
    if compare_tensor("W", W_after, as_tensor(case["W"])):
        return "with_spectral_radius changed W in place; it must return a new tensor"
    return compare_tensor("the rescaled matrix", result, want)


# ----------------------------------------------------------------------------- clip_grad_norm
CLIP_CASES = [  # (label, shapes, max_norm, scale, a non-finite first entry, dtype)
    ("one vector over the threshold", [(7,)], 0.5, 3.0, None, np.float64),
    ("three tensors in float32", [(2, 3), (3,), (1,)], 2.0, 3.0, None, F32),
    ("zero gradients", [(4, 4), (2,)], 1.0, 0.0, None, np.float64),
    ("gradients under the threshold", None, 100.0, 1.0, None, np.float64),
    ("a NaN gradient", None, 1.0, 1.0, float("nan"), np.float64),
    ("an infinite gradient", None, 1.0, 1.0, float("inf"), np.float64),
]


def clip_cases(rng):
    cases = []
    for label, shapes, max_norm, scale, bad, dt in CLIP_CASES:
        if shapes is None:
            count = int(rng.integers(1, 4))
            shapes = [tuple(sizes(rng, int(rng.integers(1, 3)))) for _ in range(count)]
        grads = [(rng.standard_normal(s) * scale).astype(dt) for s in shapes]
        if bad is not None:
            grads[0].flat[0] = bad
        cases.append({"label": label, "grads": grads, "max_norm": max_norm})
    return cases


def clip_expected(case):
    grads = [as_tensor(g) for g in case["grads"]]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, case["max_norm"])
    return norm, [p.grad for p in params]


def clip_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"clip_grad_norm gave {describe(got)}"
    norm, grads = got
    want_norm, want_grads = want
    if isinstance(norm, torch.Tensor) and norm.numel() == 1:
        norm = norm.item()
    if not isinstance(norm, int | float) or isinstance(norm, bool):
        return f"clip_grad_norm returned {describe(norm)}; expected the total norm"
    expected = want_norm.item()
    if not math.isfinite(expected):  # only the norm is graded then, as in the test
        same = math.isnan(norm) if math.isnan(expected) else norm == expected
        return (
            None if same else f"with a non-finite gradient the norm is {norm}; expected {expected}"
        )
    tol = 1e-9 if want_norm.dtype == torch.float64 else 1e-5  # float32 sums in any order
    if not math.isclose(norm, expected, rel_tol=tol, abs_tol=tol * 1e-3):
        return f"clip_grad_norm returned {norm:.6g}; expected {expected:.6g}"
    return compare_all(
        "clip_grad_norm", [f"grads[{i}]" for i in range(len(want_grads))], grads, want_grads
    )


# ----------------------------------------------------------------------------- training loops
def _sequences(rng, B, T, V):
    return {
        "X": rng.integers(0, V, size=(B, T)).astype(np.int64),
        "Y": rng.integers(0, V, size=(B, T)).astype(np.int64),
    }


TRUNCATED = [  # (B, T, k): one step per chunk, a batch of one, one chunk shorter than k
    (3, 5, 1),
    (1, 11, 3),
    (3, 4, 6),
    (3, 10, 4),
]


def truncated_cases(rng):
    cases = []
    for B, T, k in TRUNCATED:
        seed = int(rng.integers(2**31))
        label = f"B = {B}, T = {T}, chunk_size = {k}"
        cases.append(
            {"label": label, "V": 5, "H": 6, "seed": seed, "k": k} | _sequences(rng, B, T, 5)
        )
    return cases


def truncated_expected(case):
    """The reference loop, replayed here on the same model: losses and applied gradients."""
    model = RecordingRNN(case["V"], case["H"], seed=case["seed"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    X, Y, k = as_tensor(case["X"]), as_tensor(case["Y"]), case["k"]
    h, losses, applied = None, [], []
    for start in range(0, X.shape[1], k):
        logits, h = model(X[:, start : start + k], None if h is None else h.detach())
        loss = F.cross_entropy(logits.reshape(-1, case["V"]), Y[:, start : start + k].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        applied.append([p.grad.clone() for p in model.parameters()])
        optimizer.step()
        losses.append(loss.item())
    return losses, applied


def _applied_compare(applied, want, what: str) -> str | None:
    """The gradients of every optimizer.step() like ``want`` (one list per step)."""
    if not isinstance(applied, list) or len(applied) != len(want):
        n = len(applied) if isinstance(applied, list) else "?"
        return f"optimizer.step() was called {n} times; expected {len(want)} ({what})"
    for step, (got, expected) in enumerate(zip(applied, want, strict=True)):
        names = [f"the gradient of parameter {i}" for i in range(len(expected))]
        if compare_all(f"step {step}", names, got, expected):
            return f"step {step} did not apply {what}"
    return None


def truncated_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"train_truncated_bptt gave {describe(got)}"
    losses, applied = got
    want_losses, want_applied = want
    problem = _applied_compare(
        applied,
        want_applied,
        "one per chunk: the gradient of that chunk's loss from the "
        "previous chunk's last state, detached",
    )
    if problem:
        return problem
    if not isinstance(losses, list | tuple) or len(losses) != len(want_losses):
        return (
            f"train_truncated_bptt returned {describe(losses)}; expected {len(want_losses)} losses"
        )
    for c, (loss, want_loss) in enumerate(zip(losses, want_losses, strict=True)):
        if not isinstance(loss, float) or not math.isclose(loss, want_loss, rel_tol=1e-9):
            return f"chunk {c}'s loss is {describe(loss)}; expected {want_loss:.6g} (a float)"
    return None


CLIPPED = [0.2, 0.1, 0.05, math.inf]  # max_norm: all but inf below the model's gradient norm


def clipped_cases(rng):
    cases = []
    for max_norm in CLIPPED:
        case = {"label": f"max_norm = {max_norm}", "V": 5, "H": 6, "seed": int(rng.integers(2**31))}
        cases.append(case | {"max_norm": max_norm} | _sequences(rng, 3, 6, 5))
    return cases


def clipped_expected(case):
    """The loss, the total norm before clipping, and the clipped gradients."""
    model = RecordingRNN(case["V"], case["H"], seed=case["seed"])
    params = [p.detach().clone() for p in model.parameters()]
    loss, grads = model.chunk_loss_and_grads(
        params, as_tensor(case["X"]), as_tensor(case["Y"]), None
    )
    clipped = [g.clone() for g in grads]
    norm = reference_clip(clipped, case["max_norm"])
    return loss, norm.item(), clipped


def clipped_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 3:
        return f"train_step_clipped gave {describe(got)}"
    result, applied, calls = got
    want_loss, want_norm, want_clipped = want
    if calls != 1:
        return f"one training step ran the model {calls} times; expected once"
    problem = _applied_compare(applied, [want_clipped], "the clipped gradient of the loss")
    if problem:
        return problem
    if not isinstance(result, list | tuple) or len(result) != 2:
        return f"train_step_clipped returned {describe(result)}; expected (loss, grad_norm)"
    loss, norm = result
    if isinstance(norm, torch.Tensor) and norm.dim() == 0:  # the test takes a 0-dim tensor too
        norm = norm.item()
    if isinstance(norm, int) and not isinstance(norm, bool):
        norm = float(norm)
    if not isinstance(loss, float) or not math.isclose(loss, want_loss, rel_tol=1e-9):
        return f"the loss returned is {describe(loss)}; expected {want_loss:.6g} (a float)"
    if not isinstance(norm, float) or not math.isclose(norm, want_norm, rel_tol=1e-9):
        return f"grad_norm is {describe(norm)}; expected {want_norm:.6g}, the norm before clipping"
    return None


# answer -> how to probe it (the tests it carries and what it may not call: lesson.toml)
PROBES = {
    "rnn_cell_backward": Method("call", cell_cases, cell_expected, cell_compare),
    "numerical_gradient": Method(
        "differences", differences_cases, differences_expected, differences_compare
    ),
    "rnn_backward": Method("call", backward_cases, backward_expected, backward_compare),
    "readout_backward": Method("call", readout_cases, readout_expected, readout_compare),
    "jacobian_norms": Method("call", jacobian_cases, jacobian_expected, jacobian_compare),
    "with_spectral_radius": Method(
        "scale_and_return", radius_cases, radius_expected, radius_compare
    ),
    "clip_grad_norm": Method("clip_and_return", clip_cases, clip_expected, clip_compare),
    "train_truncated_bptt": Method(
        "chunks_trained", truncated_cases, truncated_expected, truncated_compare
    ),
    "train_step_clipped": Method("clipped_step", clipped_cases, clipped_expected, clipped_compare),
}
