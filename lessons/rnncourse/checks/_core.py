"""Building blocks of the checks: call the student's code, then compare with a message.

A check fails with an ``AssertionError`` whose message says what to look at, e.g.
``h_t has shape (4, 3); expected (B, H) = (4, 5)`` or
``largest difference 0.31 at [2, 1] (yours 0.12, expected 0.43). Is the bias inside tanh?``
"""

from collections.abc import Callable, Sequence

import torch


class CheckFailed(AssertionError):
    """Raised by every check; an AssertionError so that notebooks and pytest treat it alike."""


def call_student(fn: Callable, *args, name: str | None = None, **kwargs):
    """Call a student's function and turn whatever it raises into a readable failure."""
    name = name or getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from None
    except CheckFailed:
        raise
    except Exception as err:  # the student's bug, reported with where it happened
        raise CheckFailed(f"{name} raised {type(err).__name__}: {err}") from err


def expect_tensor(name: str, value, shape: Sequence[int], dims: str = "") -> torch.Tensor:
    """Fail unless ``value`` is a tensor of this shape; ``dims`` names the axes, e.g. "(B, H)"."""
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{name} should be a torch.Tensor; got {type(value).__name__}.")
    shape = tuple(shape)
    if tuple(value.shape) != shape:
        named = f"{dims} = {shape}" if dims else f"{shape}"
        raise CheckFailed(f"{name} has shape {tuple(value.shape)}; expected {named}.")
    return value


def tolerances(dtype: torch.dtype) -> dict:
    """Comparison tolerances: tight in float64 (exact maths), loose enough for float32 rounding."""
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-10}
    return {"rtol": 1e-5, "atol": 1e-5}


def is_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float) -> bool:
    """True when shapes agree and every entry is within tolerance (NaN never is)."""
    if actual.shape != expected.shape:
        return False
    return bool(torch.isclose(actual, expected.to(actual.dtype), rtol=rtol, atol=atol).all())


def matches(actual, expected: torch.Tensor, *, rtol: float, atol: float) -> bool:
    """True when ``actual`` is a tensor of the expected shape and dtype, close to ``expected``."""
    return (
        isinstance(actual, torch.Tensor)
        and actual.dtype == expected.dtype
        and is_close(actual.detach(), expected, rtol=rtol, atol=atol)
    )


def expect_close(
    name: str,
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    rtol: float,
    atol: float,
    hint: str = "",
) -> None:
    """Fail with the largest difference, where it is, both values and a hint."""
    expect_tensor(name, actual, expected.shape)
    if actual.dtype != expected.dtype:
        raise CheckFailed(
            f"{name} has dtype {actual.dtype}; expected {expected.dtype} like the inputs. "
            "Create new tensors with dtype=x.dtype, device=x.device."
        )
    if actual.device != expected.device:
        raise CheckFailed(
            f"{name} is on {actual.device}; expected {expected.device} like the inputs."
        )
    if is_close(actual, expected, rtol=rtol, atol=atol):
        return
    diff = (actual.detach() - expected).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    flat = int(diff.argmax())
    where = list(torch.unravel_index(torch.tensor(flat), diff.shape)) if diff.dim() else []
    where = [int(i) for i in where]
    a, e = actual.detach().reshape(-1)[flat].item(), expected.reshape(-1)[flat].item()
    at = f" at {where}" if where else ""
    message = (
        f"{name}: largest difference {diff.reshape(-1)[flat].item():.3g}{at} "
        f"(yours {a:.6g}, expected {e:.6g})."
    )
    raise CheckFailed(f"{message} {hint}".strip())


def first_failing_probe(student, reference, probes, *, name: str, rtol: float, atol: float):
    """Run isolating probes in order; return the hint of the first one the student gets wrong.

    Each probe is ``(hint, args)``: the same function called on inputs chosen so that only
    one term of the formula is alive (all weights zero but one, a single time step, ...).
    Like Coursera's "is it related to b?" messages, this names the wrong term, not just the
    wrong number. ``student`` and ``reference`` return a tensor or a tuple of tensors.
    """
    for hint, args in probes:
        got = call_student(student, *args, name=name)
        want = reference(*args)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        if len(got) != len(want) or not all(
            matches(g, w, rtol=rtol, atol=atol) for g, w in zip(got, want, strict=True)
        ):
            return hint
    return ""


def random_gated_params(num_gates, input_size, num_hiddens, *, hh_scale, dtype, device, seed):
    """Random recurrent parameters in PyTorch's layout for ``num_gates`` stacked gate blocks.

    weight_ih (G*H, D), weight_hh (G*H, H), bias_ih and bias_hh (G*H,): large enough that no
    gate works in its linear range, so every term matters to the comparison.
    """
    G, D, H = num_gates, input_size, num_hiddens
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "weight_ih": ((G * H, D), 0.6),
        "weight_hh": ((G * H, H), hh_scale),
        "bias_ih": ((G * H,), 0.5),
        "bias_hh": ((G * H,), 0.5),
    }
    return {
        name: (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(
            dtype=dtype, device=device
        )
        for name, (shape, scale) in shapes.items()
    }


def randn(*shape, dtype, device, g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """Seeded normal samples drawn in float64, then cast: the same numbers in every dtype."""
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    return x.to(dtype=dtype, device=device)
