"""Building blocks of the checks: call the student's code, then compare with a message.

A check fails with an ``AssertionError`` whose message says what to look at, e.g.
``h_t has shape (4, 3); expected (B, H) = (4, 5)`` or
``largest difference 0.31 at [2, 1] (yours 0.12, expected 0.43). Is the bias inside tanh?``
"""

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import torch


class CheckFailed(AssertionError):
    """Raised by every check; an AssertionError so that notebooks and pytest treat it alike."""


def call_student(fn: Callable, *args, name: str | None = None, shared=(), **kwargs):
    """Call a student's function on copies of its tensor arguments; turn what it raises into a
    readable failure.

    The check computes its reference on the originals, so an answer that updates a local
    tensor in place (``dh += ...`` on a view of ``dH``, ``c *= f``) is not compared with
    numbers it changed. Arguments the function writes by contract (``clip_grad_norm``'s
    gradients) or that the check inspects afterwards are listed in ``shared`` (positions) and
    passed as they are. Tensors that require gradients are passed as they are too (autograd
    refuses in-place changes to them). Which copies the function changed is remembered for
    ``expect_close``'s message.
    """
    name = name or getattr(fn, "__name__", "your function")
    copies = [a if i in shared else _copy(a) for i, a in enumerate(args)]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    try:
        result = fn(*copies, **kw_copies)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from None
    except CheckFailed:
        raise
    except Exception as err:  # the student's bug, reported with where it happened
        raise CheckFailed(f"{name} raised {type(err).__name__}: {err}") from err
    labels = _argument_names(fn, len(args), list(kwargs))
    CHANGED[:] = [
        label
        for label, before, after in zip(
            labels, [*args, *kwargs.values()], [*copies, *kw_copies.values()], strict=True
        )
        for label in _changed(label, before, after)
    ]
    return result


# Arguments the last student call changed in place (names as in its signature).
CHANGED: list[str] = []


def _copy(value):
    """``value`` with each plain tensor in it cloned, at any depth of lists, tuples and dicts
    (a list of caches holds tuples of tensors). Containers without a tensor stay the same
    object, so a check that compares identities still can."""
    if isinstance(value, torch.Tensor):
        return value if value.requires_grad else value.clone()
    if not _holds_tensor(value):
        return value
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return type(value)(_copy(v) for v in value)


def _holds_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    if type(value) in (list, tuple):  # not a namedtuple or other subclass: rebuilt by type()
        return any(_holds_tensor(v) for v in value)
    return False


def _changed(label: str, before, after) -> list[str]:
    if after is before:
        return []
    if isinstance(before, torch.Tensor):
        same = before.shape == after.shape and torch.equal(
            torch.nan_to_num(before.detach()), torch.nan_to_num(after.detach())
        )
        return [] if same else [label]
    if isinstance(before, dict):
        return [c for k in before for c in _changed(f"{label}[{k!r}]", before[k], after[k])]
    if isinstance(before, list | tuple):
        pairs = zip(before, after, strict=False)
        return [c for i, (b, a) in enumerate(pairs) for c in _changed(f"{label}[{i}]", b, a)]
    return []


def _argument_names(fn: Callable, n_positional: int, keywords: list[str]) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    positional = [
        params[i] if i < len(params) else f"argument {i + 1}" for i in range(n_positional)
    ]
    return positional + keywords


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
    raise CheckFailed(f"{message} {hint}{_changed_note()}".strip())


def _changed_note() -> str:
    if not CHANGED:
        return ""
    return (
        f" Note: your function changed {', '.join(CHANGED)} in place. The check gave it a copy,"
        " but code that reads an argument after changing it reads the changed values: work"
        " on new tensors (x = x + ..., not x += ...)."
    )


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


@dataclasses.dataclass
class Step:
    """What ``RecordingSGD`` saw at one ``step()``, in ``param_groups`` order."""

    params: list[torch.Tensor]  # the parameters before the update
    grads: list[torch.Tensor | None]  # the gradients it applied (None where there was none)
    after_call: int  # how many calls of the model had happened (when it counts them)


class RecordingSGD(torch.optim.SGD):
    """SGD that records every ``step()``: the parameters before it and the gradients it applies.

    ``calls`` is a model's list of its calls (e.g. ``RecordingRNN.calls``): each step then
    says after how many calls it came.
    """

    def __init__(self, params, lr=0.1, calls: list | None = None):
        super().__init__(params, lr=lr)
        self.calls = calls
        self.steps: list[Step] = []

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        self.steps.append(
            Step(
                params=[p.detach().clone() for p in params],
                grads=[None if p.grad is None else p.grad.detach().clone() for p in params],
                after_call=0 if self.calls is None else len(self.calls),
            )
        )
        return super().step(closure)


_MIXED = ("is not on the expected device", "on the same device")


def device_mix_problem(fn, *args) -> str | None:
    """Run ``fn`` with some arguments on PyTorch's "meta" device (shapes, no data), a stand-in
    for a GPU that every machine has: a tensor the function makes on the CPU, or an argument
    it forgets to move, meets a meta tensor and PyTorch refuses. Returns that error, or why the
    result is not on the meta device; None otherwise, also when the run failed only because
    meta tensors hold no data (code that reads values may still be right on a GPU)."""
    try:
        out = fn(*args)
    except (RuntimeError, NotImplementedError) as err:
        return f"{err}" if any(m in str(err) for m in _MIXED) else None
    except Exception:
        return None  # not a device problem: the numeric checks judge the rest
    outs = out if isinstance(out, tuple | list) else (out,)
    if any(isinstance(t, torch.Tensor) and t.device.type != "meta" for t in outs):
        return "its result is on the CPU, not on the device of its inputs"
    return None
