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


def recall_batch(
    batch_size: int,
    num_steps: int,
    num_symbols: int = 4,
    num_distractors: int = 4,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remember the first symbol: a memory task whose difficulty is the sequence length.

    Each sequence starts with a symbol in ``0 .. num_symbols - 1``, followed by
    ``num_steps - 1`` distractors drawn from the next ``num_distractors`` ids. Returns X (B, T)
    over a vocabulary of ``num_symbols + num_distractors`` ids, and y (B,) = X[:, 0], the symbol
    to recall at the end.
    """
    vocab_size = num_symbols + num_distractors
    X = torch.randint(num_symbols, vocab_size, (batch_size, num_steps), generator=generator)
    y = torch.randint(num_symbols, (batch_size,), generator=generator)  # (B,)
    X[:, 0] = y
    return X, y


def adding_problem_batch(
    batch_size: int, num_steps: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber, 1997): add the two marked numbers.

    Each step carries a value drawn uniformly from [0, 1) and a marker, 0 or 1. Exactly two
    steps are marked, one in the first half of the sequence and one in the second, so the first
    marked value must be remembered for at least ``num_steps // 2`` steps (at most
    ``num_steps - 1``). Returns X (B, T, 2) with X[..., 0] the values and X[..., 1] the
    markers, and y (B,), the sum of the two marked values.
    """
    if num_steps < 2:
        raise ValueError(f"the adding problem needs num_steps >= 2; got {num_steps}")
    values = torch.rand(batch_size, num_steps, generator=generator)  # (B, T)
    half = num_steps // 2
    first = torch.randint(half, (batch_size,), generator=generator)  # (B,) in [0, T/2)
    second = torch.randint(half, num_steps, (batch_size,), generator=generator)  # in [T/2, T)
    markers = torch.zeros(batch_size, num_steps)  # (B, T)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    y = (values * markers).sum(dim=1)  # (B,)
    return X, y
