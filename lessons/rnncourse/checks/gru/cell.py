"""Lesson 04's checks, one GRU step: the references (torch.nn.GRU, Cho et al.), the cell."""

import itertools

import torch
from torch import nn

from rnncourse.checks._core import (
    call_student,
    expect_close,
    expect_tensor,
    first_failing_probe,
    matches,
    tolerances,
)
from rnncourse.checks._core import (
    randn as _randn,
)
from rnncourse.checks.gated import PARAM_NAMES, SATURATED, random_cell_params, zero_but

GATE_NAMES = ("r", "z", "n")


CONVENTIONS = ("pytorch", "cho", "neither")


def random_gru_params(input_size, num_hiddens, *, dtype=torch.float64, device="cpu", seed=0):
    """Random GRU parameters in PyTorch's layout, large enough that no gate is linear."""
    return random_cell_params("gru", input_size, num_hiddens, dtype=dtype, device=device, seed=seed)


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


def pinned(params, **gates):
    """Pin gates to 0 or 1: weights zero and a saturated bias, e.g. ``pinned(p, r=1, z=0)``."""
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


def reversed_update(params):
    """Parameters whose update gate is 1 - z: its rows negated, since sigmoid(-a) = 1 - sigmoid(a).

    nn.GRU with these computes h_t = z * n + (1 - z) * h_prev, the interpolation reversed.
    """
    rows = _rows(params, "z")
    return _set_gate(params, "z", **{name: -params[name].detach()[rows] for name in PARAM_NAMES})


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
    probe = _set_gate(pinned(params, z=0), "n", weight_ih=0, weight_hh=0, bias_ih=0, bias_hh=1)
    r = torch.atanh(reference_gru_cell(x_t, h_prev, probe))  # (B, H)
    # 2. Cho's candidate: r pinned to 1, z to 0, and the step starts from r * h_prev.
    candidate = reference_gru_cell(x_t, r * h_prev, pinned(params, r=1, z=0))  # (B, H)
    # 3. the real update gate, with extra inputs that make the candidate exactly `candidate`.
    eps = torch.finfo(dtype).eps
    extra = torch.atanh(candidate.clamp(-1 + eps, 1 - eps))  # (B, H)
    x_wide = torch.cat([x_t, extra], dim=1)  # (B, D + H)
    wide = _set_gate(pinned(params, r=1), "n", weight_ih=0, weight_hh=0, bias_ih=0, bias_hh=0)
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
            torch_with(reversed_update(params)),
        ),
        (
            "The interpolation is reversed (h_t = (1 - z) * n + z * h_prev), and the reset gate "
            "multiplies (h_prev W_hn^T + b_hn), after the product.",
            lambda x, h: cho_gru_cell(x, h, reversed_update(params)),
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
    quiet = zero_but(params)
    keep, take = pinned(quiet, r=1, z=1), pinned(quiet, r=0, z=0)
    keep["bias_hh"][:] = SATURATED  # with z = 1 nothing but h_prev may reach h_t
    take = _set_gate(take, "n", bias_ih=-SATURATED, bias_hh=-SATURATED)  # n = -1 in any order
    v = params["bias_ih"][:H]
    same_bias = {**quiet, "bias_ih": torch.cat([v, v, v])}  # gate order cannot matter here
    order_a = _set_gate(pinned(quiet, r=0, z=1), "n", bias_ih=-SATURATED)
    order_b = _set_gate(pinned(quiet, r=1, z=0), "n", bias_ih=SATURATED)
    gate_biases = _set_gate(zero_but(params, "bias_hh"), "n", bias_hh=0)
    gate_weights = _set_gate(zero_but(params, "weight_hh"), "n", weight_hh=0)
    reset = zero_but(params, "weight_hh", "bias_hh")
    reset = _set_gate(pinned(reset, z=0), "r", bias_ih=params["bias_ih"][:H] + 1.0)
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
            (x, h, zero_but(params, "weight_ih")),
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
