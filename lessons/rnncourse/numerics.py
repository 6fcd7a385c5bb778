"""Relative errors, for comparing a result with a reference (and gradients with a check).

The numerical gradient itself (centred differences) is not here: lesson 02 asks students to
write it (``numerical_gradient``), so this released package must not hold it.
"""

import torch


def rel_error(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> float:
    """Largest elementwise relative error  |x - y| / max(eps, |x| + |y|)  as a float."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(eps)).max().item()


def rel_error_norm(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> float:
    """Relative error of whole tensors,  ||x - y|| / max(eps, ||x|| + ||y||),  as a float.

    The yardstick for gradient checks: entry by entry (``rel_error``), a gradient entry that
    happens to be tiny shows a large relative error from rounding alone; measured on the whole
    tensor, a correct float64 gradient agrees with centred differences to about 1e-10.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return ((x - y).norm() / (x.norm() + y.norm()).clamp_min(eps)).item()
