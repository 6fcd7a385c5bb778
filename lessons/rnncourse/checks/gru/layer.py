"""Lesson 04's checks, the layer and which convention a cell follows."""

import torch

from rnncourse.checks._core import (
    CheckFailed,
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
from rnncourse.checks.gru.cell import (
    CONVENTIONS,
    PARAM_NAMES,
    _permute_gates,
    cho_gru_cell,
    pinned,
    random_gru_params,
    reference_gru_cell,
    reference_gru_forward,
)


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
    memoryless = {**pinned(params, z=0), "weight_hh": torch.zeros_like(params["weight_hh"])}
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


def black_box(step):
    """A cell with gru_cell_forward's signature that computes ``step`` and nothing else."""

    def cell(x_t, h_prev, params):
        with torch.no_grad():
            return step(x_t, h_prev, {k: params[k] for k in PARAM_NAMES})

    return cell


def convention_cells():
    """(expected answer, description, cell) triples that ``check_gru_convention`` shows (the
    grader tries more, built the same way: ``black_box``, ``reversed_update``, ``pinned``)."""
    return [
        ("pytorch", "a step of torch.nn.GRU itself", black_box(reference_gru_cell)),
        (
            "cho",
            "a cell with Cho et al.'s candidate, tanh(x_t W_in^T + b_in + (r * h_prev) W_hn^T "
            "+ b_hn)",
            black_box(cho_gru_cell),
        ),
        (
            "neither",
            "a GRU that reads r and z from swapped blocks",
            black_box(lambda x, h, p: reference_gru_cell(x, h, _permute_gates(p, (1, 0, 2)))),
        ),
    ]


def check_gru_convention(gru_convention, cells=None):
    """gru_convention(cell) must say which GRU a cell computes: "pytorch", "cho" or "neither"."""
    for expected, description, cell in cells or convention_cells():
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
