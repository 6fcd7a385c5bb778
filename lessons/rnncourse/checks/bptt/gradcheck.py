"""Lesson 02's checks, gradient checking: the student's numerical_gradient on known functions.

No numerical gradient is computed here: on a polynomial, every finite difference has a closed
form (the centred one of a cubic is off by exactly a eps^2), so the check compares with those
forms and names the difference the student computed instead (one-sided, wrong scale, eps
ignored). A smooth function then checks the accuracy at the default eps.
"""

import torch

from rnncourse.checks._core import CheckFailed, call_student, expect_tensor
from rnncourse.checks._core import randn as _randn
from rnncourse.numerics import rel_error_norm

MAX_NUMERICAL_ERROR = 1e-7  # centred differences in float64 agree to ~1e-9 when they are right
CUBIC_EPS = 0.1  # large, so that every way of taking the difference leaves its own mark
CUBIC_ERROR = 1e-9  # the closed forms hold to rounding (~1e-14) in float64
OWN_STEP_ERROR = 1e-6  # a step of one's own (1e-4 or less) leaves the exact gradient to ~1e-8
RESTORE_TOLERANCE = 1e-12  # x + eps - 2 eps + eps may differ from x in the last bit

CENTRED = "entry i is (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)"


def without_autograd(f):
    """``f`` run without autograd: the answer must take differences, not call backward()."""

    def loss():
        with torch.no_grad():
            return f()

    return loss


def _call(numerical_gradient, f, x, *eps):
    """The answer on f (run without autograd) and x itself: f reads x, so x is not copied."""
    try:
        return call_student(numerical_gradient, without_autograd(f), x, *eps, shared=(1,))
    except CheckFailed as err:
        if "does not require grad" not in str(err):
            raise
        raise CheckFailed(
            f"{err}. Here f runs without autograd, as a loss you can only evaluate would: "
            f"take differences of its values ({CENTRED})."
        ) from None


def cubic(a, b, x):
    """The check's polynomial, sum(a x^3 + b x^2), and its exact gradient 3 a x^2 + 2 b x."""
    return (a * x**3 + b * x**2).sum(), 3 * a * x**2 + 2 * b * x


def cubic_differences(a, b, x, eps):
    """The finite differences of ``cubic`` with step ``eps``, in closed form: what a
    numerical_gradient returns when it takes each of them (x: the point, any shape)."""
    exact = 3 * a * x**2 + 2 * b * x
    centred = exact + a * eps**2  # (f(x + e) - f(x - e)) / 2e: the x^2 term is exact
    one_sided = 3 * a * x * eps + b * eps  # forward minus centred, backward plus it
    return {
        "centred": centred,
        "forward": centred + one_sided,
        "backward": centred - one_sided,
        "divided by eps": 2 * centred,
        "half steps": exact + a * eps**2 / 4,  # (f(x + e/2) - f(x - e/2)) / e
        "eps ignored": exact,  # a step so small that a eps^2 vanishes
    }


def smooth(w, x):
    """A smooth function that couples every entry, sum(w sin x) + (sum x)^2, and its gradient
    w cos x + 2 sum x: an x left perturbed changes the gradient of every later entry."""
    return (w * torch.sin(x)).sum() + x.sum() ** 2, w * torch.cos(x) + 2 * x.sum()


CUBIC_HINTS = {
    "forward": "this is the one-sided difference (f(x + eps e_i) - f(x)) / eps, whose error "
    "is of order eps. Use the centred one: " + CENTRED + ", whose error is of order eps^2.",
    "backward": "this is the one-sided difference (f(x) - f(x - eps e_i)) / eps, whose error "
    "is of order eps. Use the centred one: " + CENTRED + ", whose error is of order eps^2.",
    "divided by eps": "every entry is twice the centred difference: x + eps and x - eps are "
    "2 eps apart, so divide by 2 * eps, not by eps.",
    "half steps": "this is the centred difference with steps of eps / 2. Perturb by eps "
    "itself: " + CENTRED + ".",
    "eps ignored": "this is the exact gradient, which a centred difference with eps = 0.1 "
    "cannot give (on a cubic it is off by a eps^2): use the eps passed in, not a step of "
    "your own.",
}


def _restored(x, original, call: str):
    """Fail unless ``x`` holds its values again after numerical_gradient returned."""
    if torch.allclose(x, original, rtol=0, atol=RESTORE_TOLERANCE):
        return
    moved = (x - original).abs().reshape(-1)
    count, i = int((moved > RESTORE_TOLERANCE).sum()), int(moved.argmax())
    raise CheckFailed(
        f"after {call}, x is not what it was: {count} of its {moved.numel()} entries moved "
        f"(entry {i}, flat, by {moved[i].item():.3g}). Put each entry back after its two "
        "evaluations: f reads x, so a value left perturbed changes every later difference "
        "and the caller's tensor."
    )


def check_numerical_gradient(numerical_gradient, *, shape=(3, 4), seed=0):
    """numerical_gradient(f, x, eps) takes centred differences, entry by entry, and restores x.

    Two functions whose gradients are known: a cubic at eps = 0.1, where each kind of finite
    difference has its own closed form, and a smooth function of every entry at the default
    eps, where the centred difference must be within 1e-7 of the true gradient.
    """
    g = torch.Generator().manual_seed(seed + 33)
    a, b, x = (_randn(*shape, dtype=torch.float64, device="cpu", g=g) for _ in range(3))
    original = x.clone()
    call = f"numerical_gradient(f, x, eps={CUBIC_EPS})"
    got = _call(numerical_gradient, lambda: cubic(a, b, x)[0], x, CUBIC_EPS)
    expect_tensor(call, got, shape, "shaped like x")
    if got.dtype != torch.float64:
        raise CheckFailed(
            f"{call} has dtype {got.dtype}; expected torch.float64 like x (torch.zeros_like(x))."
        )
    _restored(x, original, call)
    forms = cubic_differences(a, b, original, CUBIC_EPS)
    errors = {name: rel_error_norm(got, form) for name, form in forms.items()}
    if not errors["centred"] < CUBIC_ERROR:
        close = [
            name
            for name, e in errors.items()
            if e < (OWN_STEP_ERROR if name == "eps ignored" else CUBIC_ERROR)
        ]
        if close:
            hint = CUBIC_HINTS[close[0]]
        elif not bool(got.abs().max() > 0):
            hint = (
                "every entry is 0, so f() did not change: perturb x itself, in place (the "
                "tensor f reads), not a copy of it."
            )
        else:
            hint = f"perturb one entry at a time; {CENTRED}."
        raise CheckFailed(
            f"{call} on f = sum(a x^3 + b x^2): relative error {errors['centred']:.2g} against "
            f"the centred difference (3 a x^2 + 2 b x + a eps^2): {hint}"
        )
    w = _randn(2, *shape, dtype=torch.float64, device="cpu", g=g)  # a third axis: any shape
    x3 = _randn(2, *shape, dtype=torch.float64, device="cpu", g=g)
    original3 = x3.clone()
    call = "numerical_gradient(f, x) with its default eps"
    got = _call(numerical_gradient, lambda: smooth(w, x3)[0], x3)
    expect_tensor(call, got, x3.shape, "shaped like x")
    _restored(x3, original3, call)
    error = rel_error_norm(got, smooth(w, original3)[1])
    if not error < MAX_NUMERICAL_ERROR:
        raise CheckFailed(
            f"{call} on f = sum(w sin x) + (sum x)^2, x of shape {tuple(x3.shape)}: relative "
            f"error {error:.2g} against the exact gradient; need < {MAX_NUMERICAL_ERROR:g} "
            "(centred differences in float64 with eps = 1e-6 reach about 1e-9). Is the "
            "default eps 1e-6, and is every entry of x perturbed, one at a time?"
        )
    print(
        f"numerical_gradient takes centred differences: exact on a cubic at eps = {CUBIC_EPS}, "
        f"relative error {error:.1e} on a smooth function at the default eps, x restored."
    )
