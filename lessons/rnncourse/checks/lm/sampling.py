"""Lesson 06's checks of ``sample``: priming, the generator, temperature and top-k.

Two probe models make the properties visible without running the student's code against a
copy of the answer:

- ``SumLM`` is sure of every next id: the state is the sum of the ids it has read and the
  next id is (sum + 1) mod V. What it writes after a prompt is known exactly, and differs
  when the prompt's state is lost.
- ``FixedLM`` gives the same logits at every step. Thousands of draws from it show the
  distribution that was sampled from: each id's frequency must be within six standard
  errors of its probability (a correct sampler fails a case about once in 10**8 runs).

A run is plain data (lists of ids), judged by a rule (``*_problem``) that the grader applies
to runs made in another process.
"""

import dataclasses
import math

import torch
from torch import nn

from rnncourse.checks._core import CheckFailed, call_student


class SumLM(nn.Module):
    """State (1, 1, 1): the sum of the ids read; logits 40 on (sum + 1) mod V, 0 elsewhere."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.unused = nn.Parameter(torch.zeros(()))  # next(model.parameters()) works

    def forward(self, X, state=None):
        total = torch.zeros(X.shape[0], 1) if state is None else state[0]
        sums = total + X.double().cumsum(1)  # (B, t)
        target = (sums.long() + 1) % self.vocab_size
        logits = 40.0 * nn.functional.one_hot(target, self.vocab_size).double()
        return logits + 0 * self.unused, sums[:, -1:][None]


def sum_lm_text(prompt: list[int], num_chars: int, vocab_size: int) -> list[int]:
    """What a SumLM writes after ``prompt``: worked out directly."""
    total, out = sum(prompt), []
    for _ in range(num_chars):
        out.append((total + 1) % vocab_size)
        total += out[-1]
    return out


class FixedLM(nn.Module):
    """The same logits at every step, whatever the input and the state."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float64))

    def forward(self, X, state=None):
        B, t = X.shape
        return self.logits.expand(B, t, -1), torch.zeros(1, B, 1)


def as_ids(result, num_chars: int) -> list[int] | str:
    """A sample's result as a list of ints, or why it is not one."""
    if isinstance(result, torch.Tensor):
        if result.dim() != 1 or result.is_floating_point():
            return f"a tensor of shape {tuple(result.shape)}; expected a list of {num_chars} ints"
        result = result.tolist()
    if not isinstance(result, list | tuple) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in result
    ):
        return f"{type(result).__name__}; expected a list of {num_chars} ints"
    if len(result) != num_chars:
        return f"{len(result)} ids; expected num_chars = {num_chars} (the prompt not included)"
    return list(result)


# ----------------------------------------------------------------------------- seeded, primed
@dataclasses.dataclass
class PrimingCase:
    prompt: list[int]
    num_chars: int
    vocab_size: int


PRIMING_CASES = [PrimingCase([3, 1, 4], 12, 11), PrimingCase([5], 8, 7), PrimingCase([2, 2], 0, 5)]


def run_priming(sample, case: PrimingCase):
    """What sample writes with a SumLM (greedy by construction)."""
    g = torch.Generator().manual_seed(0)
    prompt = torch.tensor(case.prompt)
    return call_student(
        sample, SumLM(case.vocab_size), prompt, case.num_chars, 1.0, None, g, name="sample"
    )


def priming_problem(result, case: PrimingCase) -> str | None:
    ids = as_ids(result, case.num_chars)
    if isinstance(ids, str):
        return f"sample returned {ids}"
    want = sum_lm_text(case.prompt, case.num_chars, case.vocab_size)
    if ids == want:
        return None
    if ids == sum_lm_text(case.prompt[-1:], case.num_chars, case.vocab_size):
        return (
            "the text continues from the last prompt id alone: keep the state of the whole prompt"
        )
    return (
        f"after the prompt {case.prompt} the model (sure of every step) writes {want}; got {ids}: "
        "prime on the whole prompt, then feed each drawn id back in with the state"
    )


SEED_LOGITS = [0.3, -0.2, 0.9, 0.1, -1.0, 0.5]


def run_seeding(sample, seed: int, num_chars: int = 40):
    """Two samples from generators seeded ``seed`` (the global RNG reseeded between them)
    and one from ``seed + 1``."""
    model, prompt = FixedLM(SEED_LOGITS), torch.tensor([1])
    runs = []
    for global_seed, own in [(1, seed), (2, seed), (3, seed + 1)]:
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(own)
        runs.append(call_student(sample, model, prompt, num_chars, 1.0, None, g, name="sample"))
    return runs


def seeding_problem(runs, num_chars: int = 40) -> str | None:
    ids = [as_ids(r, num_chars) for r in runs]
    bad = next((i for i in ids if isinstance(i, str)), None)
    if bad:
        return f"sample returned {bad}"
    if ids[0] != ids[1]:
        return (
            "the same seeded generator gave two different texts: draw with "
            "torch.multinomial(probs, 1, generator=generator), not the global random state"
        )
    if ids[0] == ids[2]:
        return "generators with different seeds gave the same text: is the generator used?"
    return None


def check_sample_seeded_and_primed(sample) -> None:
    """sample continues from the prompt's state and draws only from its generator."""
    for case in PRIMING_CASES:
        problem = priming_problem(run_priming(sample, case), case)
        if problem:
            raise CheckFailed(
                f"sample(prompt={case.prompt}, num_chars={case.num_chars}): {problem}."
            )
    problem = seeding_problem(run_seeding(sample, seed=5))
    if problem:
        raise CheckFailed(f"sample: {problem}.")
    print("sample primes on the prompt and is reproducible with a seeded generator.")


# ----------------------------------------------------------------------------- distributions
@dataclasses.dataclass
class DrawCase:
    """Draw ``num_chars`` ids from FixedLM(logits) with this temperature and top-k."""

    logits: list[float]
    temperature: float
    top_k: int | None
    num_chars: int = 3000
    seed: int = 0

    @property
    def label(self) -> str:
        return f"temperature {self.temperature:g}" + (
            f", top_k = {self.top_k}" if self.top_k else ""
        )

    def probabilities(self) -> torch.Tensor:
        """The distribution the draws must follow: softmax(logits / T) over the top k."""
        logits = torch.tensor(self.logits, dtype=torch.float64) / self.temperature
        if self.top_k is not None:
            kept = logits.argsort(descending=True)[: self.top_k]
            logits = torch.full_like(logits, -math.inf).index_copy(0, kept, logits[kept])
        return torch.softmax(logits, -1)


DRAW_LOGITS = [1.0, 0.2, -0.5, 1.6, 0.0, -1.2, 0.7, 1.3]  # no ties: top-k is well defined
DRAW_CASES = [
    DrawCase(DRAW_LOGITS, 1.0, None),
    DrawCase(DRAW_LOGITS, 0.5, None),
    DrawCase(DRAW_LOGITS, 2.0, None),
    DrawCase(DRAW_LOGITS, 1.0, 3),
    DrawCase(DRAW_LOGITS, 1e-6, None, num_chars=50),
    DrawCase([30.0, 10.0, -15.0, 29.0, 0.0], 1e-4, 2, num_chars=50),
]


def run_draws(sample, case: DrawCase):
    g = torch.Generator().manual_seed(case.seed)
    model = FixedLM(case.logits)
    prompt = torch.tensor([0])
    return call_student(
        sample, model, prompt, case.num_chars, case.temperature, case.top_k, g, name="sample"
    )


def draws_problem(result, case: DrawCase) -> str | None:
    """None when the draws follow ``case.probabilities()`` (within six standard errors)."""
    ids = as_ids(result, case.num_chars)
    if isinstance(ids, str):
        return f"sample returned {ids}"
    V = len(case.logits)
    if any(not 0 <= i < V for i in ids):
        return f"ids outside 0..{V - 1}"
    p = case.probabilities()
    counts = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=V).double()
    drawn = set(counts.nonzero()[:, 0].tolist())
    allowed = set(p.nonzero()[:, 0].tolist())
    if not drawn <= allowed:
        if case.temperature < 1e-2:
            return (
                f"at a tiny temperature every draw should be the argmax {sorted(allowed)}; got "
                f"{sorted(drawn)}: divide the logits (not the probabilities) by the temperature"
            )
        return f"ids {sorted(drawn - allowed)} were drawn but are not among the top {case.top_k}"
    n = case.num_chars
    freq = counts / n
    spread = 6 * torch.sqrt(p * (1 - p) / n) + 1e-3
    if case.top_k is not None and drawn != allowed and n >= 1000:
        return (
            f"only {len(drawn)} different ids were drawn; top_k = {case.top_k} keeps {case.top_k}"
        )
    if not bool(((freq - p).abs() <= spread).all()):
        worst = int(((freq - p).abs() / spread).argmax())
        return (
            f"id {worst} was drawn {freq[worst]:.3f} of the time; softmax(logits / temperature) "
            f"gives it {p[worst]:.3f}: is the temperature dividing the logits?"
        )
    return None


def check_sample_temperature_and_top_k(sample) -> None:
    """Temperature 1 keeps the distribution, others reshape it, tiny ones give the argmax
    without NaN, and top-k keeps exactly k candidates."""
    for case in DRAW_CASES:
        try:
            result = run_draws(sample, case)
        except CheckFailed as err:
            hint = " Divide the logits, not the probabilities." if case.temperature < 1e-2 else ""
            raise CheckFailed(f"sample at {case.label}: {err}{hint}") from err
        problem = draws_problem(result, case)
        if problem:
            raise CheckFailed(f"sample at {case.label}: {problem}.")
    print("sample follows softmax(logits / temperature) over the top k.")
