"""Seeding every random number generator a lesson touches."""

import os
import random

import numpy as np
import torch


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs).

    Notebooks call this visibly in their setup cell; importing ``rnncourse`` never seeds.
    With ``deterministic=True`` PyTorch is also asked for deterministic kernels, which makes
    GPU runs repeatable at some cost in speed.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global generator students may use
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
