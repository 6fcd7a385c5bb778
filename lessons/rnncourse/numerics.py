"""Numerical tools for checking gradients and comparing results.

The centred difference  (f(x + h) - f(x - h)) / 2h  has error O(h^2); in float64 with
h = 1e-6 it agrees with an analytic gradient to a relative error of about 1e-9 or better.
"""

from collections.abc import Callable

import torch


def rel_error(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> float:
    """Largest elementwise relative error  |x - y| / max(eps, |x| + |y|)  as a float."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(eps)).max().item()


@torch.no_grad()
def numerical_gradient_array(
    f: Callable[[], torch.Tensor], x: torch.Tensor, upstream: torch.Tensor, h: float = 1e-6
):
    """Centred-difference gradient of  sum(f() * upstream)  with respect to ``x``.

    Use it for functions with a tensor output: ``upstream`` plays the role of dL/d(output),
    so the result is dL/dx by the chain rule. ``x`` is perturbed in place and restored.
    """
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        old = flat_x[i].item()
        flat_x[i] = old + h
        out_plus = torch.as_tensor(f(), dtype=torch.float64).clone()
        flat_x[i] = old - h
        out_minus = torch.as_tensor(f(), dtype=torch.float64).clone()
        flat_x[i] = old
        flat_grad[i] = ((out_plus - out_minus) * upstream).sum().item() / (2 * h)
    return grad


def numerical_gradient(f: Callable[[], torch.Tensor], x: torch.Tensor, h: float = 1e-6):
    """Centred-difference gradient of a scalar function ``f()`` with respect to ``x``.

    ``f`` takes no arguments and reads ``x``, which is perturbed in place one entry at a
    time and restored afterwards. Returns a tensor shaped like ``x``.
    """
    upstream = torch.ones_like(torch.as_tensor(f(), dtype=x.dtype))
    return numerical_gradient_array(f, x, upstream, h)


def rel_error_norm(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> float:
    """Relative error of whole tensors,  ||x - y|| / max(eps, ||x|| + ||y||),  as a float.

    The yardstick for gradient checks: entry by entry (``rel_error``), a gradient entry that
    happens to be tiny shows a large relative error from rounding alone; measured on the whole
    tensor, a correct float64 gradient agrees with centred differences to about 1e-10.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return ((x - y).norm() / (x.norm() + y.norm()).clamp_min(eps)).item()
