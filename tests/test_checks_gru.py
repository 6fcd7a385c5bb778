"""Lesson 04's checks: the reference passes every one, and each typical bug fails with its hint."""

import functools

import jupytext
import pytest
import torch

from rnncourse.checks import (
    CheckFailed,
    check_adding_baseline,
    check_gru_cell_forward,
    check_gru_convention,
    check_gru_forward,
    check_memory_task,
    check_recurrent_num_params,
)
from rnncourse.checks import gru as gru_checks
from rnncourse.checks.gru import cell as gru_cell_checks
from tests.course import ROOT, solution_cells
from tests.integrity_support import passes_probe, rejection

LESSON = "04_gru"


@pytest.fixture(scope="module")
def ref():
    """The reference answers: the setup cell and the answer cells, without the training cells."""
    nb = jupytext.read(ROOT / "solutions" / LESSON / f"{LESSON}.py", fmt="py:percent")
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    namespace: dict = {"__name__": f"reference_{LESSON}"}
    exec(compile(setup.source, f"<{LESSON}:setup>", "exec"), namespace)
    for grade_id, source in solution_cells(LESSON).items():
        exec(compile(source, f"<{LESSON}:{grade_id}>", "exec"), namespace)
    return namespace


def fails(check, *args, match=None, **kwargs):
    """Assert that a check rejects the student object, with ``match`` in its message."""
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- a buggy GRU
def gru_cell(
    x,
    h,
    p,
    *,
    order=(0, 1, 2),
    reversed_update=False,
    cho=False,
    bias_ih=True,
    bias_hh=True,
    b_hn=True,
    b_hn_outside_reset=False,
    gate=torch.sigmoid,
    candidate=torch.tanh,
    gates_read_h=True,
    interpolate=True,
):
    """A from-scratch GRU step with switches for typical bugs (defaults: PyTorch's GRU)."""
    W_ih = p["weight_ih"].chunk(3)
    W_hh = p["weight_hh"].chunk(3)
    b_ih = p["bias_ih"].chunk(3) if bias_ih else [torch.zeros_like(p["bias_ih"][:1])] * 3
    b_hh = list(p["bias_hh"].chunk(3)) if bias_hh else [torch.zeros_like(p["bias_hh"][:1])] * 3
    if not b_hn:
        b_hh[2] = torch.zeros_like(b_hh[2])
    r_, z_, n_ = order

    def gate_preactivation(k):
        recurrent = h @ W_hh[k].T if gates_read_h else 0
        return x @ W_ih[k].T + b_ih[k] + recurrent + b_hh[k]

    r = gate(gate_preactivation(r_))
    z = gate(gate_preactivation(z_))
    if cho:
        inner = (r * h) @ W_hh[n_].T + b_hh[n_]
    elif b_hn_outside_reset:
        inner = r * (h @ W_hh[n_].T) + b_hh[n_]
    else:
        inner = r * (h @ W_hh[n_].T + b_hh[n_])
    n = candidate(x @ W_ih[n_].T + b_ih[n_] + inner)
    if not interpolate:
        return n
    if reversed_update:
        return z * n + (1 - z) * h
    return (1 - z) * n + z * h


def bug(**switches):
    return functools.partial(gru_cell, **switches)


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_visible_and_hidden_checks(ref):
    check_gru_cell_forward(ref["gru_cell_forward"])
    check_gru_forward(ref["gru_forward"])
    check_gru_forward(ref["gru_forward"], zero_h0=True)
    check_gru_convention(ref["gru_convention"])
    check_recurrent_num_params(ref["recurrent_num_params"])
    check_adding_baseline(ref["adding_baseline_mse"])
    for function in PLAIN_CALLS + ("gru_convention",):
        passes_probe(LESSON, function, ref[function])


PLAIN_CALLS = ("gru_cell_forward", "gru_forward", "recurrent_num_params")


def test_the_switchable_gru_defaults_to_pytorch():
    """The bug factory below is right when no switch is set, so each bug is exactly one bug."""
    check_gru_cell_forward(gru_cell)
    check_gru_cell_forward(gru_cell, dtype=torch.float32, batch_size=1, input_size=6)


@pytest.mark.parametrize(
    "check",
    [
        check_gru_cell_forward,
        check_gru_forward,
        check_gru_convention,
        check_recurrent_num_params,
        check_adding_baseline,
    ],
)
def test_stub_fails_with_a_clear_message(check):
    fails(check, not_implemented, match="not implemented yet")


# ----------------------------------------------------------------------------- Cho's cell
def test_cho_cell_built_from_nn_gru_matches_the_paper_formula():
    """The check's Cho et al. cell (assembled from nn.GRU steps) equals the explicit formula,
    also with saturating parameters, and differs from PyTorch's GRU."""
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x, h, p = gru_cell_checks._setup_step(4, 3, 5, dtype, "cpu", seed=7)
        for scale in (1.0, 10.0):
            q = {k: v * scale for k, v in p.items()}
            want = gru_cell(x, h, q, cho=True)
            assert (gru_checks.cho_gru_cell(x, h, q) - want).abs().max() < tol
        assert (gru_checks.cho_gru_cell(x, h, p) - gru_cell(x, h, p)).abs().max() > 0.01


# ----------------------------------------------------------------------------- cell
CELL_BUGS = {
    "update interpolation reversed": (bug(reversed_update=True), "interpolation is reversed"),
    "reset gate before the product (Cho)": (bug(cho=True), "You built Cho et al.'s GRU"),
    "Cho and reversed": (bug(cho=True, reversed_update=True), "interpolation is reversed"),
    "r and z swapped": (bug(order=(1, 0, 2)), r"wrong blocks \(r from block 1, z from block 0"),
    "order n, r, z": (bug(order=(1, 2, 0)), "wrong blocks"),
    "bias_ih missing": (bug(bias_ih=False), "bias_ih is missing"),
    "bias_hh missing": (bug(bias_hh=False), "bias_hh is missing"),
    "b_hn missing": (bug(b_hn=False), "b_hn, the candidate's block of bias_hh, is missing"),
    "b_hn outside the reset gate": (bug(b_hn_outside_reset=True), "b_hn included"),
    "sigmoid for the candidate": (bug(candidate=torch.sigmoid), "nonlinearity tanh"),
    "tanh for the gates": (bug(gate=torch.tanh), "z a sigmoid"),
    "h_prev ignored by the gates": (bug(gates_read_h=False), "h_prev must be used"),
    "no interpolation": (bug(interpolate=False), "h_t must be h_prev exactly"),
    "weight_hh not transposed": (
        lambda x, h, p: torch.tanh(x @ p["weight_ih"].T + h @ p["weight_hh"])[:, : h.shape[1]],
        "RuntimeError",
    ),
    "fixed float32": (lambda x, h, p: gru_cell(x, h, p).float(), "dtype"),
    "returns (h, h)": (lambda x, h, p: (gru_cell(x, h, p),) * 2, "Tensor"),
}


@pytest.mark.parametrize("name", CELL_BUGS)
def test_cell_check_catches(name):
    fn, hint = CELL_BUGS[name]
    fails(check_gru_cell_forward, fn, match=hint)


def test_cell_shape_message_names_the_axes():
    fails(
        check_gru_cell_forward,
        lambda x, h, p: gru_cell(x, h, p)[:, :3],
        match=r"h_t has shape \(4, 3\); expected \(B, H\) = \(4, 5\)",
    )


def test_the_graders_cell_checks_catch_what_visible_ones_miss(ref):
    cell = ref["gru_cell_forward"]

    def calls_torch(x, h, p):
        module = torch.nn.GRUCell(x.shape[1], h.shape[1]).to(x.dtype)
        with torch.no_grad():
            for name in gru_checks.PARAM_NAMES:
                getattr(module, name).copy_(p[name])
        return module(x, h)

    check_gru_cell_forward(calls_torch)  # the visible check cannot tell ...
    rejection(LESSON, "gru_cell_forward", calls_torch, "built-in GRU")  # ... the grader's can

    def calls_torch_gru(x, h, p):
        module = gru_checks.torch_gru_from_params(p)
        return module(x.unsqueeze(1), h.unsqueeze(0))[1][0]

    check_gru_cell_forward(calls_torch_gru)
    rejection(LESSON, "gru_cell_forward", calls_torch_gru, "built-in GRU")

    def squeezes(x, h, p):  # breaks for B = 1
        return cell(x, h, p).squeeze()

    check_gru_cell_forward(squeezes)
    rejection(LESSON, "gru_cell_forward", squeezes, "case B = 1, D = 7, H = 2")

    def always_float64(x, h, p):  # breaks for float32 inputs
        return cell(x, h, p).double()

    check_gru_cell_forward(always_float64)
    rejection(LESSON, "gru_cell_forward", always_float64, "float32: h_t has dtype torch.float64")


# ----------------------------------------------------------------------------- layer
def layer_bugs(cell):
    def loop(X, h0, p, order=None, start=None):
        h = X.new_zeros(X.shape[0], p["weight_hh"].shape[1]) if h0 is None else h0
        h = start(h) if start else h
        states = []
        for t in order or range(X.shape[1]):
            h = cell(X[:, t], h, p)
            states.append(h)
        return states

    def not_carried(X, h0, p):
        h0 = X.new_zeros(X.shape[0], p["weight_hh"].shape[1]) if h0 is None else h0
        states = [cell(X[:, t], h0, p) for t in range(X.shape[1])]
        return torch.stack(states, 1), states[-1]

    def pair(stack_dim=1, last=-1, **kwargs):
        def forward(X, h0, p):
            states = loop(X, h0, p, **kwargs)
            return torch.stack(states, stack_dim), states[last]

        return forward

    return {
        "state not carried": (not_carried, "Steps do not chain"),
        "h0 ignored": (pair(start=torch.zeros_like), "h0"),
        "time-major output": (
            pair(stack_dim=0),
            r"H_all has shape \(6, 3, 5\); expected \(B, T, H\)",
        ),
        "first state as last": (pair(last=0), r"H_all\[:, -1\]"),
        "reversed time": (
            lambda X, h0, p: pair(order=range(X.shape[1] - 1, -1, -1))(X, h0, p),
            r"X\[:, t\]",
        ),
        "returns only H_all": (lambda X, h0, p: torch.stack(loop(X, h0, p), 1), "pair"),
    }


def test_layer_check_catches_typical_bugs(ref):
    for name, (fn, hint) in layer_bugs(ref["gru_cell_forward"]).items():
        with pytest.raises(CheckFailed, match=hint):
            check_gru_forward(fn)
            check_gru_forward(fn, zero_h0=True)
            pytest.fail(f"check_gru_forward accepted: {name}")


def test_layer_check_blames_a_wrong_cell(ref):
    def forward_with_cho(X, h0, p):
        h = X.new_zeros(X.shape[0], p["weight_hh"].shape[1]) if h0 is None else h0
        states = []
        for t in range(X.shape[1]):
            h = gru_cell(X[:, t], h, p, cho=True)
            states.append(h)
        return torch.stack(states, 1), h

    fails(check_gru_forward, forward_with_cho, match="single time step")


def test_the_graders_layer_checks_catch_single_step_and_module_calls(ref):
    cell = ref["gru_cell_forward"]

    def skips_first_step(X, h0, p):  # range(1, T) drops t = 0: empty for T = 1
        h = X.new_zeros(X.shape[0], p["weight_hh"].shape[1]) if h0 is None else h0
        states = [h]
        for t in range(1, X.shape[1]):
            h = cell(X[:, t], h, p)
            states.append(h)
        return torch.stack(states, 1), h

    rejection(LESSON, "gru_forward", skips_first_step, "case B = 2, T = 1")

    def calls_nn_gru(X, h0, p):
        return gru_checks.torch_gru_from_params(p)(X, None if h0 is None else h0[None])

    def calls_nn_gru_pair(X, h0, p):
        out, h_n = calls_nn_gru(X, h0, p)
        return out, h_n[0]

    check_gru_forward(calls_nn_gru_pair)
    rejection(LESSON, "gru_forward", calls_nn_gru_pair, "built-in GRU")


# ----------------------------------------------------------------------------- convention
def _convention_by_comparison(cell, params_fn, labels=("pytorch", "cho", "neither")):
    """A student-like gru_convention: run the cell and the formulas on params_fn()'s inputs."""
    x, h, p = params_fn()
    got = cell(x, h, p)
    if "pytorch" in labels and torch.allclose(got, gru_cell(x, h, p), atol=1e-10):
        return "pytorch"
    if "cho" in labels and torch.allclose(got, gru_cell(x, h, p, cho=True), atol=1e-10):
        return "cho"
    return "neither" if "neither" in labels else labels[-1]


def _random_inputs():
    return gru_cell_checks._setup_step(3, 4, 5, torch.float64, "cpu", seed=3)


def _uniform_reset_no_b_hn():
    """Inputs where both conventions agree: r the same for every unit, b_hn = 0."""
    x, h, p = _random_inputs()
    p = gru_cell_checks._set_gate(p, "r", weight_ih=0, weight_hh=0, bias_ih=0.3, bias_hh=0)
    return x, h, gru_cell_checks._set_gate(p, "n", bias_hh=0)


def _update_gate_one_half():
    """Inputs where z = 1/2 exactly: a reversed interpolation cannot be seen."""
    x, h, p = _random_inputs()
    return x, h, gru_cell_checks._set_gate(p, "z", weight_ih=0, weight_hh=0, bias_ih=0, bias_hh=0)


CONVENTION_BUGS = {
    "always pytorch": (lambda cell: "pytorch", "cannot tell the two conventions apart"),
    "always cho": (lambda cell: "cho", "expected 'pytorch'"),
    "returns a bool": (lambda cell: True, "should return one of"),
    "never neither": (
        lambda cell: _convention_by_comparison(cell, _random_inputs, ("pytorch", "cho")),
        "answer 'neither'",
    ),
    "never cho": (
        lambda cell: _convention_by_comparison(cell, _random_inputs, ("pytorch", "neither")),
        "This cell is Cho et al.'s GRU",
    ),
    "inputs where the conventions agree": (
        lambda cell: _convention_by_comparison(cell, _uniform_reset_no_b_hn),
        "r varies and b_hn is not zero",
    ),
}


@pytest.mark.parametrize("name", CONVENTION_BUGS)
def test_convention_check_catches(name):
    fn, hint = CONVENTION_BUGS[name]
    fails(check_gru_convention, fn, match=hint)


def test_student_like_convention_test_passes():
    check_gru_convention(lambda cell: _convention_by_comparison(cell, _random_inputs))


def test_the_graders_convention_check_catches_a_blind_spot():
    """With z = 1/2 in its inputs a test cannot see a reversed interpolation: visible cells
    do not need it, the hidden reversed-interpolation cell does."""

    def blind(cell):
        return _convention_by_comparison(cell, _update_gate_one_half)

    check_gru_convention(blind)
    rejection(LESSON, "gru_convention", blind, "interpolation reversed")


# ----------------------------------------------------------------------------- counting
def _count(blocks, D, H, L, *, biases=2, later_input=None):
    later = H if later_input is None else later_input
    first = blocks * H * (D + H + biases)
    return first + (L - 1) * blocks * H * (later + H + biases)


BLOCKS = {"rnn": 1, "gru": 3, "lstm": 4}
COUNT_BUGS = {
    "gru and lstm swapped": (
        lambda k, D, H, L: _count({"rnn": 1, "gru": 4, "lstm": 3}[k], D, H, L),
        "that is the count of nn.GRU",
    ),
    "one bias": (lambda k, D, H, L: _count(BLOCKS[k], D, H, L, biases=1), "one bias short"),
    "later layers read D": (
        lambda k, D, H, L: _count(BLOCKS[k], D, H, L, later_input=D),
        "input size is H, not D",
    ),
    "num_layers ignored": (lambda k, D, H, L: _count(BLOCKS[k], D, H, 1), "that is one layer"),
    "a float": (lambda k, D, H, L: float(_count(BLOCKS[k], D, H, L)), "int"),
    "no recurrent weights": (
        lambda k, D, H, L: _count(BLOCKS[k], D, H, L) - L * BLOCKS[k] * H * H,
        "four tensors",
    ),
}


def test_count_checks_want_a_formula_as_the_lesson_says():
    def builds_the_module(kind, D, H, L):
        module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        return sum(p.numel() for p in module(D, H, num_layers=L).parameters())

    # The visible check says so ...
    fails(check_recurrent_num_params, builds_the_module, match="as a formula")
    torch.nn.GRU(2, 3)  # ... and the guard is gone afterwards


def test_count_formula_of_the_tests_is_right():
    check_recurrent_num_params(lambda k, D, H, L: _count(BLOCKS[k], D, H, L))


@pytest.mark.parametrize("name", COUNT_BUGS)
def test_count_check_catches(name):
    fn, hint = COUNT_BUGS[name]
    fails(check_recurrent_num_params, fn, match=hint)


# ----------------------------------------------------------------------------- baseline
@pytest.mark.parametrize(
    "value, hint",
    [
        (1 / 12, "variance of one uniform value"),
        (1 / 3, "Var\\(y\\)"),
        (1.0, "Var\\(y\\)"),
        ("0.1667", "should return a number"),
    ],
)
def test_baseline_check_catches(value, hint):
    fails(check_adding_baseline, lambda: value, match=hint)


def test_baseline_check_accepts_a_scalar_tensor(ref):
    check_adding_baseline(lambda: torch.tensor(ref["adding_baseline_mse"]()))


# ----------------------------------------------------------------------------- memory task
def oracle(X):
    """Adds the marked values exactly: what a perfectly trained model computes."""
    return (X[..., 0] * X[..., 1]).sum(dim=1)


def constant(X):
    return torch.ones(X.shape[0])


def second_value_only(X):
    """Remembers only the second marked value (in the second half) and guesses the first."""
    half = X.shape[1] // 2
    return (X[:, half:, 0] * X[:, half:, 1]).sum(dim=1) + 0.5


def test_memory_check_passes_models_that_add_and_reports_the_rnn(capsys):
    check_memory_task({"rnn": constant, "lstm": oracle, "gru": oracle}, num_steps=20)
    assert "rnn 0.1" in capsys.readouterr().out  # the vanilla RNN is reported, not graded


@pytest.mark.parametrize(
    "models, hint",
    [
        ({"lstm": oracle, "gru": constant}, "the gru model's test MSE"),
        ({"lstm": second_value_only, "gru": oracle}, "the lstm model's test MSE"),
        ({"lstm": oracle}, "no trained model for gru"),
        ({"lstm": oracle, "gru": lambda X: oracle(X)[:, None]}, r"shape \(2000, 1\)"),
        ({"lstm": oracle, "gru": not_implemented}, "running the gru model failed"),
        ([oracle, oracle], "should be a dict"),
    ],
)
def test_memory_check_catches(models, hint):
    fails(check_memory_task, models, num_steps=20, match=hint)
