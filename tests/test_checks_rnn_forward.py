"""Lesson 01's checks: the reference passes every one, and each typical bug fails with its hint."""

import pytest
import torch
import torch.nn.functional as F

from rnncourse.checks import (
    CheckFailed,
    check_next_symbol_model,
    check_rnn_cell_forward,
    check_rnn_forward,
    check_rnn_num_params,
    check_rnn_params_from_torch,
    check_sequence_loss,
    check_train_step,
)
from rnncourse.checks.rnn import reference_sequence_loss
from tests.course import reference_namespace
from tests.integrity_support import passes_probe, rejection

LESSON = "01_rnn_forward"


@pytest.fixture(scope="module")
def ref():
    return reference_namespace("01_rnn_forward")


def fails(check, *args, match=None, **kwargs):
    """Assert that a check rejects the student object, with ``match`` in its message."""
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_visible_and_hidden_checks(ref):
    check_rnn_cell_forward(ref["rnn_cell_forward"])
    check_rnn_forward(ref["rnn_forward"])
    check_rnn_forward(ref["rnn_forward"], zero_h0=True)
    check_rnn_params_from_torch(ref["rnn_params_from_torch"], ref["rnn_forward"])
    check_rnn_num_params(ref["rnn_num_params"])
    check_sequence_loss(ref["sequence_loss"])
    check_next_symbol_model(ref["model"], ref["PATTERN"], burn_in=ref["BURN_IN"])
    for function in (
        "rnn_cell_forward",
        "rnn_forward",
        "rnn_num_params",
        "sequence_loss",
        "train_step",
    ):
        passes_probe(LESSON, function, ref[function])
    passes_probe(
        LESSON,
        "rnn_params_from_torch",
        ref["rnn_params_from_torch"],
        rnn_forward=ref["rnn_forward"],
    )


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize(
    "check", [check_rnn_cell_forward, check_rnn_forward, check_rnn_num_params, check_sequence_loss]
)
def test_stub_fails_with_a_clear_message(check):
    fails(check, not_implemented, match="not implemented yet")


# ----------------------------------------------------------------------------- cell
CELL_BUGS = {
    "missing bias": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh), "b_h"),
    "bias outside tanh": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh) + b, "tanh"),
    "sigmoid for tanh": (lambda x, h, Wx, Wh, b: torch.sigmoid(x @ Wx + h @ Wh + b), "tanh"),
    "relu for tanh": (lambda x, h, Wx, Wh, b: torch.relu(x @ Wx + h @ Wh + b), "ReLU"),
    "no nonlinearity": (lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh + b, "tanh"),
    "W_hh transposed": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh.T + b), "h_prev W_hh"),
    "h_prev ignored": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + b), "h_prev W_hh"),
    "W_xh transposed": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx.T + h @ Wh + b), "RuntimeError"),
    "fixed float32": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh + b).float(), "dtype"),
    "returns a list": (lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh + b).tolist(), "Tensor"),
}


@pytest.mark.parametrize("bug", CELL_BUGS)
def test_cell_check_catches(bug):
    fn, hint = CELL_BUGS[bug]
    fails(check_rnn_cell_forward, fn, match=hint)


def test_cell_shape_message_names_the_axes():
    fails(
        check_rnn_cell_forward,
        lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + b)[:, :3],
        match=r"h_t has shape \(4, 3\); expected \(B, H\) = \(4, 5\)",
    )


def test_the_graders_cell_cases_catch_what_visible_ones_miss(ref):
    cell = ref["rnn_cell_forward"]

    def calls_torch(x, h, Wx, Wh, b):
        rnn = torch.nn.RNNCell(*Wx.shape).to(x.dtype)
        with torch.no_grad():
            rnn.weight_ih.copy_(Wx.T), rnn.weight_hh.copy_(Wh.T), rnn.bias_ih.copy_(b)
            rnn.bias_hh.zero_()
        return rnn(x, h)

    check_rnn_cell_forward(calls_torch)  # the visible check cannot tell ...
    rejection(LESSON, "rnn_cell_forward", calls_torch, "built-in RNN")  # ... the grader's can

    def squeezes(x, h, Wx, Wh, b):  # breaks for B = 1
        return cell(x, h, Wx, Wh, b).squeeze()

    check_rnn_cell_forward(squeezes)
    rejection(LESSON, "rnn_cell_forward", squeezes, "on the grader's case B = 1, D = 7, H = 2")

    def always_float64(x, h, Wx, Wh, b):  # breaks for float32 inputs
        return cell(x, h, Wx, Wh, b).double()

    check_rnn_cell_forward(always_float64)
    rejection(LESSON, "rnn_cell_forward", always_float64, "float32: h_t has dtype torch.float64")


# ----------------------------------------------------------------------------- layer
def layer_bugs(cell):
    def not_carried(X, h0, Wx, Wh, b):
        h0 = X.new_zeros(X.shape[0], Wh.shape[0]) if h0 is None else h0
        states = [cell(X[:, t], h0, Wx, Wh, b) for t in range(X.shape[1])]
        return torch.stack(states, 1), states[-1]

    def loop(X, h0, Wx, Wh, b, order=None, start=None):
        h = X.new_zeros(X.shape[0], Wh.shape[0]) if h0 is None else h0
        h = start(h) if start else h
        states = []
        for t in order or range(X.shape[1]):
            h = cell(X[:, t], h, Wx, Wh, b)
            states.append(h)
        return states

    return {
        "state not carried": (not_carried, "Steps do not chain"),
        "h0 ignored": (
            lambda X, h0, *p: (lambda s: (torch.stack(s, 1), s[-1]))(
                loop(X, h0, *p, start=torch.zeros_like)
            ),
            "h0",
        ),
        "time-major output": (
            lambda X, h0, *p: (lambda s: (torch.stack(s, 0), s[-1]))(loop(X, h0, *p)),
            r"H_all has shape \(6, 3, 5\); expected \(B, T, H\)",
        ),
        "first state as last": (
            lambda X, h0, *p: (lambda s: (torch.stack(s, 1), s[0]))(loop(X, h0, *p)),
            "H_all\\[:, -1\\]",
        ),
        "reversed time": (
            lambda X, h0, *p: (lambda s: (torch.stack(s, 1), s[-1]))(
                loop(X, h0, *p, order=range(X.shape[1] - 1, -1, -1))
            ),
            "X\\[:, t\\]",
        ),
        "returns only H_all": (lambda X, h0, *p: torch.stack(loop(X, h0, *p), 1), "pair"),
    }


def test_layer_check_catches_typical_bugs(ref):
    for name, (fn, hint) in layer_bugs(ref["rnn_cell_forward"]).items():
        with pytest.raises(CheckFailed, match=hint):
            check_rnn_forward(fn)
            check_rnn_forward(fn, zero_h0=True)
            pytest.fail(f"check_rnn_forward accepted: {name}")


def test_the_graders_layer_cases_catch_a_single_step_bug(ref):
    cell = ref["rnn_cell_forward"]

    def skips_first_step(X, h0, Wx, Wh, b):  # range(1, T) drops t = 0: empty for T = 1
        h = X.new_zeros(X.shape[0], Wh.shape[0]) if h0 is None else h0
        states = [h]
        for t in range(1, X.shape[1]):
            h = cell(X[:, t], h, Wx, Wh, b)
            states.append(h)
        return torch.stack(states, 1), h

    rejection(LESSON, "rnn_forward", skips_first_step, "on the grader's case B = 2, T = 1")


# ----------------------------------------------------------------------------- loading
def test_params_check_catches_typical_bugs(ref):
    fwd = ref["rnn_forward"]

    def one_bias(r):
        return {
            "W_xh": r.weight_ih_l0.detach().T,
            "W_hh": r.weight_hh_l0.detach().T,
            "b_h": r.bias_ih_l0.detach(),
        }

    def no_transpose(r):
        return {
            "W_xh": r.weight_ih_l0.detach(),
            "W_hh": r.weight_hh_l0.detach(),
            "b_h": (r.bias_ih_l0 + r.bias_hh_l0).detach(),
        }

    def hh_not_transposed(r):
        return {**ref["rnn_params_from_torch"](r), "W_hh": r.weight_hh_l0.detach()}

    def wrong_keys(r):
        return {"weight_ih": r.weight_ih_l0}

    def attached(r):  # right numbers, but still on rnn's graph
        return {
            "W_xh": r.weight_ih_l0.T,
            "W_hh": r.weight_hh_l0.T,
            "b_h": r.bias_ih_l0 + r.bias_hh_l0,
        }

    def detached_with_data(r):  # .data is as detached as .detach()
        return {
            "W_xh": r.weight_ih_l0.data.T,
            "W_hh": r.weight_hh_l0.data.T,
            "b_h": (r.bias_ih_l0 + r.bias_hh_l0).data,
        }

    fails(check_rnn_params_from_torch, one_bias, fwd, match="two biases")
    fails(check_rnn_params_from_torch, no_transpose, fwd, match=r"W_xh has shape \(5, 3\)")
    fails(check_rnn_params_from_torch, hh_not_transposed, fwd, match="layouts")
    fails(check_rnn_params_from_torch, wrong_keys, fwd, match="keys W_xh, W_hh, b_h")
    fails(
        check_rnn_params_from_torch, attached, fwd, match="W_xh, W_hh, b_h still require gradients"
    )
    check_rnn_params_from_torch(detached_with_data, fwd)
    # the grader's cases say the same, outside the notebook
    rejection(LESSON, "rnn_params_from_torch", attached, "still require gradients", rnn_forward=fwd)
    passes_probe(LESSON, "rnn_params_from_torch", detached_with_data, rnn_forward=fwd)


# ----------------------------------------------------------------------------- counting
@pytest.mark.parametrize(
    "fn, hint",
    [
        (lambda D, H, O: D * H + H * H + H + H * O + O, "two"),
        (lambda D, H, O: D * H + H * H + 2 * H + H * O, "output bias"),
        (lambda D, H, O: D * H + H * H + 2 * H + O, "output layer's weight"),
        (lambda D, H, O: D * H + 2 * H + H * O + O, "W_hh"),
        (lambda D, H, O: float(D * H + H * H + 2 * H + H * O + O), "int"),
        (lambda D, H, O: D * D + H * H + 2 * H + H * O + O, "expected"),
    ],
)
def test_count_check_catches(fn, hint):
    fails(check_rnn_num_params, fn, match=hint)


# ----------------------------------------------------------------------------- loss
def test_loss_check_catches_typical_bugs():
    def ce(logits, targets):
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)

    bugs = {
        "no mask": (lambda z, y, m: ce(z, y).mean(), "padded positions"),
        "sum": (lambda z, y, m: (ce(z, y) * m).sum(), "sum"),
        "divided by B*T": (lambda z, y, m: (ce(z, y) * m).sum() / m.numel(), "B \\* T"),
        "per-sequence mean": (
            lambda z, y, m: ((ce(z, y) * m).sum(1) / m.sum(1)).mean(),
            "padded positions",
        ),
        "softmax without log": (
            lambda z, y, m: -(z.softmax(-1).gather(-1, y[..., None])[..., 0] * m).sum() / m.sum(),
            "log softmax",
        ),
        "softmax over time": (
            lambda z, y, m: (
                -(z.log_softmax(1).gather(-1, y[..., None])[..., 0] * m).sum() / m.sum()
            ),
            "last axis",
        ),
        "detached": (
            lambda z, y, m: torch.tensor((ce(z, y) * m).sum().item() / m.sum().item()),
            "not connected",
        ),
    }
    for name, (fn, hint) in bugs.items():
        with pytest.raises(CheckFailed, match=hint):
            check_sequence_loss(fn)
            pytest.fail(f"check_sequence_loss accepted: {name}")


# ----------------------------------------------------------------------------- training
def test_training_check_fails_untrained_and_half_trained_models(ref):
    model_cls, pattern = ref["NextSymbolRNN"], ref["PATTERN"]
    torch.manual_seed(0)
    untrained = model_cls(len(ref["ALPHABET"]), 32)
    fails(check_next_symbol_model, untrained, pattern, burn_in=4, match="near chance")

    def train(model, num_iters):
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        mask = torch.zeros(32, 24, dtype=torch.bool)
        mask[:, 4:] = True
        for _ in range(num_iters):
            X, Y = ref["periodic_batch"](pattern, 32, 24)
            ref["train_step"](model, opt, X, Y, mask)
        return model

    torch.manual_seed(0)
    on_plateau = train(model_cls(len(ref["ALPHABET"]), 32), 40)  # stuck near 0.17, see lesson
    fails(check_next_symbol_model, on_plateau, pattern, burn_in=4, match="train longer")

    def broken_model(X):
        raise RuntimeError("shape mismatch")

    fails(check_next_symbol_model, broken_model, pattern, burn_in=4, match="running the model")


def test_a_wrong_answer_that_changes_an_argument_is_told_so():
    def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):
        h_prev.zero_()  # the bug: forgets the previous state, by writing into it
        return torch.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)

    with pytest.raises(CheckFailed, match=r"changed h_prev in place"):
        check_rnn_cell_forward(rnn_cell_forward)


# ----------------------------------------------------------------------------- training step
def _step(loss_of=None, *, zero_grad=True, returned="float"):
    """train_step written out: ``loss_of(model, X, Y, mask)`` is the loss it steps on."""

    def train_step(model, optimizer, X, Y, mask):
        if zero_grad:
            optimizer.zero_grad()
        loss = loss_of(model, X, Y, mask)
        loss.backward()
        optimizer.step()
        return {"float": loss.item(), "tensor": loss}[returned]

    return train_step


def _masked(model, X, Y, mask):
    return reference_sequence_loss(model(X), Y, mask)


def _by_hand(model, X, Y, mask):  # the masked mean written out, as a correct alternative
    log_p = F.log_softmax(model(X), -1).gather(-1, Y[..., None])[..., 0]
    return -(log_p * mask).sum() / mask.sum()


def _every_position(model, X, Y, mask):
    logits = model(X)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))


def test_train_step_check_passes_correct_steps(ref):
    check_train_step(ref["train_step"], ref["sequence_loss"])
    check_train_step(_step(_masked), reference_sequence_loss)
    check_train_step(_step(_by_hand), reference_sequence_loss)


@pytest.mark.parametrize(
    "step, hint",
    [
        (_step(_masked, zero_grad=False), "zero_grad"),
        (_step(_every_position), "counts every position"),
        (_step(_masked, returned="tensor"), "as a Python float"),
        (lambda model, optimizer, X, Y, mask: 0.0, r"optimizer.step\(\) 0 times"),
    ],
    ids=["no zero_grad", "ignores the mask", "returns a tensor", "no step at all"],
)
def test_train_step_check_catches(step, hint):
    fails(check_train_step, step, reference_sequence_loss, match=hint)


def test_the_graders_train_step_cases_test_the_step_itself(ref):
    """A step that ignores the mask, keeps old gradients or steps twice trains the model all
    the same (a training outcome cannot tell): the grader's cases look at the step."""

    def unmasked(model, optimizer, X, Y, mask):
        optimizer.zero_grad()
        logits = model(X)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss.item()

    def dirty(model, optimizer, X, Y, mask):
        loss = sequence_loss(model(X), Y, mask)
        loss.backward()
        optimizer.step()
        return loss.item()

    def twice(model, optimizer, X, Y, mask):
        ref["train_step"](model, optimizer, X, Y, mask)
        return ref["train_step"](model, optimizer, X, Y, mask)

    def returns_a_tensor(model, optimizer, X, Y, mask):
        ref["train_step"](model, optimizer, X, Y, mask)
        return torch.tensor(0.0)

    sequence_loss = reference_sequence_loss
    rejection(LESSON, "train_step", unmasked, "case with padding: the gradient .* is not that of")
    rejection(LESSON, "train_step", dirty, "from fresh gradients")
    rejection(LESSON, "train_step", twice, r"optimizer.step\(\) 2 times")
    rejection(LESSON, "train_step", returns_a_tensor, "a float")


def test_layer_check_catches_a_state_made_on_the_cpu(ref):
    """The lesson says: allocate on X.device. A zero state made without it passes on a CPU, and
    fails on a GPU; the check runs the layer on "meta" inputs to find it without one."""
    cell = ref["rnn_cell_forward"]

    def zeros_on_the_cpu(X, h0, W_xh, W_hh, b_h):
        h = torch.zeros(X.shape[0], W_hh.shape[0], dtype=X.dtype) if h0 is None else h0
        states = []
        for t in range(X.shape[1]):
            h = cell(X[:, t], h, W_xh, W_hh, b_h)
            states.append(h)
        return torch.stack(states, 1), h

    check_rnn_forward(zeros_on_the_cpu)  # h0 given: nothing is allocated
    with pytest.raises(CheckFailed, match=r"device=X\.device"):
        check_rnn_forward(zeros_on_the_cpu, zero_h0=True)
