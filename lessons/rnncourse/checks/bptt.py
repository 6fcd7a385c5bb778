"""Checks for lesson 02 (backpropagation through time), with autograd as the reference.

The reference gradients come from autograd through ``torch.nn.RNN`` (the forward pass lesson 01
matched), from centred differences (``rnncourse.numerics``) and from
``torch.nn.utils.clip_grad_norm_``; none of them is the hand-written backward pass the lesson
asks for. Shapes follow the course: X is (B, T, D), states (B, H), and
h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) with W_xh (D, H), W_hh (H, H), b_h (H,).

To test a backward pass with any upstream gradient dH, the loss is L = sum(H_all * dH): its
gradient with respect to H_all is exactly dH.
"""

import contextlib
import io
import math

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
    expect_close,
    expect_tensor,
    is_close,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.rnn import (
    random_rnn_params,
    reference_rnn_cell,
    reference_rnn_forward,
    torch_rnn_from_params,
)
from rnncourse.numerics import numerical_gradient_array, rel_error_norm

MAX_NUMERICAL_ERROR = 1e-7  # centred differences in float64 agree to ~1e-9 when it is right


def _quietly(fn, *args, **kwargs):
    """Run a check without its "passed" line (for checks made of several cases)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- references
def reference_rnn_backward(dH, X, h0, W_xh, W_hh, b_h):
    """Autograd through ``nn.RNN``: gradients of sum(H_all * dH).

    Returns (dX (B, T, D), dh0 (B, H), dW_xh (D, H), dW_hh (H, H), db_h (H,)) in the course's
    layout (PyTorch stores the weights transposed).
    """
    rnn = torch_rnn_from_params(W_xh, W_hh, b_h)
    X = X.detach().clone().requires_grad_(True)
    h0 = h0.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        H_all, _ = rnn(X, h0.unsqueeze(0))
        H_all.backward(dH)
    return (
        X.grad,
        h0.grad,
        rnn.weight_ih_l0.grad.T.contiguous(),
        rnn.weight_hh_l0.grad.T.contiguous(),
        rnn.bias_ih_l0.grad,
    )


def reference_rnn_cell_backward(dh_next, x_t, h_prev, W_xh, W_hh, b_h):
    """Autograd through one step of ``nn.RNN``: (dx_t, dh_prev, dW_xh, dW_hh, db_h)."""
    dX, dh0, dW_xh, dW_hh, db_h = reference_rnn_backward(
        dh_next.unsqueeze(1), x_t.unsqueeze(1), h_prev, W_xh, W_hh, b_h
    )
    return dX[:, 0], dh0, dW_xh, dW_hh, db_h


def reference_jacobian_norms(X, h0, W_xh, W_hh, b_h):
    """||dh_T / dh_s||_2 for s = 0..T and every sequence, by autograd Jacobians: (B, T + 1)."""
    rnn = torch_rnn_from_params(W_xh, W_hh, b_h)
    B, T, _ = X.shape
    num_hiddens = W_hh.shape[0]
    H_all, _ = reference_rnn_forward(X, h0, W_xh, W_hh, b_h)
    states = [h0] + [H_all[:, t] for t in range(T)]  # h_0 .. h_T
    norms = torch.ones(B, T + 1, dtype=torch.float64)
    for s in range(T):
        for b in range(B):

            def h_T_from(h_s, s=s, b=b):
                return rnn(X[b : b + 1, s:], h_s.view(1, 1, num_hiddens))[1].view(num_hiddens)

            with torch.enable_grad():
                J = torch.autograd.functional.jacobian(h_T_from, states[s][b].detach())
            norms[b, s] = torch.linalg.matrix_norm(J.double(), ord=2)
    return norms


# ----------------------------------------------------------------------------- forward
def _forward_cell(forward, x_t, h_prev, W_xh, W_hh, b_h):
    """Run the provided forward step; fail if it no longer matches nn.RNN. Returns the cache."""
    name = getattr(forward, "__name__", "the forward step")
    result = call_student(forward, x_t, h_prev, W_xh, W_hh, b_h, name=name)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"{name} should return (h_t, cache). It is provided: re-run its cell unchanged."
        )
    h_t, cache = result
    want = reference_rnn_cell(x_t, h_prev, W_xh, W_hh, b_h)
    if not matches(h_t, want, **tolerances(x_t.dtype)):
        raise CheckFailed(
            f"{name} no longer matches torch.nn.RNN. It is provided: re-run its cell unchanged."
        )
    return cache


def _forward_layer(forward, X, h0, W_xh, W_hh, b_h):
    """Run the provided forward pass; fail if it no longer matches nn.RNN. Returns the caches."""
    name = getattr(forward, "__name__", "the forward pass")
    result = call_student(forward, X, h0, W_xh, W_hh, b_h, name=name)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"{name} should return (H_all, caches). It is provided: re-run its cell unchanged."
        )
    H_all, caches = result
    want, _ = reference_rnn_forward(X, h0, W_xh, W_hh, b_h)
    if not matches(H_all, want, **tolerances(X.dtype)) or len(caches) != X.shape[1]:
        raise CheckFailed(
            f"{name} no longer matches torch.nn.RNN. It is provided: re-run its cell unchanged."
        )
    return caches


def _gradients(result, names, shapes, who):
    """Unpack a backward function's tuple of gradients, checking count and shapes."""
    if not (isinstance(result, tuple | list) and len(result) == len(names)):
        got = f"{len(result)} values" if isinstance(result, tuple | list) else type(result).__name__
        raise CheckFailed(
            f"{who} should return {len(names)} tensors ({', '.join(names)}); got {got}."
        )
    for name, value, (shape, dims) in zip(names, result, shapes, strict=True):
        if name.startswith("db") and isinstance(value, torch.Tensor) and value.dim() == 2:
            raise CheckFailed(
                f"{name} has shape {tuple(value.shape)}; expected {dims} = {shape}: the bias is "
                "shared by every sequence in the batch, so sum its gradient over the batch (dim 0)."
            )
        expect_tensor(name, value, shape, dims)
    return dict(zip(names, result, strict=True))


# ----------------------------------------------------------------------------- one step
CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
CELL_HINTS = {
    "dx_t": "dx_t = da W_xh^T: (B, H) @ (H, D), with da = dh_next * (1 - h_t**2).",
    "dh_prev": "dh_prev = da W_hh^T: in the forward pass h_prev is multiplied by W_hh on the "
    "right, so the gradient goes back through W_hh transposed (da @ W_hh.T, not da @ W_hh).",
    "dW_xh": "dW_xh = x_t^T da: (D, B) @ (B, H); the product sums over the batch.",
    "dW_hh": "dW_hh = h_prev^T da: W_hh multiplied h_prev (not h_t) in the forward pass, and "
    "h_prev comes first (h_prev.T @ da, not da.T @ h_prev).",
    "db_h": "db_h = da summed over the batch (dim 0).",
}
TANH_HINT = (
    "Every gradient is right where tanh' = 1 (a probe with h_t = 0), so the tanh derivative is "
    "wrong: da = dh_next * (1 - h_t**2), with h_t from the cache. h_t is already tanh(a_t): do "
    "not apply tanh to it again."
)
DA_HINT = (
    "Every gradient is wrong, even in a probe where h_t = 0 (tanh' = 1): all five come from "
    "da = dh_next * (1 - h_t**2). Compute da first, from dh_next and the h_t in the cache."
)


def _cell_inputs(B, D, H, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 11)
    x = _randn(B, D, dtype=dtype, device=device, g=g)
    h = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    dh = _randn(B, H, dtype=dtype, device=device, g=g)
    return x, h, dh, random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)


def check_rnn_cell_backward(
    rnn_cell_backward,
    rnn_cell_forward_with_cache,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """rnn_cell_backward(dh_next, cache) must match autograd through one step of nn.RNN."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, dh, params = _cell_inputs(B, D, H, dtype, device, seed)
    shapes = [((B, D), "(B, D)"), ((B, H), "(B, H)"), ((D, H), "(D, H)"), ((H, H), "(H, H)")]
    shapes.append(((H,), "(H,)"))
    tol = tolerances(dtype)

    def run(dh, x, h, *params):
        cache = _forward_cell(rnn_cell_forward_with_cache, x, h, *params)
        result = call_student(rnn_cell_backward, dh, cache)
        got = _gradients(result, CELL_GRADS, shapes, "rnn_cell_backward")
        want = dict(zip(CELL_GRADS, reference_rnn_cell_backward(dh, x, h, *params), strict=True))
        return got, want, [n for n in CELL_GRADS if not matches(got[n], want[n], **tol)]

    got, want, wrong = run(dh, x, h, *params)
    if not wrong:
        print(f"rnn_cell_backward matches autograd (B={B}, D={D}, H={H}, {dtype}).")
        return
    # Probe: identical rows and b_h = -(x W_xh + h W_hh) make a_t = 0, so h_t = 0, tanh' = 1.
    W_xh, W_hh, _ = params
    x1, h1 = x[:1].expand(B, D).clone(), h[:1].expand(B, H).clone()
    b_zero = -(x1 @ W_xh + h1 @ W_hh)[0]
    _, _, probe_wrong = run(dh, x1, h1, W_xh, W_hh, b_zero)
    if not probe_wrong and len(wrong) == len(CELL_GRADS):
        hint, name = TANH_HINT, wrong[0]
    elif not probe_wrong:
        name = wrong[0]
        hint = (
            f"{name} is right where tanh' = 1 (a probe with h_t = 0) but not elsewhere: it must "
            f"come from da = dh_next * (1 - h_t**2), not from dh_next. {CELL_HINTS[name]}"
        )
    elif len(probe_wrong) == len(CELL_GRADS):
        hint, name = DA_HINT, wrong[0]
    else:
        name = probe_wrong[0] if probe_wrong[0] in wrong else wrong[0]
        also = [n for n in probe_wrong if n != name]
        hint = CELL_HINTS[name] + (f" (Also wrong: {', '.join(also)}.)" if also else "")
    expect_close(name, got[name], want[name], hint=hint, **tol)


def _numerical_agreement(who, got: dict, inputs: dict, f, upstream):
    """Compare each gradient with centred differences of sum(f() * upstream).

    The error is measured on whole tensors, ||yours - numerical|| / (||yours|| + ||numerical||),
    so that an entry which happens to be tiny does not make rounding look like a bug.
    """
    worst, worst_name = 0.0, ""
    for name, x in inputs.items():
        numerical = numerical_gradient_array(f, x, upstream)
        error = rel_error_norm(got[name].detach(), numerical)
        if not error < MAX_NUMERICAL_ERROR:
            raise CheckFailed(
                f"{who}: {name} has a relative error of {error:.2g} against centred differences "
                f"(||yours - numerical|| / (||yours|| + ||numerical||); need < "
                f"{MAX_NUMERICAL_ERROR:g}). The autograd check names the wrong term."
            )
        if error >= worst:
            worst, worst_name = error, name
    return worst, worst_name


def check_rnn_cell_backward_numerical(
    rnn_cell_backward,
    rnn_cell_forward_with_cache,
    *,
    batch_size=2,
    input_size=3,
    num_hiddens=4,
    seed=0,
):
    """Every gradient of rnn_cell_backward agrees with centred differences (float64, < 1e-7)."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, dh, (W_xh, W_hh, b_h) = _cell_inputs(B, D, H, torch.float64, "cpu", seed + 100)
    cache = _forward_cell(rnn_cell_forward_with_cache, x, h, W_xh, W_hh, b_h)
    shapes = [((B, D), "(B, D)"), ((B, H), "(B, H)"), ((D, H), "(D, H)"), ((H, H), "(H, H)")]
    shapes.append(((H,), "(H,)"))
    got = _gradients(
        call_student(rnn_cell_backward, dh, cache), CELL_GRADS, shapes, "rnn_cell_backward"
    )
    inputs = {"dx_t": x, "dh_prev": h, "dW_xh": W_xh, "dW_hh": W_hh, "db_h": b_h}
    worst, name = _numerical_agreement(
        "rnn_cell_backward", got, inputs, lambda: reference_rnn_cell(x, h, W_xh, W_hh, b_h), dh
    )
    print(
        "rnn_cell_backward agrees with centred differences: worst relative error "
        f"{worst:.1e} ({name})."
    )


# ----------------------------------------------------------------------------- through time
LAYER_GRADS = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")
UPSTREAM = ("dense", "last", "sparse")


def _layer_inputs(B, T, D, H, upstream, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 22)
    X = _randn(B, T, D, dtype=dtype, device=device, g=g)
    h0 = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    dH = _randn(B, T, H, dtype=dtype, device=device, g=g)
    if upstream == "last":  # a loss on the final state only, as in sequence classification
        dH[:, :-1] = 0
    elif upstream == "sparse":  # no loss at every other step, the last one included
        dH[:, torch.arange(T - 1, -1, -2)] = 0
    elif upstream != "dense":
        raise ValueError(f"upstream must be one of {UPSTREAM}")
    return X, h0, dH, random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)


def _layer_shapes(B, T, D, H):
    return [
        ((B, T, D), "(B, T, D)"),
        ((B, H), "(B, H)"),
        ((D, H), "(D, H)"),
        ((H, H), "(H, H)"),
        ((H,), "(H,)"),
    ]


def check_rnn_backward(
    rnn_backward,
    rnn_forward_with_cache,
    *,
    batch_size=3,
    num_steps=5,
    input_size=3,
    num_hiddens=4,
    upstream="dense",
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """rnn_backward(dH, caches) must match autograd through nn.RNN over T steps.

    ``upstream`` chooses dH: "dense" (every step), "last" (the final step only) or "sparse"
    (zero at every other step, the last one included).
    """
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, h0, dH, params = _layer_inputs(B, T, D, H, upstream, dtype, device, seed)
    tol = tolerances(dtype)

    def run(dH, X):
        caches = _forward_layer(rnn_forward_with_cache, X, h0, *params)
        result = call_student(rnn_backward, dH, caches)
        got = _gradients(result, LAYER_GRADS, _layer_shapes(B, X.shape[1], D, H), "rnn_backward")
        want = dict(zip(LAYER_GRADS, reference_rnn_backward(dH, X, h0, *params), strict=True))
        return got, want, [n for n in LAYER_GRADS if not matches(got[n], want[n], **tol)]

    got, want, wrong = run(dH, X)
    if not wrong:
        print(
            f"rnn_backward matches autograd through nn.RNN (B={B}, T={T}, D={D}, H={H}, "
            f"upstream={upstream}, {dtype})."
        )
        return
    one_step_hint = (
        "With one step rnn_backward is one call of rnn_cell_backward(dH[:, 0], caches[0]): "
        "dX[:, 0] is its dx_t and dh0 its dh_prev. Check that case first (and that "
        "rnn_cell_backward passes its own test)."
    )
    g = torch.Generator().manual_seed(seed + 23)
    first_only, last_only = torch.zeros_like(dH), torch.zeros_like(dH)
    first_only[:, 0] = _randn(B, H, dtype=dtype, device=device, g=g)
    last_only[:, -1] = _randn(B, H, dtype=dtype, device=device, g=g)
    one_wrong = run(first_only[:, :1], X[:, :1])[2] if T > 1 else wrong
    state_wrong = [n for n in wrong if n in ("dX", "dh0")]
    if one_wrong:
        name = next((n for n in one_wrong if n in wrong), wrong[0])
        expect_close(name, got[name], want[name], hint=one_step_hint, **tol)
    if not state_wrong:
        hint = (
            "dX and dh0 are right, so the gradient flows through time correctly; the parameter "
            "gradients must add up the contributions of every step: start dW_xh, dW_hh, db_h at "
            "zero and add (+=) each step's."
        )
        expect_close(wrong[0], got[wrong[0]], want[wrong[0]], hint=hint, **tol)
    probes = [
        (
            "With upstream gradient at the first step only (dH[:, 1:] = 0) no gradient comes "
            "back from later steps: the gradient reaching h_t is dH[:, t] plus what step t + 1 "
            "sends back. Is dH[:, t] added at step t, and does the loop run backwards in time "
            "(t = T - 1, ..., 0)?",
            first_only,
        ),
        (
            "With upstream gradient at the last step only, every earlier step still gets "
            "gradient, through dh_prev: carry it back and add it to the next step's "
            "dh_next (dh_next = dH[:, t] + dh_prev from step t + 1).",
            last_only,
        ),
    ]
    hint = (
        "One step is right, and so are upstream gradients at the first or the last step only, "
        "but the full case is not: the gradient reaching h_t must be dH[:, t] + dh_prev, at "
        "every step."
    )
    for probe_hint, probe_dH in probes:
        _, _, probe_wrong = run(probe_dH, X)
        if any(n in ("dX", "dh0") for n in probe_wrong):
            hint = probe_hint
            break
    name = state_wrong[0]
    expect_close(name, got[name], want[name], hint=hint, **tol)


def check_rnn_backward_numerical(
    rnn_backward,
    rnn_forward_with_cache,
    *,
    batch_size=2,
    num_steps=4,
    input_size=3,
    num_hiddens=4,
    seed=0,
):
    """Every gradient of rnn_backward agrees with centred differences (float64, < 1e-7)."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    X, h0, dH, (W_xh, W_hh, b_h) = _layer_inputs(
        B, T, D, H, "dense", torch.float64, "cpu", seed + 200
    )
    caches = _forward_layer(rnn_forward_with_cache, X, h0, W_xh, W_hh, b_h)
    result = call_student(rnn_backward, dH, caches)
    got = _gradients(result, LAYER_GRADS, _layer_shapes(B, T, D, H), "rnn_backward")
    inputs = {"dX": X, "dh0": h0, "dW_xh": W_xh, "dW_hh": W_hh, "db_h": b_h}
    worst, name = _numerical_agreement(
        "rnn_backward",
        got,
        inputs,
        lambda: reference_rnn_forward(X, h0, W_xh, W_hh, b_h)[0],
        dH,
    )
    print(
        f"rnn_backward agrees with centred differences over T={T} steps: worst relative error "
        f"{worst:.1e} ({name})."
    )


EDGE_CASES = (
    ("T = 1", {"num_steps": 1}),
    ("upstream gradient at the last step only", {"upstream": "last"}),
    ("zero upstream gradient at every other step", {"upstream": "sparse", "num_steps": 6}),
    ("B = 1", {"batch_size": 1, "num_steps": 3}),
)


def check_rnn_backward_edge_cases(rnn_backward, rnn_forward_with_cache, *, seed=0):
    """rnn_backward on T = 1, a loss on the last step only, zero dH at some steps, B = 1."""
    for label, case in EDGE_CASES:
        try:
            _quietly(check_rnn_backward, rnn_backward, rnn_forward_with_cache, seed=seed, **case)
        except CheckFailed as err:
            raise CheckFailed(f"[edge case: {label}] {err}") from None
    print("rnn_backward handles " + "; ".join(label for label, _ in EDGE_CASES) + ".")


# ----------------------------------------------------------------------------- truncated BPTT
class RecordingRNN(nn.Module):
    """A small model ``model(X, h) -> (logits (B, k, V), h_last (B, H))`` that records its calls.

    Each call stores the chunk, the state it received and the parameters it ran with, so that
    a check can tell whether states were carried, detached, and whether each update used the
    gradient of its own chunk only.
    """

    def __init__(self, vocab_size, num_hiddens, seed=0):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, num_hiddens, batch_first=True).double()
        self.out = nn.Linear(num_hiddens, vocab_size).double()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 1.2 - 0.6)
        self.calls = []

    def forward(self, X, h=None):
        self.calls.append(
            {
                "X": X.detach().clone(),
                "h_value": None if h is None else h.detach().clone(),
                "params": [p.detach().clone() for p in self.parameters()],
            }
        )
        inputs = F.one_hot(X, self.vocab_size).double()  # (B, k, V)
        outputs, h_n = self.rnn(inputs, None if h is None else h.unsqueeze(0))
        self.calls[-1]["h_last"] = h_n[0].detach().clone()
        return self.out(outputs), h_n[0]  # (B, k, V), (B, H)

    def chunk_loss_and_grads(self, params, X, Y, h):
        """Mean cross-entropy of one chunk from state h (detached) and its parameter gradients."""
        twin = RecordingRNN(self.vocab_size, self.rnn.hidden_size)
        with torch.no_grad():
            for p, value in zip(twin.parameters(), params, strict=True):
                p.copy_(value)
        logits, _ = twin(X, None if h is None else h.detach())
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), Y.reshape(-1))
        grads = torch.autograd.grad(loss, list(twin.parameters()))
        return loss.item(), grads


def _same_grads(got, want, tol):
    return all(g is not None and matches(g, w, **tol) for g, w in zip(got, want, strict=True))


def check_train_truncated_bptt(
    train_truncated_bptt,
    *,
    batch_size=3,
    num_steps=10,
    chunk_size=4,
    vocab_size=5,
    num_hiddens=6,
    seed=0,
):
    """train_truncated_bptt carries the state across chunks, detached, one update per chunk."""
    B, T, k, V = batch_size, num_steps, chunk_size, vocab_size
    g = torch.Generator().manual_seed(seed + 33)
    X = torch.randint(V, (B, T), generator=g)
    Y = torch.randint(V, (B, T), generator=g)
    model = RecordingRNN(V, num_hiddens, seed=seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.5, calls=model.calls)
    name = "train_truncated_bptt"
    try:
        losses = call_student(train_truncated_bptt, model, optimizer, X, Y, k)
    except CheckFailed as err:
        # Without a detach, backward() runs into the previous chunk's graph: freed (first
        # message), or kept with retain_graph=True but stale after the optimizer step (second).
        if any(
            m in str(err) for m in ("through the graph a second time", "by an inplace operation")
        ):
            raise CheckFailed(
                f"{err}\nThe state still carries the previous chunk's graph: detach it at the "
                "chunk boundary (h = h.detach()), so that the gradient stops there."
            ) from None
        raise
    calls, steps = model.calls, optimizer.steps
    num_chunks = math.ceil(T / k)
    if len(calls) != num_chunks:
        raise CheckFailed(
            f"the model was called {len(calls)} times for T = {T} and chunk_size = {k}; expected "
            f"{num_chunks}, once per chunk X[:, s:s + k] for s = 0, k, 2k, ... (the last chunk "
            "may be shorter)."
        )
    for c, call in enumerate(calls):
        want = X[:, c * k : (c + 1) * k]
        if not torch.equal(call["X"], want):
            raise CheckFailed(
                f"chunk {c} is not X[:, {c * k}:{(c + 1) * k}]: the chunks must be consecutive, "
                "in order, without overlap, and cover the whole sequence."
            )
        h_value = call["h_value"]
        if c == 0:
            if h_value is not None and bool(h_value.abs().max() > 0):
                raise CheckFailed("the first chunk must start from h = None (zeros).")
            continue
        if h_value is None or not bool(h_value.abs().max() > 0):
            raise CheckFailed(
                f"chunk {c} starts from zeros: the state is reset at each chunk boundary. Carry "
                "it: pass the last state the model returned for the previous chunk."
            )
        if not torch.equal(h_value, calls[c - 1]["h_last"]):
            raise CheckFailed(
                f"chunk {c} starts from a state that is not the one the model returned for "
                f"chunk {c - 1}: pass h_last of the previous chunk."
            )
    tol = tolerances(torch.float64)
    reference = [
        model.chunk_loss_and_grads(
            call["params"], call["X"], Y[:, c * k : (c + 1) * k], call["h_value"]
        )
        for c, call in enumerate(calls)
    ]
    if not isinstance(losses, list | tuple) or len(losses) != num_chunks:
        got = f"{len(losses)} values" if isinstance(losses, list | tuple) else type(losses).__name__
        raise CheckFailed(
            f"{name} should return a list of {num_chunks} losses, one per chunk; got {got}."
        )
    for c, (loss, (want_loss, _)) in enumerate(zip(losses, reference, strict=True)):
        if not isinstance(loss, float):
            raise CheckFailed(
                f"losses[{c}] is a {type(loss).__name__}; return Python floats (loss.item())."
            )
        if not math.isclose(loss, want_loss, rel_tol=1e-9):
            raise CheckFailed(
                f"losses[{c}] = {loss:.6g}; expected {want_loss:.6g}, the mean cross-entropy of "
                f"chunk {c} against Y[:, {c * k}:{(c + 1) * k}] (F.cross_entropy on "
                "(B * k, V) logits and (B * k,) targets)."
            )
    if len(steps) != num_chunks or [s.after_call for s in steps] != list(range(1, num_chunks + 1)):
        raise CheckFailed(
            f"optimizer.step() was called {len(steps)} times; expected once per chunk, after "
            "that chunk's forward and backward pass."
        )
    for c, (step, (_, want_grads)) in enumerate(zip(steps, reference, strict=True)):
        if _same_grads(step.grads, want_grads, tol):
            continue
        summed = [sum(r[1][i] for r in reference[: c + 1]) for i in range(len(want_grads))]
        if c > 0 and _same_grads(step.grads, summed, tol):
            hint = "gradients accumulate across chunks: call optimizer.zero_grad() for every chunk."
        elif any(gr is None or not bool(gr.abs().max() > 0) for gr in step.grads):
            hint = "there is no gradient at the step: the order is zero_grad(), backward(), step()."
        else:
            hint = (
                "the update must use the gradient of this chunk's loss alone: zero_grad(), "
                "loss.backward(), step(), with the state detached at the boundary."
            )
        raise CheckFailed(f"at the update after chunk {c}, {hint}")
    print(
        f"train_truncated_bptt: {num_chunks} chunks of up to {k} steps, state carried and "
        "detached, one update per chunk with that chunk's gradient."
    )


# ----------------------------------------------------------------------------- gradient flow
def _states(X, h0, W_xh, W_hh, b_h):
    return reference_rnn_forward(X, h0, W_xh, W_hh, b_h)[0]


def check_jacobian_norms(
    jacobian_norms,
    *,
    batch_size=2,
    num_steps=5,
    input_size=3,
    num_hiddens=4,
    dtype=torch.float64,
    seed=0,
):
    """jacobian_norms(H_all, W_hh) = ||dh_T / dh_s||_2 for s = 0..T, matching autograd."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed + 44)
    X = _randn(B, T, D, dtype=torch.float64, device="cpu", g=g)
    h0 = _randn(B, H, dtype=torch.float64, device="cpu", g=g).tanh()
    W_xh, W_hh, b_h = random_rnn_params(D, H, seed=seed)
    W_hh = W_hh * 2.0  # a Jacobian chain that neither dies nor blows up over a few steps
    tol = tolerances(dtype)

    def run(X, h0, W_xh, W_hh, b_h, H_all=None):
        H_all = _states(X, h0, W_xh, W_hh, b_h) if H_all is None else H_all
        Tn = H_all.shape[1]
        got = call_student(jacobian_norms, H_all.to(dtype), W_hh.to(dtype))
        expect_tensor("norms", got, (B, Tn + 1), "(B, T + 1): one norm per state h_0 .. h_T")
        return got

    got = run(X, h0, W_xh, W_hh, b_h)
    want = reference_jacobian_norms(X, h0, W_xh, W_hh, b_h).to(dtype)
    if matches(got, want, **tol):
        print(f"jacobian_norms matches autograd Jacobians (B={B}, T={T}, H={H}, {dtype}).")
        return
    # Probe 1: zero states (tanh' = 1) and W_hh = 0.9 I, where dh_T/dh_s = 0.9^(T - s) I.
    scaled_identity = 0.9 * torch.eye(H, dtype=torch.float64)
    zeros = torch.zeros(B, T, H, dtype=torch.float64)
    probe = run(X, h0, W_xh, scaled_identity, b_h, H_all=zeros)
    exact = (0.9 ** torch.arange(T, -1, -1, dtype=torch.float64)).expand(B, T + 1).to(dtype)
    if not matches(probe, exact, **tol):
        hint = (
            "With h_t = 0 (tanh' = 1) and W_hh = 0.9 I, dh_T/dh_s = 0.9^(T - s) I, whose norm "
            "is 0.9^(T - s): norms[:, s] belongs to h_s (the last entry, s = T, is 1; the "
            "first, s = 0, has the longest chain), and the norm is the spectral norm "
            "(torch.linalg.matrix_norm(..., ord=2)), not the Frobenius norm."
        )
        expect_close("norms", probe, exact, hint=hint, **tol)
    # Probe 2: one step, where the only Jacobian is diag(1 - h_1^2) W_hh^T.
    one = run(X[:, :1], h0, W_xh, W_hh, b_h)
    one_want = reference_jacobian_norms(X[:, :1], h0, W_xh, W_hh, b_h).to(dtype)
    if not matches(one, one_want, **tol):
        hint = (
            "With one step the only Jacobian is dh_1/dh_0 = diag(1 - h_1^2) W_hh^T, entry "
            "[i, j] = (1 - h_1[i]^2) W_hh[j, i]: is the tanh derivative taken at h_1 (the later "
            "state, H_all[:, 0]), and does it scale the rows of W_hh^T?"
        )
        expect_close("norms for T = 1", one, one_want, hint=hint, **tol)
    hint = (
        "Each single Jacobian is right but the chain is not: dh_T/dh_(s-1) = (dh_T/dh_s) J_s "
        "with J_s = diag(1 - h_s^2) W_hh^T; multiply each new Jacobian on the right, going "
        "back from s = T, and take the norm of the product at every s."
    )
    expect_close("norms", got, want, hint=hint, **tol)


def _spectral_radius(W):
    return torch.linalg.eigvals(W.double()).abs().max().item()


def check_with_spectral_radius(
    with_spectral_radius, *, size=6, radius=1.5, dtype=torch.float64, seed=0
):
    """with_spectral_radius(W, radius) returns W rescaled so that max |eigenvalue| = radius."""
    g = torch.Generator().manual_seed(seed + 58)  # seed 0: a complex pair of largest |eigenvalue|
    W = torch.randn(size, size, generator=g, dtype=torch.float64).to(dtype)
    original = W.clone()
    got = call_student(with_spectral_radius, W, radius, shared=(0,))  # W must stay unchanged
    expect_tensor("the result", got, (size, size), "like W")
    if not torch.equal(W, original):
        raise CheckFailed(
            "with_spectral_radius modifies W in place: return a new tensor (W * factor)."
        )
    tol = tolerances(dtype)
    if got.is_complex():
        raise CheckFailed(
            f"the result has dtype {got.dtype}; expected {W.dtype} like W. Scale W by a real "
            "number: the absolute value of an eigenvalue is real."
        )
    got64 = got.detach().double()
    # The answer must be c W with c > 0 (same directions, new size) and radius rho(c W) = radius.
    factor = ((got64 * W.double()).sum() / W.double().pow(2).sum()).item()
    multiple = factor > 0 and is_close(got64, factor * W.double(), **tol)
    got_radius = _spectral_radius(got64)
    if multiple and math.isclose(got_radius, radius, rel_tol=tol["rtol"] * 100):
        if got.dtype != W.dtype:
            raise CheckFailed(f"the result has dtype {got.dtype}; expected {W.dtype} like W.")
        print(
            f"with_spectral_radius sets the spectral radius to {radius} ({size}x{size}, {dtype})."
        )
        return
    if not multiple:
        raise CheckFailed(
            "the result is not W times a positive number: rescale W, do not change its shape "
            "(no transpose, no normalisation of rows or columns)."
        )
    sigma = torch.linalg.matrix_norm(got64, ord=2).item()
    max_real = torch.linalg.eigvals(got64).real.max().item()
    if math.isclose(sigma, radius, rel_tol=1e-6):
        hint = (
            "you scaled the largest singular value (the spectral norm) to radius; the spectral "
            "radius is the largest |eigenvalue|: torch.linalg.eigvals(W).abs().max()."
        )
    elif math.isclose(max_real, radius, rel_tol=1e-6):
        hint = (
            "the eigenvalues of a non-symmetric matrix are complex: the spectral radius is the "
            "largest absolute value, not the largest real part."
        )
    else:
        hint = "multiply W by radius / rho(W), where rho(W) = max |eigenvalue of W|."
    raise CheckFailed(f"the result has spectral radius {got_radius:.6g}; expected {radius}: {hint}")


FLOW_KEYS = ("ρ = 0.5", "ρ = 1.0", "ρ = 1.5", "ρ = 1.5, saturated")


def check_gradient_flow(flow, *, min_steps=20):
    """The measured ||dh_T/dh_s|| vanish for ρ = 0.5, explode for ρ = 1.5 in the linear regime,
    stay within a few orders of magnitude for ρ = 1.0 and vanish when tanh saturates."""
    if not isinstance(flow, dict) or set(flow) != set(FLOW_KEYS):
        got = sorted(flow) if isinstance(flow, dict) else type(flow).__name__
        raise CheckFailed(f"flow should be a dict with the keys {list(FLOW_KEYS)}; got {got}.")
    ends = {}
    for key in FLOW_KEYS:
        norms = flow[key]
        if not isinstance(norms, torch.Tensor) or norms.dim() != 1:
            raise CheckFailed(f"flow[{key!r}] should be a 1-D tensor of norms, s = 0 .. T.")
        if norms.numel() < min_steps + 1:
            raise CheckFailed(
                f"flow[{key!r}] covers {norms.numel() - 1} steps; use at least {min_steps}."
            )
        if not bool(torch.isfinite(norms).all()) or bool((norms <= 0).any()):
            raise CheckFailed(f"flow[{key!r}] has non-finite or non-positive norms.")
        if not math.isclose(norms[-1].item(), 1.0, rel_tol=1e-6):
            raise CheckFailed(
                f"flow[{key!r}][-1] = {norms[-1].item():.3g}: the last entry is "
                "||dh_T/dh_T|| = ||I|| = 1."
            )
        ends[key] = (norms[0].item(), norms[norms.numel() // 2].item())
    T = flow[FLOW_KEYS[0]].numel() - 1
    rules = [
        (FLOW_KEYS[0], lambda first, mid: first < 1e-3 and first < mid < 1, "vanish (below 1e-3)"),
        (FLOW_KEYS[1], lambda first, mid: 1e-2 < first < 1e2, "stay between 1e-2 and 1e2"),
        (FLOW_KEYS[2], lambda first, mid: first > 1e3 and first > mid > 1, "explode (above 1e3)"),
        (FLOW_KEYS[3], lambda first, mid: first < 1e-3, "vanish (below 1e-3)"),
    ]
    for key, ok, expected in rules:
        first, mid = ends[key]
        if not ok(first, mid):
            raise CheckFailed(
                f"with {key} the gradient norm {T} steps back is {first:.3g} (halfway {mid:.3g}); "
                f"it should {expected}. Is W_hh scaled with with_spectral_radius, are the linear "
                "runs fed quiet inputs (states near 0) and the saturated one loud inputs?"
            )
    summary = ", ".join(f"{key}: {ends[key][0]:.1e}" for key in FLOW_KEYS)
    print(f"Gradient norms {T} steps back: {summary}.")


# ----------------------------------------------------------------------------- clipping
def _norm_value(value, who):
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise CheckFailed(f"{who} should return the total norm, a number or a 0-dim tensor.")


def _torch_clipped(grads, max_norm):
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, gr in zip(params, grads, strict=True):
        p.grad = gr.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return norm, [p.grad for p in params]


def check_clip_grad_norm(
    clip_grad_norm,
    *,
    shapes=((3, 4), (4,), (2, 2, 3)),
    max_norm=1.0,
    scale=3.0,
    dtype=torch.float64,
    seed=0,
):
    """clip_grad_norm(grads, max_norm) clips in place and returns what clip_grad_norm_ returns."""
    g = torch.Generator().manual_seed(seed + 66)
    grads = [(torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype) for s in shapes]
    originals = [gr.clone() for gr in grads]
    want_norm, want = _torch_clipped(grads, max_norm)
    total = want_norm.item()
    got_norm = _norm_value(
        call_student(clip_grad_norm, grads, max_norm, shared=(0,)), "clip_grad_norm"
    )
    tol = tolerances(dtype)
    ok_grads = all(matches(gr, w, **tol) for gr, w in zip(grads, want, strict=True))
    ok_norm = math.isclose(got_norm, total, rel_tol=tol["rtol"], abs_tol=tol["atol"])
    if ok_grads and ok_norm:
        state = "clipped" if total > max_norm else "left alone (below max_norm)"
        print(
            f"clip_grad_norm matches torch.nn.utils.clip_grad_norm_: total norm {total:.4g}, "
            f"max_norm {max_norm}, gradients {state}."
        )
        return
    if not ok_grads:
        if (
            all(torch.equal(gr, o) for gr, o in zip(grads, originals, strict=True))
            and total > max_norm
        ):
            raise CheckFailed(
                "the gradients in grads are unchanged: clip them in place (g.mul_(factor)); "
                "rebinding a loop variable (g = g * factor) changes nothing outside."
            )
        ratios = [
            (gr.detach().double().norm() / o.double().norm()).item()
            for gr, o in zip(grads, originals, strict=True)
        ]
        if max(ratios) - min(ratios) > 1e-6 * max(ratios):
            hint = (
                "the gradients were scaled by different factors: the norm is the total over all "
                "gradients together, sqrt(sum of ||g||^2), and every gradient gets the same factor."
            )
        elif total <= max_norm:
            hint = (
                "the total norm is already below max_norm, so the gradients must stay as they "
                "are: the factor is min(max_norm / (total_norm + 1e-6), 1)."
            )
        elif math.isclose(ratios[0] * total, max_norm, rel_tol=1e-9):
            hint = (
                "PyTorch divides by total_norm + 1e-6, not total_norm: factor = "
                "min(max_norm / (total_norm + 1e-6), 1)."
            )
        else:
            hint = (
                "the factor is min(max_norm / (total_norm + 1e-6), 1), with total_norm the 2-norm "
                "of all entries of all gradients together."
            )
        for i, (gr, w) in enumerate(zip(grads, want, strict=True)):
            if not matches(gr, w, **tol):
                expect_close(f"grads[{i}] after clipping", gr, w, hint=hint, **tol)
    after = math.sqrt(sum(gr.detach().double().pow(2).sum().item() for gr in grads))
    if math.isclose(got_norm, after, rel_tol=1e-9) and not math.isclose(after, total, rel_tol=1e-6):
        hint = "that is the norm after clipping: return the total norm from before clipping."
    else:
        hint = "return the total 2-norm of all gradients together, sqrt(sum of ||g||^2)."
    raise CheckFailed(f"clip_grad_norm returned {got_norm:.6g}; expected {total:.6g}: {hint}")


def check_clip_grad_norm_non_finite(clip_grad_norm, *, max_norm=1.0, seed=0):
    """Like clip_grad_norm_, an inf or NaN gradient gives an inf or NaN norm, and is not hidden.

    What the gradients become then is not graded: a training loop that sees the non-finite
    norm skips the step (PyTorch multiplies them by 0 or NaN; leaving them is as good).
    """
    g = torch.Generator().manual_seed(seed + 77)
    for bad in (float("inf"), float("nan")):
        grads = [
            torch.randn(3, 4, generator=g, dtype=torch.float64),
            torch.randn(5, generator=g, dtype=torch.float64),
        ]
        grads[0][1, 2] = bad
        want_norm, _ = _torch_clipped(grads, max_norm)
        got_norm = _norm_value(
            call_student(clip_grad_norm, grads, max_norm, shared=(0,)), "clip_grad_norm"
        )
        if not (math.isnan(got_norm) if math.isnan(bad) else got_norm == math.inf):
            raise CheckFailed(
                f"with a gradient entry equal to {bad}, clip_grad_norm returned {got_norm:.6g}; "
                f"expected {want_norm.item()} like clip_grad_norm_. Return the norm as computed, "
                "so that the training loop can see that this step is broken and skip it."
            )
    print(
        "clip_grad_norm returns the non-finite norm of inf and NaN gradients, like clip_grad_norm_."
    )


def check_train_step_clipped(
    train_step_clipped, *, max_norm=0.2, batch_size=3, num_steps=6, vocab_size=5, seed=0
):
    """train_step_clipped clips between backward() and step(), and returns (loss, total norm)."""
    B, T, V = batch_size, num_steps, vocab_size
    g = torch.Generator().manual_seed(seed + 88)
    X = torch.randint(V, (B, T), generator=g)
    Y = torch.randint(V, (B, T), generator=g)
    model = RecordingRNN(V, 6, seed=seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.1, calls=model.calls)
    result = call_student(train_step_clipped, model, optimizer, X, Y, max_norm)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed("train_step_clipped should return a pair (loss, grad_norm).")
    loss, grad_norm = result
    if len(model.calls) != 1 or len(optimizer.steps) != 1:
        raise CheckFailed(
            f"one training step should call the model once and optimizer.step() once; got "
            f"{len(model.calls)} and {len(optimizer.steps)}."
        )
    want_loss, want_grads = model.chunk_loss_and_grads(model.calls[0]["params"], X, Y, None)
    want_norm, clipped = _torch_clipped(list(want_grads), max_norm)
    if not isinstance(loss, float) or not math.isclose(loss, want_loss, rel_tol=1e-9):
        raise CheckFailed(
            f"the loss returned is {loss!r}; expected {want_loss:.6g}, the mean cross-entropy "
            "before the update, as a float (loss.item())."
        )
    norm = _norm_value(grad_norm, "train_step_clipped's grad_norm")
    tol = tolerances(torch.float64)
    applied = optimizer.steps[0].grads
    if not _same_grads(optimizer.steps[0].params, model.calls[0]["params"], tol):
        raise CheckFailed(
            "the weights changed before optimizer.step(): clip the gradients, "
            "[p.grad for p in model.parameters()], not the parameters themselves."
        )
    if not _same_grads(applied, clipped, tol):
        if _same_grads(applied, want_grads, tol):
            hint = (
                "the optimizer applied the unclipped gradient: call clip_grad_norm after "
                "loss.backward() and before optimizer.step() (and check that clip_grad_norm "
                "passes its own test)."
            )
        else:
            hint = (
                "the optimizer did not apply the clipped gradient of this batch's loss: the "
                "order is zero_grad(), backward(), clip_grad_norm(...), step()."
            )
        raise CheckFailed(hint)
    if not math.isclose(norm, want_norm.item(), rel_tol=1e-9):
        raise CheckFailed(
            f"grad_norm = {norm:.6g}; expected {want_norm.item():.6g}, the total norm before "
            "clipping (what clip_grad_norm returns)."
        )
    print(
        f"train_step_clipped clips between backward() and step() (gradient norm {norm:.3g}, "
        f"max_norm {max_norm})."
    )


def check_clipping_tames_explosion(unclipped_losses, clipped_losses, *, vocab_size):
    """Without clipping the loss explodes (non-finite or far above chance); with it, it trains."""
    chance = math.log(vocab_size)
    unclipped = torch.as_tensor(list(unclipped_losses), dtype=torch.float64)
    clipped = torch.as_tensor(list(clipped_losses), dtype=torch.float64)
    if clipped.numel() < 20 or unclipped.numel() < 20:
        raise CheckFailed("train both runs for at least 20 steps.")
    finite = unclipped[torch.isfinite(unclipped)]
    exploded = finite.numel() < unclipped.numel() or finite.max().item() > 2 * chance
    if not exploded:
        raise CheckFailed(
            f"the run without clipping never went above 2 x chance ({2 * chance:.2f}): it was "
            "meant to explode. Is it the run with max_norm = inf and the large learning rate?"
        )
    if not bool(torch.isfinite(clipped).all()):
        raise CheckFailed(
            "the clipped run produced a non-finite loss: is clip_grad_norm called between "
            "backward() and step()?"
        )
    final = clipped[-10:].mean().item()
    if not final < 0.5 * chance:
        raise CheckFailed(
            f"with clipping the loss ends at {final:.3f}; it should fall below half of chance "
            f"({0.5 * chance:.2f}). Is clip_grad_norm called between backward() and step()?"
        )
    print(
        f"Without clipping the loss reached {unclipped.nan_to_num(math.inf).max().item():.3g}; "
        f"with clipping it ends at {final:.3f} (chance {chance:.2f})."
    )
