"""Helpers the course notebooks import: seeds, devices, numerics, plots, toy tasks and checks.

This package is released to students. It holds no answers: nothing here is something a
student is asked to write. The graders' hidden checks live in ``rnncourse_grader``.
"""

from rnncourse.device import get_device
from rnncourse.numerics import rel_error
from rnncourse.reproducibility import set_seed

__all__ = [
    "get_device",
    "rel_error",
    "set_seed",
]
