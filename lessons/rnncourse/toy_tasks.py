"""Small synthetic sequence tasks that train in seconds on a CPU.

Each returns integer tensors in the course's batch-first layout.
"""

import torch


def encode_pattern(pattern: str) -> tuple[torch.Tensor, list[str]]:
    """Map a string to ids over its sorted alphabet: "abac" -> ([0, 1, 0, 2], ["a", "b", "c"])."""
    alphabet = sorted(set(pattern))
    ids = torch.tensor([alphabet.index(ch) for ch in pattern], dtype=torch.long)
    return ids, alphabet


def periodic_batch(
    pattern: torch.Tensor, batch_size: int, num_steps: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of the endlessly repeated ``pattern`` (P,) starting at random phases.

    Returns X (B, T) and Y (B, T) with Y[:, t] = X[:, t + 1]: the next symbol to predict.
    """
    period = pattern.numel()
    start = torch.randint(period, (batch_size, 1), generator=generator)  # (B, 1)
    positions = (start + torch.arange(num_steps + 1)) % period  # (B, T + 1)
    seq = pattern[positions]  # (B, T + 1)
    return seq[:, :-1], seq[:, 1:]
