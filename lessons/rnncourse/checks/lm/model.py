"""Lesson 06's checks of the model and its evaluation.

``CharLM`` is compared with PyTorch's own layers loaded with the student's weights.
``evaluate_lm`` runs a ``CountingLM``, whose prediction at each position depends on how many
characters its state has seen, so the expected bits per character are worked out directly
from the whole rows (no windows). Each property is a run (what the student's code did, as
plain data) and a rule (``*_problem``), so that the grader can judge a run made in another
process with the same rule.
"""

import dataclasses
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks._core import CheckFailed, call_student, tolerances

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# ----------------------------------------------------------------------------- CharLM
@dataclasses.dataclass(frozen=True)
class LMConfig:
    """One way to build a CharLM (the keyword arguments of the exercise)."""

    vocab_size: int
    embed_size: int
    num_hiddens: int
    num_layers: int = 1
    cell: str = "lstm"
    tie_weights: bool = False


LM_CONFIGS = [
    LMConfig(11, 5, 7, 1, "lstm"),
    LMConfig(9, 4, 6, 2, "gru"),
    LMConfig(8, 3, 5, 1, "rnn"),
    LMConfig(10, 6, 6, 1, "lstm", tie_weights=True),
]


def expected_parameter_names(config: LMConfig) -> set[str]:
    """The parameter names of the lesson's layout: embedding, rnn (PyTorch's), fc."""
    rnn = CELLS[config.cell](config.embed_size, config.num_hiddens, config.num_layers)
    names = {f"rnn.{n}" for n, _ in rnn.named_parameters()} | {"embedding.weight", "fc.bias"}
    return names if config.tie_weights else names | {"fc.weight"}


def reference_lm(config: LMConfig, state_dict: dict | None = None) -> nn.ModuleDict:
    """PyTorch's layers (embedding, rnn, fc), in float64, loaded with a CharLM's weights
    (its state_dict; a tied one's fc.weight is its embedding) when they are given."""
    c = config
    layers = nn.ModuleDict(
        {
            "embedding": nn.Embedding(c.vocab_size, c.embed_size),
            "rnn": CELLS[c.cell](c.embed_size, c.num_hiddens, c.num_layers, batch_first=True),
            "fc": nn.Linear(c.num_hiddens, c.vocab_size),
        }
    ).double()
    if state_dict is not None:
        weights = {k: v.double() for k, v in state_dict.items() if not k.startswith("dropout")}
        weights.setdefault("fc.weight", weights["embedding.weight"])
        layers.load_state_dict(weights)
    return layers


def reference_logits(layers: nn.ModuleDict, X: torch.Tensor, state=None):
    """(logits (B, T, V), state) of the reference layers."""
    H, state = layers["rnn"](layers["embedding"](X), state)
    return layers["fc"](H), state


def random_weights(config: LMConfig, seed: int) -> dict[str, torch.Tensor]:
    """float64 weights for every parameter of the layout, large enough that every term counts."""
    g = torch.Generator().manual_seed(seed)
    ref = reference_lm(config)
    return {
        name: torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7
        for name, p in ref.state_dict().items()
        if not (config.tie_weights and name == "fc.weight")
    }


def build_student_lm(CharLM, config: LMConfig, weights: dict):
    """The student's CharLM built with ``config``, in float64 eval mode, loaded with
    ``weights`` (a tied model takes the embedding for fc.weight)."""
    kwargs = dataclasses.asdict(config)
    model = call_student(CharLM, **kwargs, name="CharLM")
    if not isinstance(model, nn.Module):
        raise CheckFailed("CharLM(...) should build an nn.Module.")
    names = set(_named_parameters(model, config))
    want = expected_parameter_names(config)
    if names != want:
        raise CheckFailed(
            f"CharLM({config}) has parameters {sorted(names - want) or ''} that the layout does "
            f"not, and lacks {sorted(want - names) or 'none'}: use the attributes embedding, "
            "rnn (nn.RNN/GRU/LSTM with batch_first=True), dropout and fc"
            + (" (tied: fc.weight IS embedding.weight)" if config.tie_weights else "")
            + "."
        )
    model = model.double().eval()
    with torch.no_grad():
        for name, p in _named_parameters(model, config).items():
            p.copy_(weights[name])
    return model


def _named_parameters(model: nn.Module, config: LMConfig) -> dict[str, nn.Parameter]:
    """The model's parameters by name; a tied matrix is named embedding.weight. (Plain
    ``named_parameters()`` names a shared matrix after the first module that holds it, so a
    tied model that defines fc before the embedding would list fc.weight instead.)"""
    params = dict(model.named_parameters(remove_duplicate=False))
    fc, embedding = params.get("fc.weight"), params.get("embedding.weight")
    if config.tie_weights and fc is not None and fc is embedding:
        del params["fc.weight"]
    return params


def lm_outputs(model, X: torch.Tensor, state, cut: int):
    """What the checks compare: the logits and state from ``state``, and the logits of the
    same text read in two calls (the state carried from the first ``cut`` steps)."""
    logits, new_state = model(X, state)
    first, mid = model(X[:, :cut], state)
    second, _ = model(X[:, cut:], mid)
    return logits, new_state, torch.cat([first, second], dim=1)


def _flat(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple | list) else [state]


def char_lm_problem(got, config: LMConfig, weights: dict, X, state, cut: int) -> str | None:
    """None when ``got`` (``lm_outputs`` of the student's model) matches the reference."""
    ref = reference_lm(config, weights)
    with torch.no_grad():
        want = reference_logits(ref, X, state)
    logits, new_state, carried = got
    tol = tolerances(torch.float64)
    V = config.vocab_size
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (*X.shape, V):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        return f"logits have shape {shape}; expected (B, T, V) = {(*X.shape, V)} (batch first)"
    if logits.dtype != want[0].dtype:
        return (
            f"logits have dtype {logits.dtype}; expected {want[0].dtype} like the model's weights"
        )
    if not torch.allclose(logits, want[0], **tol):
        return "the logits differ from embedding -> rnn -> fc with your weights" + (
            " (is the initial state passed to the rnn?)" if state is not None else ""
        )
    got_state, want_state = _flat(new_state), _flat(want[1])
    if len(got_state) != len(want_state) or not all(
        isinstance(g, torch.Tensor) and g.shape == w.shape and torch.allclose(g, w, **tol)
        for g, w in zip(got_state, want_state, strict=True)
    ):
        return "the returned state is not the rnn's final state (return what the rnn returns)"
    if not torch.allclose(carried, want[0], **tol):
        return "reading the text in two calls, the state carried, gives other logits"
    return None


def _lm_case(config: LMConfig, seed: int):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(config.vocab_size, (3, 6), generator=g)
    H = config.num_hiddens
    h = torch.randn(config.num_layers, 3, H, generator=g, dtype=torch.float64)
    state = (
        (h, torch.randn(h.shape, generator=g, dtype=torch.float64)) if config.cell == "lstm" else h
    )
    return X, state


def check_char_lm(CharLM) -> None:
    """CharLM: PyTorch's layers with the student's weights, the state carried, tied weights."""
    for n, config in enumerate(LM_CONFIGS):
        weights = random_weights(config, seed=n)
        model = build_student_lm(CharLM, config, weights)
        if getattr(model.rnn, "batch_first", True) is False:
            raise CheckFailed("CharLM's rnn reads (T, B, e): build it with batch_first=True.")
        if config.tie_weights and model.fc.weight is not model.embedding.weight:
            raise CheckFailed("with tie_weights=True, fc.weight must be embedding.weight itself.")
        X, state = _lm_case(config, seed=n)
        for start in (None, state):
            with torch.no_grad():
                got = call_student(lm_outputs, model, X, start, 2, name="CharLM.forward")
            problem = char_lm_problem(got, config, weights, X, start, 2)
            if problem:
                raise CheckFailed(f"CharLM({config}): {problem}.")
    try:
        CharLM(10, 4, 6, tie_weights=True)
    except ValueError:
        pass
    else:
        raise CheckFailed("CharLM(10, 4, 6, tie_weights=True) should raise ValueError: e != h.")
    print("CharLM matches PyTorch's layers, carries its state and ties its weights.")


# ----------------------------------------------------------------------------- evaluate_lm
class CountingLM(nn.Module):
    """Logits that depend on the input and on how many characters the state has seen.

    state: (1, B, 1) float64, the count; logits[b, j] = scale * cos(ids * (x + 0.37 n)) with
    n the position in the stream. In training mode the logits get heavy noise (as dropout
    would). Records the training flag and whether autograd was on at every call.
    """

    def __init__(self, vocab_size: int, scale: float = 1.3):
        super().__init__()
        self.vocab_size = vocab_size
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float64))
        self.modes, self.grad_modes = [], []

    def forward(self, X, state=None):
        self.modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        B, T = X.shape
        seen = torch.zeros(1, B, 1, dtype=torch.float64) if state is None else state
        n = seen[0] + torch.arange(T, dtype=torch.float64)  # (B, T)
        ids = torch.arange(self.vocab_size, dtype=torch.float64)
        logits = self.scale * torch.cos(ids * (X[..., None].double() + 0.37 * n[..., None]))
        if self.training:
            logits = logits + 5 * torch.randn_like(logits)
        return logits, seen + T  # (B, T, V), (1, B, 1)


def counting_lm_bits(rows: torch.Tensor, vocab_size: int, scale: float = 1.3) -> float:
    """The bits per character a ``CountingLM`` gets on every target of ``rows`` (B, L),
    worked out over whole rows at once."""
    X, Y = rows[:, :-1], rows[:, 1:]
    n = torch.arange(X.shape[1], dtype=torch.float64)
    ids = torch.arange(vocab_size, dtype=torch.float64)
    logits = scale * torch.cos(ids * (X[..., None].double() + 0.37 * n[:, None]))
    nll = F.cross_entropy(logits.reshape(-1, vocab_size), Y.reshape(-1))
    return nll.item() / math.log(2)


@dataclasses.dataclass
class EvaluationRun:
    """What a student's evaluate_lm returned and how it ran the ``CountingLM``."""

    result: object
    modes: list[bool]
    grad_modes: list[bool]


def run_evaluation(evaluate_lm, rows: torch.Tensor, num_steps: int, vocab_size: int):
    """evaluate_lm on a CountingLM in training mode and the windows of ``rows``."""
    model = CountingLM(vocab_size).train()
    L = rows.shape[1]
    windows = [
        (
            rows[:, i : i + min(num_steps, L - 1 - i)],
            rows[:, i + 1 : i + 1 + min(num_steps, L - 1 - i)],
        )
        for i in range(0, L - 1, num_steps)
    ]
    result = call_student(evaluate_lm, model, windows, name="evaluate_lm")
    return EvaluationRun(result, list(model.modes), list(model.grad_modes))


def evaluation_problem(run: EvaluationRun, rows: torch.Tensor, vocab_size: int) -> str | None:
    """None when the run scored every target of ``rows`` in eval mode, without a graph."""
    result = run.result
    if not isinstance(result, tuple | list) or len(result) != 2:
        return f"evaluate_lm returned {type(result).__name__}; expected (bits_per_char, perplexity)"
    if not all(isinstance(v, numbers.Real) for v in result):
        return "bits_per_char and perplexity should be Python floats (use .item())"
    if not run.modes or any(run.modes):
        return "the model ran in training mode: call model.eval() first (dropout is on)"
    if any(run.grad_modes):
        return "autograd was on: evaluate inside torch.no_grad() (no graph is needed)"
    bits = counting_lm_bits(rows, vocab_size)
    got_bits, got_ppl = (float(v) for v in result)
    if math.isclose(got_bits, bits * math.log(2), rel_tol=1e-6):
        return "bits_per_char is the NLL in nats: divide by ln 2"
    if not math.isclose(got_bits, bits, rel_tol=1e-6, abs_tol=1e-9):
        return (
            f"bits_per_char is {got_bits:.6f}; expected {bits:.6f}: sum the NLL over every "
            "target, divide by their number once (not a mean of window means), and carry the "
            "state from window to window"
        )
    if not math.isclose(got_ppl, 2**bits, rel_tol=1e-6):
        return f"perplexity is {got_ppl:.6f}; expected exp(NLL) = 2 ** bits = {2**bits:.6f}"
    return None


EVALUATION_CASES = [(3, 23, 5), (2, 10, 3), (4, 9, 8)]  # (B, L, T): short last windows


def check_evaluate_lm(evaluate_lm) -> None:
    """evaluate_lm: eval mode, no_grad, the state carried, the NLL averaged over every target."""
    g = torch.Generator().manual_seed(3)
    for B, L, T in EVALUATION_CASES:
        rows = torch.randint(7, (B, L), generator=g)
        run = run_evaluation(evaluate_lm, rows, T, 7)
        problem = evaluation_problem(run, rows, 7)
        if problem:
            raise CheckFailed(f"evaluate_lm on rows {(B, L)} in windows of {T}: {problem}.")
    print("evaluate_lm averages over every character, in eval mode, with the state carried.")
