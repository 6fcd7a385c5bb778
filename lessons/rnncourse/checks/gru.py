"""Checks for lesson 04 (GRU), with ``torch.nn.GRU`` as the reference.

Parameters use PyTorch's layout: a dict with ``weight_ih`` (3H, D), ``weight_hh`` (3H, H),
``bias_ih`` (3H,) and ``bias_hh`` (3H,), whose 3H rows are three blocks of H in the order
r (reset gate), z (update gate), n (candidate): the names of ``nn.GRUCell``'s parameters
(``nn.GRU`` adds a suffix per layer, ``weight_ih_l0``). Batch first: X is (B, T, D), h is (B, H).

No check here contains the GRU's equations: expected values come from ``nn.GRU``. Cho et al.'s
variant (2014), which the convention exercise needs, is assembled from ``nn.GRU`` steps whose
gates are pinned by saturating their biases, and typical bugs are reproduced the same way
(blocks permuted, the update gate's rows negated: sigmoid(-a) = 1 - sigmoid(a)).
"""

import itertools
import math
from unittest import mock

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_close,
    expect_tensor,
    first_failing_probe,
    matches,
    random_gated_params,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GATE_NAMES = ("r", "z", "n")
SATURATED = 40.0  # sigmoid(40) rounds to exactly 1.0 in float32 and float64, tanh(40) too
CONVENTIONS = ("pytorch", "cho", "neither")


# ----------------------------------------------------------------------------- references
def random_gru_params(input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random GRU parameters in PyTorch's layout, large enough that no gate is linear."""
    return random_gated_params(
        3, input_size, num_hiddens, hh_scale=0.5, dtype=dtype, device=device, seed=seed
    )


def torch_gru_from_params(params) -> nn.GRU:
    """A one-layer, batch-first ``nn.GRU`` holding ``params`` (nn.GRUCell's names)."""
    weight = params["weight_ih"]
    gru = nn.GRU(weight.shape[1], weight.shape[0] // 3, batch_first=True)
    gru = gru.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for name in PARAM_NAMES:
            getattr(gru, f"{name}_l0").copy_(params[name])
    return gru


@torch.no_grad()
def reference_gru_forward(X, h0, params):
    """``nn.GRU`` on X (B, T, D) from h0 (B, H) or None: returns (H_all (B, T, H), h_T (B, H))."""
    gru = torch_gru_from_params(params)
    H_all, h_n = gru(X, None if h0 is None else h0.unsqueeze(0))
    return H_all, h_n[0]


def reference_gru_cell(x_t, h_prev, params):
    """One step of ``nn.GRU``: x_t (B, D), h_prev (B, H) -> h_t (B, H)."""
    return reference_gru_forward(x_t.unsqueeze(1), h_prev, params)[1]


def _rows(params, gate):
    H = params["weight_hh"].shape[1]
    k = GATE_NAMES.index(gate)
    return slice(k * H, (k + 1) * H)


def _set_gate(params, gate, **values):
    """A copy of ``params`` where the named tensors' rows of ``gate`` are set to ``values``.

    E.g. ``_set_gate(p, "z", weight_ih=0, weight_hh=0, bias_ih=-40, bias_hh=0)`` pins z to 0.
    """
    out = {name: p.detach().clone() for name, p in params.items()}
    rows = _rows(params, gate)
    for name, value in values.items():
        out[name][rows] = value
    return out


def _pin(params, **gates):
    """Pin gates to 0 or 1: weights zero and a saturated bias, e.g. ``_pin(p, r=1, z=0)``."""
    for gate, value in gates.items():
        bias = SATURATED if value else -SATURATED
        params = _set_gate(params, gate, weight_ih=0, weight_hh=0, bias_ih=bias, bias_hh=0)
    return params


def _permute_gates(params, order):
    """Parameters whose blocks (r, z, n) are blocks ``order`` of ``params``."""
    out = {}
    for name in PARAM_NAMES:
        blocks = params[name].detach().chunk(3, dim=0)
        out[name] = torch.cat([blocks[k] for k in order], dim=0)
    return out


def _reversed_update(params):
    """Parameters whose update gate is 1 - z: its rows negated, since sigmoid(-a) = 1 - sigmoid(a).

    nn.GRU with these computes h_t = z * n + (1 - z) * h_prev, the interpolation reversed.
    """
    rows = _rows(params, "z")
    return _set_gate(params, "z", **{name: -params[name].detach()[rows] for name in PARAM_NAMES})


def _zero_but(params, *alive):
    """A copy of ``params`` where every tensor except those named in ``alive`` is zero."""
    return {k: (p.detach() if k in alive else torch.zeros_like(p)) for k, p in params.items()}


@torch.no_grad()
def cho_gru_cell(x_t, h_prev, params):
    """One step of the GRU of Cho et al. (2014), from the same parameters, built from nn.GRU.

    The only difference from PyTorch's GRU is where the reset gate acts: Cho et al. multiply
    h_prev by r before the product with W_hn, so b_hn is not reset. Three nn.GRU steps give it:
    the reset gate, read back from a step whose candidate is tanh(r); the candidate, from a step
    with r pinned to 1 that starts from r * h_prev; the interpolation with the real update gate,
    from a step whose candidate is driven to exactly that value through extra inputs.
    """
    H, dtype, device = h_prev.shape[1], h_prev.dtype, h_prev.device
    params = {k: p.detach() for k, p in params.items()}
    # 1. r: z pinned to 0 and the candidate tanh(0 + r * (0 + 1)): the step returns tanh(r).
    probe = _set_gate(_pin(params, z=0), "n", weight_ih=0, weight_hh=0, bias_ih=0, bias_hh=1)
    r = torch.atanh(reference_gru_cell(x_t, h_prev, probe))  # (B, H)
    # 2. Cho's candidate: r pinned to 1, z to 0, and the step starts from r * h_prev.
    candidate = reference_gru_cell(x_t, r * h_prev, _pin(params, r=1, z=0))  # (B, H)
    # 3. the real update gate, with extra inputs that make the candidate exactly `candidate`.
    eps = torch.finfo(dtype).eps
    extra = torch.atanh(candidate.clamp(-1 + eps, 1 - eps))  # (B, H)
    x_wide = torch.cat([x_t, extra], dim=1)  # (B, D + H)
    wide = _set_gate(_pin(params, r=1), "n", weight_ih=0, weight_hh=0, bias_ih=0, bias_hh=0)
    new_columns = torch.zeros(3 * H, H, dtype=dtype, device=device)
    wide["weight_ih"] = torch.cat([wide["weight_ih"], new_columns], dim=1)  # (3H, D + H)
    wide["weight_ih"][_rows(params, "n"), -H:] = torch.eye(H, dtype=dtype, device=device)
    return reference_gru_cell(x_wide, h_prev, wide)


def _setup_step(B, D, H, dtype, device, seed):
    g = torch.Generator().manual_seed(seed + 1)
    x = _randn(B, D, dtype=dtype, device=device, g=g)
    h = _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    params = random_gru_params(D, H, dtype=dtype, device=device, seed=seed)
    return x, h, params


# ----------------------------------------------------------------------------- cell
def _known_cell_bugs(params):
    """(hint, step) pairs: ``step(x, h)`` computes the cell with that typical bug, via nn.GRU."""

    def torch_with(variant):
        return lambda x, h: reference_gru_cell(x, h, variant)

    bugs = [
        (
            "You built Cho et al.'s GRU: the reset gate multiplies h_prev before the product "
            "with W_hn. PyTorch resets after it, b_hn included: "
            "n = tanh(x_t W_in^T + b_in + r * (h_prev W_hn^T + b_hn)) (see section 3).",
            lambda x, h: cho_gru_cell(x, h, params),
        ),
        (
            "The interpolation is reversed: h_t = (1 - z) * n + z * h_prev, so that z = 1 "
            "keeps the old state.",
            torch_with(_reversed_update(params)),
        ),
        (
            "The interpolation is reversed (h_t = (1 - z) * n + z * h_prev), and the reset gate "
            "multiplies (h_prev W_hn^T + b_hn), after the product.",
            lambda x, h: cho_gru_cell(x, h, _reversed_update(params)),
        ),
        (
            "bias_hh is missing: PyTorch keeps two biases and adds both (b_hn inside the reset "
            "gate's product).",
            torch_with({**params, "bias_hh": torch.zeros_like(params["bias_hh"])}),
        ),
        (
            "bias_ih is missing: PyTorch keeps two biases and adds both.",
            torch_with({**params, "bias_ih": torch.zeros_like(params["bias_ih"])}),
        ),
        (
            "b_hn, the candidate's block of bias_hh, is missing: it belongs inside the reset "
            "gate's product, r * (h_prev W_hn^T + b_hn).",
            torch_with(_set_gate(params, "n", bias_hh=0)),
        ),
    ]
    for order in itertools.permutations(range(3)):
        if order != (0, 1, 2):
            read = ", ".join(f"{g} from block {k}" for g, k in zip(GATE_NAMES, order, strict=True))
            bugs.append(
                (
                    f"The gates are read from the wrong blocks ({read}). The 3H rows are three "
                    "blocks of H in the order r, z, n: torch.chunk(gates, 3, dim=1).",
                    torch_with(_permute_gates(params, order)),
                )
            )
    return bugs


def _bug_hint(got, x, h, params, tol):
    """The hint of the first typical bug that reproduces ``got`` exactly, else ""."""
    for hint, step in _known_cell_bugs(params):
        if matches(got, step(x, h), **tol):
            return hint
    return ""


def _cell_probes(x, h, params):
    """Inputs on which only one part of the cell is alive, in the order a bug is best named."""
    H = h.shape[1]
    quiet = _zero_but(params)
    keep, take = _pin(quiet, r=1, z=1), _pin(quiet, r=0, z=0)
    keep["bias_hh"][:] = SATURATED  # with z = 1 nothing but h_prev may reach h_t
    take = _set_gate(take, "n", bias_ih=-SATURATED, bias_hh=-SATURATED)  # n = -1 in any order
    v = params["bias_ih"][:H]
    same_bias = {**quiet, "bias_ih": torch.cat([v, v, v])}  # gate order cannot matter here
    order_a = _set_gate(_pin(quiet, r=0, z=1), "n", bias_ih=-SATURATED)
    order_b = _set_gate(_pin(quiet, r=1, z=0), "n", bias_ih=SATURATED)
    gate_biases = _set_gate(_zero_but(params, "bias_hh"), "n", bias_hh=0)
    gate_weights = _set_gate(_zero_but(params, "weight_hh"), "n", weight_hh=0)
    reset = _zero_but(params, "weight_hh", "bias_hh")
    reset = _set_gate(_pin(reset, z=0), "r", bias_ih=params["bias_ih"][:H] + 1.0)
    return [
        (
            "With every gate pinned to 1 (z = 1) h_t must be h_prev exactly: "
            "h_t = (1 - z) * n + z * h_prev. Is the interpolation reversed?",
            (x, h, keep),
        ),
        (
            "With every gate pinned to 0 (z = 0) h_t must be the candidate n = tanh(-40) = -1: "
            "is (1 - z) * n part of h_t, z a sigmoid, and the candidate's nonlinearity tanh?",
            (x, h, take),
        ),
        (
            "With the weights zero and the same bias in all three blocks (so the gate order "
            "cannot matter) h_t differs: add bias_ih to x_t @ weight_ih.T, sigmoid for r and "
            "z, tanh for n.",
            (x, h, same_bias),
        ),
        (
            "With z pinned to 1 by its block of bias_ih alone, h_t must be h_prev: the 3H rows "
            "are three blocks of H in the order r, z, n (torch.chunk(gates, 3, dim=1)).",
            (x, h, order_a),
        ),
        (
            "With r and z pinned by their blocks of bias_ih, h_t must be the candidate: the 3H "
            "rows are three blocks of H in the order r, z, n (torch.chunk(gates, 3, dim=1)).",
            (x, h, order_b),
        ),
        (
            "With only the r and z blocks of bias_hh alive h_t differs: bias_hh is added too "
            "(PyTorch keeps two biases).",
            (x, h, gate_biases),
        ),
        (
            "With only weight_ih alive h_t differs: the input term is x_t @ weight_ih.T "
            "(weight_ih is (3H, D)), split into r, z, n.",
            (x, h, _zero_but(params, "weight_ih")),
        ),
        (
            "With only the r and z blocks of weight_hh alive h_t differs: the gates' recurrent "
            "term is h_prev @ weight_hh.T (weight_hh is (3H, H)), and h_prev must be used.",
            (x, h, gate_weights),
        ),
        (
            "With z = 0 and only the candidate's recurrent term alive h_t differs: PyTorch "
            "resets after the product, r * (h_prev @ W_hn.T + b_hn), b_hn included.",
            (x, h, reset),
        ),
    ]


def check_gru_cell_forward(
    gru_cell_forward,
    *,
    batch_size=4,
    input_size=3,
    num_hiddens=5,
    dtype=torch.float64,
    device="cpu",
    seed=0,
):
    """gru_cell_forward(x_t, h_prev, params) must match one step of torch.nn.GRU."""
    B, D, H = batch_size, input_size, num_hiddens
    x, h, params = _setup_step(B, D, H, dtype, device, seed)
    tol = tolerances(dtype)

    h_t = call_student(gru_cell_forward, x, h, params)
    expect_tensor("h_t", h_t, (B, H), "(B, H)")
    expected = reference_gru_cell(x, h, params)
    if matches(h_t, expected, **tol):
        print(f"gru_cell_forward matches torch.nn.GRU (B={B}, D={D}, H={H}, {dtype}).")
        return
    hint = _bug_hint(h_t.detach(), x, h, params, tol) or first_failing_probe(
        gru_cell_forward,
        reference_gru_cell,
        _cell_probes(x, h, params),
        name="gru_cell_forward",
        **tol,
    )
    expect_close(
        "h_t",
        h_t,
        expected,
        hint=hint
        or "Each part is right alone but not together: r and z each add two products and two "
        "biases before their sigmoid.",
        **tol,
    )


# ----------------------------------------------------------------------------- layer
def check_gru_forward(
    gru_forward,
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
    """gru_forward(X, h0, params) must return nn.GRU's (H_all (B, T, H), h_T (B, H))."""
    B, T, D, H = batch_size, num_steps, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed + 2)
    X = _randn(B, T, D, dtype=dtype, device=device, g=g)
    h0 = None if zero_h0 else _randn(B, H, dtype=dtype, device=device, g=g).tanh()
    params = random_gru_params(D, H, dtype=dtype, device=device, seed=seed)
    tol = tolerances(dtype)

    result = call_student(gru_forward, X, h0, params)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(
            f"gru_forward should return a pair (H_all, h_T); got {type(result).__name__}."
        )
    H_all, h_T = result
    expect_tensor("H_all", H_all, (B, T, H), "(B, T, H)")
    expect_tensor("h_T", h_T, (B, H), "(B, H)")
    want_all, want_T = reference_gru_forward(X, h0, params)
    ok_all, ok_T = matches(H_all, want_all, **tol), matches(h_T, want_T, **tol)
    if ok_all and ok_T:
        print(
            f"gru_forward matches torch.nn.GRU (B={B}, T={T}, D={D}, H={H}, {dtype}, "
            f"h0={'None' if h0 is None else 'given'})."
        )
        return
    h_start = torch.zeros(B, H, dtype=dtype, device=device) if h0 is None else h0
    memoryless = {**_pin(params, z=0), "weight_hh": torch.zeros_like(params["weight_hh"])}
    probes = [
        (
            "With a single time step the layer is one cell step from h0: check the first step "
            "(is h0 used, and zeros when h0 is None?).",
            (X[:, :1], h0, params),
        ),
        (
            "With z = 0 and weight_hh = 0 every step depends on its own x_t only: does step t "
            "read X[:, t]?",
            (X, h0, memoryless),
        ),
        (
            "Steps do not chain: the h_t computed at step t must be the h_prev of step t + 1.",
            (X, h_start, params),
        ),
    ]
    hint = first_failing_probe(
        gru_forward, reference_gru_forward, probes, name="gru_forward", **tol
    )
    if not ok_all:
        expect_close(
            "H_all",
            H_all,
            want_all,
            hint=hint or "If gru_cell_forward failed its own check, fix it first.",
            **tol,
        )
    expect_close(
        "h_T",
        h_T,
        want_T,
        hint="h_T must be the hidden state after the last step, H_all[:, -1].",
        **tol,
    )


# ----------------------------------------------------------------------------- convention
def _black_box(step):
    """A cell with gru_cell_forward's signature that computes ``step`` and nothing else."""

    def cell(x_t, h_prev, params):
        with torch.no_grad():
            return step(x_t, h_prev, {k: params[k] for k in PARAM_NAMES})

    return cell


def convention_cells(hidden=False):
    """(expected answer, description, cell) triples that ``check_gru_convention`` shows."""
    cells = [
        ("pytorch", "a step of torch.nn.GRU itself", _black_box(reference_gru_cell)),
        (
            "cho",
            "a cell with Cho et al.'s candidate, tanh(x_t W_in^T + b_in + (r * h_prev) W_hn^T "
            "+ b_hn)",
            _black_box(cho_gru_cell),
        ),
        (
            "neither",
            "a GRU that reads r and z from swapped blocks",
            _black_box(lambda x, h, p: reference_gru_cell(x, h, _permute_gates(p, (1, 0, 2)))),
        ),
    ]
    if hidden:
        cells += [
            (
                "neither",
                "a GRU with the interpolation reversed, z * n + (1 - z) * h_prev",
                _black_box(lambda x, h, p: reference_gru_cell(x, h, _reversed_update(p))),
            ),
            (
                "neither",
                "a GRU without a reset gate (r = 1 always)",
                _black_box(lambda x, h, p: reference_gru_cell(x, h, _pin(p, r=1))),
            ),
            (
                "neither",
                "Cho et al.'s GRU with the interpolation reversed",
                _black_box(lambda x, h, p: cho_gru_cell(x, h, _reversed_update(p))),
            ),
        ]
    return cells


def check_gru_convention(gru_convention, *, hidden=False):
    """gru_convention(cell) must say which GRU a cell computes: "pytorch", "cho" or "neither"."""
    for expected, description, cell in convention_cells(hidden):
        got = call_student(gru_convention, cell)
        if not isinstance(got, str) or got not in CONVENTIONS:
            raise CheckFailed(
                f"gru_convention should return one of {', '.join(map(repr, CONVENTIONS))}; "
                f"got {got!r}."
            )
        if got == expected:
            continue
        if expected == "cho" and got == "pytorch":
            hint = (
                "Your test cannot tell the two conventions apart. They agree when b_hn = 0 and "
                "r is the same for every unit; pick parameters where r varies and b_hn is not "
                "zero (random ones will do), and compare with both formulas."
            )
        elif expected == "cho":
            hint = (
                "This cell is Cho et al.'s GRU: compute its h_t with the same gates and "
                "interpolation but the candidate tanh(x_t W_in^T + b_in + (r * h_prev) W_hn^T "
                "+ b_hn), and compare."
            )
        elif expected == "neither":
            hint = (
                "Compare the cell's whole h_t with each convention's formula on parameters "
                "where every term matters (random ones), and answer 'neither' when neither "
                "matches."
            )
        else:
            hint = (
                "Run the cell and your own formulas on the same random parameters and inputs, "
                "and compare in float64 with a tight tolerance (torch.allclose(..., atol=1e-8))."
            )
        raise CheckFailed(
            f"For {description}, gru_convention answered {got!r}; expected {expected!r}. {hint}"
        )
    print("gru_convention tells PyTorch's GRU, Cho et al.'s GRU and a wrong one apart.")


# ----------------------------------------------------------------------------- counting
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _module_count(kind, input_size, num_hiddens, num_layers=1):
    module = MODULES[kind](input_size, num_hiddens, num_layers=num_layers)
    return sum(p.numel() for p in module.parameters())


def _refuse_modules(*args, **kwargs):
    raise CheckFailed(
        "recurrent_num_params builds a PyTorch module to count its parameters: write the count "
        "as a formula of the sizes."
    )


def check_recurrent_num_params(
    recurrent_num_params,
    cases=(
        ("rnn", 3, 5, 1),
        ("lstm", 3, 5, 1),
        ("gru", 3, 5, 1),
        ("gru", 10, 4, 2),
        ("lstm", 2, 7, 3),
        ("rnn", 6, 3, 2),
    ),
):
    """recurrent_num_params(kind, D, H, num_layers) must count nn.RNN / nn.LSTM / nn.GRU, as a
    formula of the sizes: building the module to count it is refused (the lesson says so)."""
    for kind, D, H, L in cases:
        with mock.patch.object(nn.RNNBase, "__init__", _refuse_modules):
            got = call_student(recurrent_num_params, kind, D, H, L)
        if not isinstance(got, int) or isinstance(got, bool):
            raise CheckFailed(
                f"recurrent_num_params should return an int; got {type(got).__name__}."
            )
        want = _module_count(kind, D, H, L)
        if got == want:
            continue
        other = [k for k in MODULES if k != kind and _module_count(k, D, H, L) == got]
        blocks = {"rnn": 1, "gru": 3, "lstm": 4}[kind]  # gate blocks, as in the lessons' tables
        if other:
            hint = (
                f"that is the count of nn.{other[0].upper()}. Each layer holds one block of "
                "weights per gate: 1 for the RNN, 3 for the GRU (r, z, n), 4 for the LSTM "
                "(i, f, g, o)."
            )
        elif want - got == L * blocks * H:
            hint = "one bias short per layer: PyTorch keeps two, bias_ih and bias_hh."
        elif L > 1 and got == L * _module_count(kind, D, H):
            hint = (
                "layers after the first read the previous layer's h_t: their input size is H, "
                "not D."
            )
        elif L > 1 and got == _module_count(kind, D, H):
            hint = "that is one layer: count all num_layers layers."
        else:
            hint = "list each layer's four tensors and their shapes, as named_parameters() shows."
        raise CheckFailed(
            f"recurrent_num_params({kind!r}, {D}, {H}, num_layers={L}) = {got}; expected {want}: "
            f"{hint}"
        )
    print(f"recurrent_num_params matches PyTorch's modules for {len(cases)} configurations.")


# ----------------------------------------------------------------------------- adding problem
def _adding_batch(num_samples, num_steps, seed):
    from rnncourse.toy_tasks import adding_problem_batch

    X, y = adding_problem_batch(num_samples, num_steps, torch.Generator().manual_seed(seed))
    return X, y.double()


def check_adding_baseline(adding_baseline_mse, *, num_samples=200_000, seed=0):
    """adding_baseline_mse() must be the MSE of the best constant guess on the adding problem.

    Compared with a Monte Carlo estimate (its standard error is about 0.3 %; 2 % is allowed).
    """
    got = call_student(adding_baseline_mse)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, int | float) or isinstance(got, bool):
        raise CheckFailed(f"adding_baseline_mse should return a number; got {type(got).__name__}.")
    X, y = _adding_batch(num_samples, 10, seed)
    want = ((y - y.mean()) ** 2).mean().item()  # the best constant is the mean
    if math.isclose(got, want, rel_tol=0.02):
        print(f"adding_baseline_mse = {got:.4f} agrees with a simulation ({want:.4f}).")
        return
    one_value = X[..., 0].double().var().item()  # the variance of one uniform value
    if math.isclose(got, one_value, rel_tol=0.05):
        hint = (
            "that is the variance of one uniform value. The target adds two independent "
            "ones, and variances of independent terms add."
        )
    else:
        hint = (
            "the best constant guess is the mean E[y]; its mean squared error is "
            "E[(y - E[y])^2] = Var(y). What are E[y] and Var(y) for a sum of two independent "
            "uniform values on [0, 1)?"
        )
    raise CheckFailed(f"adding_baseline_mse() = {got:.4g}; a simulation gives {want:.4f}: {hint}")


@torch.no_grad()
def adding_problem_mse(model, num_steps, *, num_samples=2000, seed=1):
    """(mean squared error of ``model``, of the best constant) on a fixed adding-problem batch."""
    X, y = _adding_batch(num_samples, num_steps, seed)
    prediction = model(X)
    expect_tensor("the model's prediction", prediction, (num_samples,), "(B,)")
    mse = ((prediction.double() - y) ** 2).mean().item()
    return mse, ((y - y.mean()) ** 2).mean().item()


def check_memory_task(models, *, num_steps, max_ratio=0.25, must_learn=("lstm", "gru")):
    """The gated models beat the best constant guess on the adding problem by a clear margin.

    ``models`` maps a name ("rnn", "lstm", "gru") to a trained model, X (B, T, 2) -> y (B,).
    Each model in ``must_learn`` needs a test MSE at most ``max_ratio`` times the baseline's.
    The others (the vanilla RNN) are reported, not graded.
    """
    if not isinstance(models, dict):
        raise CheckFailed(f"models should be a dict name -> model; got {type(models).__name__}.")
    missing = [name for name in must_learn if name not in models]
    if missing:
        raise CheckFailed(
            f"no trained model for {', '.join(missing)}: run the training cell to the end."
        )
    scores = {}
    for name, model in models.items():
        try:
            scores[name] = adding_problem_mse(model, num_steps)
        except CheckFailed:
            raise
        except Exception as err:
            raise CheckFailed(
                f"running the {name} model failed with {type(err).__name__}: {err}"
            ) from err
    baseline = next(iter(scores.values()))[1]
    report = ", ".join(f"{name} {mse:.4f}" for name, (mse, _) in scores.items())
    failed = [name for name in must_learn if scores[name][0] > max_ratio * baseline]
    if not failed:
        print(
            f"Test MSE after training (T = {num_steps}): {report}; the best constant guess "
            f"scores {baseline:.4f}. The gated models reach "
            f"{max(scores[n][0] for n in must_learn) / baseline:.1%} of it or less "
            f"(the bar: {max_ratio:.0%})."
        )
        return
    worst = failed[0]
    raise CheckFailed(
        f"the {worst} model's test MSE is {scores[worst][0]:.4f}, more than {max_ratio:g} x the "
        f"best constant guess ({baseline:.4f}); all: {report}. A model near the baseline has "
        "not found the markers yet: check that the model reads the last step, that "
        "gradients reach every parameter (no .detach() or torch.no_grad() in gru_forward), "
        "and train for the full NUM_ITERS."
    )
