"""Checks for lesson 01 (vanilla RNN forward pass), with PyTorch's modules as the reference.

Shapes follow the course's conventions: batch first, X is (B, T, D), hidden states (B, H),
weights in the student's layout  h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)  with
W_xh (D, H), W_hh (H, H), b_h (H,).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
    device_mix_problem,
    expect_close,
    expect_tensor,
    first_failing_probe,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)


# ----------------------------------------------------------------------------- references
def random_rnn_params(input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random (W_xh (D, H), W_hh (H, H), b_h (H,)), large enough that tanh is not linear."""
    g = torch.Generator().manual_seed(seed)
    W_xh = torch.randn(input_size, num_hiddens, generator=g, dtype=torch.float64) * 0.6
    W_hh = torch.randn(num_hiddens, num_hiddens, generator=g, dtype=torch.float64) * 0.4
    b_h = torch.randn(num_hiddens, generator=g, dtype=torch.float64) * 0.5
    return tuple(p.to(dtype=dtype, device=device) for p in (W_xh, W_hh, b_h))


def torch_rnn_from_params(W_xh, W_hh, b_h) -> nn.RNN:
    """A one-layer, batch-first ``nn.RNN`` holding the given parameters (second bias zero)."""
    input_size, num_hiddens = W_xh.shape
    rnn = nn.RNN(input_size, num_hiddens, batch_first=True)
    rnn = rnn.to(dtype=W_xh.dtype, device=W_xh.device)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W_xh.T)
        rnn.weight_hh_l0.copy_(W_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
    return rnn


@torch.no_grad()
def reference_rnn_forward(X, h0, W_xh, W_hh, b_h):
    """``nn.RNN`` on X (B, T, D) from h0 (B, H) or None: returns (H_all (B, T, H), h_T (B, H))."""
    rnn = torch_rnn_from_params(W_xh, W_hh, b_h)
    outputs, h_n = rnn(X, None if h0 is None else h0.unsqueeze(0))
    return outputs, h_n[0]


def reference_rnn_cell(x_t, h_prev, W_xh, W_hh, b_h):
    """One step of ``nn.RNN``: x_t (B, D), h_prev (B, H) -> h_t (B, H)."""
    return reference_rnn_forward(x_t.unsqueeze(1), h_prev, W_xh, W_hh, b_h)[1]


# ----------------------------------------------------------------------------- cell
def check_rnn_cell_forward(
    rnn_cell_forward,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h) must match one step of torch.nn.RNN."""
    B, D, H = batch_size, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed + 1)
    x = _randn(B, D, dtype=dtype, device=device, g=g)
    h = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    W_xh, W_hh, b_h = random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)
    tol = tolerances(dtype)

    h_t = call_student(rnn_cell_forward, x, h, W_xh, W_hh, b_h)
    expect_tensor("h_t", h_t, (B, H), "(B, H)")
    expected = reference_rnn_cell(x, h, W_xh, W_hh, b_h)
    if matches(h_t, expected, **tol):
        print(f"rnn_cell_forward matches torch.nn.RNN (B={B}, D={D}, H={H}, {dtype}).")
        return
    zero_D, zero_H = torch.zeros_like(W_xh), torch.zeros_like(W_hh)
    zero_b, neg_b = torch.zeros_like(b_h), -(b_h.abs() + 0.5)
    probes = [
        (
            "With every input zero h_t must be tanh(0) = 0: is the nonlinearity tanh?",
            (x * 0, h * 0, zero_D, zero_H, zero_b),
        ),
        (
            "With only a negative bias alive h_t must be tanh(b_h) < 0: is b_h added, inside tanh, "
            "and is the nonlinearity tanh (not ReLU or sigmoid)?",
            (x, h, zero_D, zero_H, neg_b),
        ),
        (
            "With W_hh = 0 and b_h = 0 only x_t W_xh is alive: check that term "
            "(x_t is (B, D), W_xh is (D, H); no transpose needed).",
            (x, h, W_xh, zero_H, zero_b),
        ),
        (
            "With W_xh = 0 and b_h = 0 only h_prev W_hh is alive: check that term "
            "(h_prev @ W_hh, not W_hh @ h_prev, and h_prev must be used).",
            (x, h, zero_D, W_hh, zero_b),
        ),
    ]
    hint = first_failing_probe(
        rnn_cell_forward, reference_rnn_cell, probes, name="rnn_cell_forward", **tol
    )
    expect_close(
        "h_t",
        h_t,
        expected,
        hint=hint
        or "Each term alone is right but the sum is not: put all three terms inside a single tanh.",
        **tol,
    )


# ----------------------------------------------------------------------------- layer
def check_rnn_forward(
    rnn_forward,
    *,
    batch_size=3,
    num_steps=6,
    input_size=4,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
    zero_h0=False,
):
    """rnn_forward(X, h0, W_xh, W_hh, b_h) must return nn.RNN's (H_all (B, T, H), h_T (B, H))."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed + 2)
    X = _randn(B, T, D, dtype=dtype, device=device, g=g)
    h0 = None if zero_h0 else _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    W_xh, W_hh, b_h = random_rnn_params(D, H, dtype=dtype, device=device, seed=seed)
    tol = tolerances(dtype)

    result = call_student(rnn_forward, X, h0, W_xh, W_hh, b_h)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"rnn_forward should return a pair (H_all, h_T); got {type(result).__name__}."
        )
    H_all, h_T = result
    expect_tensor("H_all", H_all, (B, T, H), "(B, T, H)")
    expect_tensor("h_T", h_T, (B, H), "(B, H)")
    want_all, want_T = reference_rnn_forward(X, h0, W_xh, W_hh, b_h)
    ok_all, ok_T = matches(H_all, want_all, **tol), matches(h_T, want_T, **tol)
    if ok_all and ok_T:
        if h0 is None and device == "cpu":
            _expect_outputs_on_the_inputs_device(rnn_forward, B, T, D, H, dtype)
        print(
            f"rnn_forward matches torch.nn.RNN (B={B}, T={T}, D={D}, H={H}, {dtype}, "
            f"h0={'None' if h0 is None else 'given'})."
        )
        return
    h_start = torch.zeros(B, H, dtype=dtype, device=device) if h0 is None else h0
    probes = [
        (
            "With a single time step the layer is one cell step from h0: check the first step "
            "(is h0 used, and zeros when h0 is None?).",
            (X[:, :1], h0, W_xh, W_hh, b_h),
        ),
        (
            "With W_hh = 0 every step depends on its own x_t only: does step t read X[:, t]?",
            (X, h0, W_xh, torch.zeros_like(W_hh), b_h),
        ),
        (
            "Steps do not chain: the h_t computed at step t must be the h_prev of step t + 1.",
            (X, h_start, W_xh, W_hh, b_h),
        ),
    ]
    hint = first_failing_probe(
        rnn_forward, reference_rnn_forward, probes, name="rnn_forward", **tol
    )
    if not ok_all:
        expect_close("H_all", H_all, want_all, hint=hint, **tol)
    expect_close(
        "h_T",
        h_T,
        want_T,
        hint="h_T must be the hidden state after the last step, H_all[:, -1].",
        **tol,
    )


def _expect_outputs_on_the_inputs_device(rnn_forward, B, T, D, H, dtype):
    """Run on "meta" tensors (shapes, no data): a zero state made on the CPU fails."""
    shapes = ((B, T, D), (D, H), (H, H), (H,))
    X, W_xh, W_hh, b_h = (torch.empty(s, dtype=dtype, device="meta") for s in shapes)
    problem = device_mix_problem(rnn_forward, X, None, W_xh, W_hh, b_h)
    if problem:
        raise CheckFailed(
            "rnn_forward made a tensor on the CPU while its inputs were elsewhere (the check ran "
            f"it on PyTorch's 'meta' device): create new tensors with device=X.device, "
            f"dtype=X.dtype. ({problem})"
        )


# ----------------------------------------------------------------------------- loading
def check_rnn_params_from_torch(
    rnn_params_from_torch, rnn_forward, *, input_size=3, num_hiddens=5, seed=0
):
    """Parameters read out of an nn.RNN make the student's rnn_forward reproduce nn.RNN.

    Uses the student's (already checked) ``rnn_forward``, so that the check does not give
    away how PyTorch's layout maps onto the course's.
    """
    D, H = input_size, num_hiddens
    torch.manual_seed(seed)
    rnn = nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.uniform_(-0.8, 0.8)  # both biases clearly non-zero
    params = call_student(rnn_params_from_torch, rnn)
    if not isinstance(params, dict) or set(params) != {"W_xh", "W_hh", "b_h"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise CheckFailed(
            f"rnn_params_from_torch should return a dict with keys W_xh, W_hh, b_h; got {got}."
        )
    expect_tensor("W_xh", params["W_xh"], (D, H), "(D, H); PyTorch's weight_ih_l0 is (H, D)")
    expect_tensor("W_hh", params["W_hh"], (H, H), "(H, H)")
    expect_tensor("b_h", params["b_h"], (H,), "(H,)")
    attached = [name for name in ("W_xh", "W_hh", "b_h") if params[name].requires_grad]
    if attached:
        raise CheckFailed(
            f"{', '.join(attached)} still require gradients: they belong to rnn's autograd "
            "graph, so using them would train rnn itself. Return detached tensors "
            "(rnn.weight_ih_l0.detach().T)."
        )
    X = torch.randn(2, 5, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want, _ = rnn(X)
        got, _ = call_student(rnn_forward, X, None, params["W_xh"], params["W_hh"], params["b_h"])
    tol = tolerances(torch.float64)
    if matches(got, want, **tol):
        print("Parameters loaded from nn.RNN reproduce its outputs.")
        return
    with torch.no_grad():
        rnn.bias_hh_l0.zero_()
        want_one_bias, _ = rnn(X)
    hint = (
        "nn.RNN adds two biases, bias_ih_l0 and bias_hh_l0: b_h must be their sum."
        if matches(got, want_one_bias, **tol)
        else "Compare the layouts: PyTorch computes x @ weight_ih_l0.T, the course x @ W_xh. "
        "(If rnn_forward failed its own check, fix it first.)"
    )
    expect_close("outputs with your parameters", got, want, hint=hint, **tol)


# ----------------------------------------------------------------------------- counting
def check_rnn_num_params(rnn_num_params, sizes=((3, 5, 2), (10, 32, 7), (1, 1, 1))):
    """rnn_num_params(D, H, O) must count nn.RNN(D, H) + nn.Linear(H, O) as PyTorch stores them."""
    for D, H, O in sizes:
        want = sum(p.numel() for m in (nn.RNN(D, H), nn.Linear(H, O)) for p in m.parameters())
        got = call_student(rnn_num_params, D, H, O)
        if not isinstance(got, int) or isinstance(got, bool):
            raise CheckFailed(f"rnn_num_params should return an int; got {type(got).__name__}.")
        if got == want:
            continue
        hints = {
            H: "one bias vector of size H short: nn.RNN keeps two (bias_ih_l0, bias_hh_l0).",
            O: "the output bias (size O) is missing.",
            H * O: "the output layer's weight (H x O) is missing.",
            H * H: "W_hh (H x H) is missing.",
        }
        hint = hints.get(
            want - got,
            "count every tensor in rnn.named_parameters() and the output layer's weight and bias.",
        )
        raise CheckFailed(f"rnn_num_params({D}, {H}, {O}) = {got}; expected {want}: {hint}")
    print(f"rnn_num_params matches PyTorch for (D, H, O) in {list(sizes)}.")


# ----------------------------------------------------------------------------- loss
def reference_sequence_loss(logits, targets, mask):
    """Mean cross-entropy over the positions where mask is True."""
    V = logits.shape[-1]
    targets = targets.masked_fill(~mask.bool(), -100)
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)


def check_sequence_loss(
    sequence_loss, *, batch_size=3, num_steps=5, vocab_size=7, seed=0, dtype=torch.float64
):
    """sequence_loss(logits (B, T, V), targets (B, T), mask (B, T)) -> mean CE over real steps."""
    B, T, V = batch_size, num_steps, vocab_size
    g = torch.Generator().manual_seed(seed + 3)
    logits = (torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2).to(dtype)
    logits.requires_grad_(True)
    targets = torch.randint(V, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = max(1, T - 2)  # at least one padded sequence
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T) True on real steps
    tol = tolerances(dtype)

    loss = call_student(sequence_loss, logits, targets, mask)
    expect_tensor("loss", loss, (), "a scalar, shape ()")
    if not loss.requires_grad:
        raise CheckFailed(
            "loss is not connected to logits: keep it a tensor (no .item(), no "
            "NumPy) so that loss.backward() reaches the model."
        )
    want = reference_sequence_loss(logits.detach(), targets, mask)
    if matches(loss, want, **tol):
        print(f"sequence_loss matches masked cross-entropy (B={B}, T={T}, V={V}).")
        return
    full = torch.ones_like(mask)
    got_full = call_student(sequence_loss, logits.detach(), targets, full)
    want_full = reference_sequence_loss(logits.detach(), targets, full)
    got_val, n_real = loss.detach().item(), int(mask.sum())
    if math.isclose(got_val, want.item() * n_real, rel_tol=1e-6):
        hint = "you return the sum: divide by the number of real positions, mask.sum()."
    elif math.isclose(got_val, want.item() * n_real / (B * T), rel_tol=1e-6):
        hint = "padding is averaged in: divide by mask.sum(), not B * T."
    elif not matches(got_full, want_full, **tol):
        hint = (
            "even without padding the loss is wrong: it is -log softmax(logits)[target], "
            "with the softmax over the last axis (V), averaged over positions."
        )
    else:
        hint = "padded positions (mask False) must not count, neither in the sum nor the mean."
    expect_close("loss", loss, want, hint=hint, **tol)


# ----------------------------------------------------------------------------- training
@torch.no_grad()
def next_symbol_scores(model, pattern, *, burn_in, batch_size=64, num_steps=None, seed=0):
    """(loss, accuracy) of ``model`` predicting the next symbol of ``pattern`` after ``burn_in``."""
    from rnncourse.toy_tasks import periodic_batch

    num_steps = num_steps or 3 * len(pattern)
    g = torch.Generator().manual_seed(seed + 4)
    X, Y = periodic_batch(pattern, batch_size, num_steps, generator=g)
    logits = model(X)  # (B, T, V)
    mask = torch.zeros_like(Y, dtype=torch.bool)
    mask[:, burn_in:] = True
    loss = reference_sequence_loss(logits.double(), Y, mask).item()
    accuracy = (logits.argmax(-1) == Y)[mask].double().mean().item()
    return loss, accuracy


class _OneHotReadout(nn.Module):
    """A tiny next-symbol model for checking a training step: logits = one_hot(X) W + b."""

    def __init__(self, vocab_size, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(vocab_size, generator=g, dtype=torch.float64))

    def forward(self, X):
        return F.one_hot(X, self.W.shape[0]).double() @ self.W + self.b  # (B, T, V)


def check_train_step(train_step, sequence_loss, *, batch_size=4, num_steps=7, vocab_size=5, seed=0):
    """train_step(model, optimizer, X, Y, mask) takes one step on sequence_loss(model(X), Y, mask)
    from fresh gradients, and returns that loss before the update, as a float.

    Graded against the student's own ``sequence_loss`` (its test grades it), on a model whose
    gradients were left dirty by an earlier step.
    """
    B, T, V = batch_size, num_steps, vocab_size
    g = torch.Generator().manual_seed(seed + 51)
    X, Y = torch.randint(V, (B, T), generator=g), torch.randint(V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[:, :2] = False  # a burn-in
    mask[0, 5:] = False  # and a shorter sequence
    model = _OneHotReadout(V, seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)  # what an earlier step left behind
    want_loss = call_student(sequence_loss, model(X), Y, mask, name="sequence_loss")
    want = torch.autograd.grad(want_loss, list(model.parameters()))
    unmasked = torch.autograd.grad(
        F.cross_entropy(model(X).reshape(-1, V), Y.reshape(-1)), list(model.parameters())
    )
    got_loss = call_student(train_step, model, optimizer, X, Y, mask)
    if len(optimizer.steps) != 1:
        raise CheckFailed(f"one train_step called optimizer.step() {len(optimizer.steps)} times.")
    applied = optimizer.steps[0].grads
    tol = tolerances(torch.float64)

    def same(grads):
        return all(
            a is not None and matches(a, w, **tol) for a, w in zip(applied, grads, strict=True)
        )

    if not same(want):
        if same([w + 0.5 for w in want]):
            hint = "old gradients were added in: call optimizer.zero_grad() first."
        elif same(unmasked):
            hint = (
                "the loss counts every position: use sequence_loss(model(X), Y, mask), which masks."
            )
        else:
            hint = (
                "optimizer.step() did not apply the gradient of sequence_loss(model(X), Y, mask): "
                "the order is zero_grad(), loss, backward(), step()."
            )
        raise CheckFailed(hint)
    if not isinstance(got_loss, float) or not math.isclose(
        got_loss, want_loss.item(), rel_tol=1e-9
    ):
        raise CheckFailed(
            f"train_step returned {got_loss!r}; expected {want_loss.item():.6g}, the loss before "
            "the update, as a Python float (loss.item())."
        )
    print("train_step takes one step on the masked loss, from fresh gradients.")


def check_next_symbol_model(model, pattern, *, burn_in, max_loss=0.1, min_accuracy=0.99):
    """A trained model predicts the periodic sequence after a burn-in: loss and accuracy."""
    vocab_size = int(pattern.max()) + 1
    try:
        loss, accuracy = next_symbol_scores(model, pattern, burn_in=burn_in)
    except Exception as err:
        raise CheckFailed(f"running the model failed with {type(err).__name__}: {err}") from err
    chance = math.log(vocab_size)
    if loss < max_loss and accuracy >= min_accuracy:
        print(f"Trained: loss {loss:.4f} (chance {chance:.2f}), accuracy {accuracy:.1%}.")
        return
    hint = (
        "the loss is still near chance: are zero_grad(), backward() and step() all called?"
        if loss > 0.8 * chance
        else "it learns but not enough: train longer or raise the learning rate."
    )
    raise CheckFailed(
        f"after training the loss is {loss:.4f} (need < {max_loss}; chance is "
        f"{chance:.2f}) and accuracy {accuracy:.1%} (need >= {min_accuracy:.0%}): "
        f"{hint}"
    )
