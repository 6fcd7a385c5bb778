"""Choosing where tensors live."""

import os

import torch


def under_nbgrader() -> bool:
    """True while nbgrader executes the notebook (validate or autograde).

    Heavy cells check this and shrink to a smoke configuration that runs on two CPU cores.
    """
    return "NBGRADER_EXECUTION" in os.environ


def under_autograde() -> bool:
    """True while the grader autogrades the notebook (not while you validate it)."""
    return os.environ.get("NBGRADER_EXECUTION") == "autograde"


def get_device(prefer: str | None = None, verbose: bool = True) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the ``RNNCOURSE_DEVICE`` environment variable) forces a choice, e.g.
    ``"cpu"`` to compare timings. Graded functions never depend on this: they allocate on
    the device of their inputs (``device=x.device``).
    """
    choice = prefer or os.environ.get("RNNCOURSE_DEVICE")
    if choice:
        device = torch.device(choice)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        detail = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
        print(f"Using device: {device}{f' ({detail})' if detail else ''}")
    return device
