"""Lesson 07's checks of the transfer and of freezing: transfer_encoder, freeze_until,
param_groups.

The models are the course's own (``RecurrentLM``, ``SentimentRNN``), small, with seeded
random weights, so that every tensor of the language model differs from the classifier's
before the transfer: a tensor not copied, or copied into the wrong place, shows.
"""

import dataclasses
import math

import torch
import torch.nn.functional as F

from rnncourse.checks._core import CheckFailed, call_student
from rnncourse.classify import SentimentRNN, layer_groups
from rnncourse.lm import RecurrentLM

ENCODER = ("embedding.", "rnn.")


@dataclasses.dataclass(frozen=True)
class Pair:
    """The sizes of a language model and of a classifier to transfer into."""

    vocab: int = 11
    embed: int = 6
    layers: int = 2
    clf_vocab: int | None = None  # None: the same as the LM's
    clf_embed: int | None = None
    clf_layers: int | None = None
    clf_bidirectional: bool = False

    def build(self, seed: int = 0):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            lm = RecurrentLM(self.vocab, self.embed, self.embed, self.layers, tie_weights=True)
            clf = SentimentRNN(
                self.clf_vocab or self.vocab,
                self.clf_embed or self.embed,
                self.clf_embed or self.embed,
                self.clf_layers or self.layers,
                bidirectional=self.clf_bidirectional,
            )
        return lm.double(), clf.double()


MATCHING = [Pair(), Pair(vocab=7, embed=3, layers=1)]
MISMATCHED = {
    "a classifier with one more word in its vocabulary": Pair(clf_vocab=12),
    "a classifier with a wider LSTM": Pair(clf_embed=8),
    "a classifier with one LSTM layer more": Pair(clf_layers=3),
    "a classifier with one LSTM layer fewer": Pair(clf_layers=1),
    "a bidirectional classifier": Pair(clf_bidirectional=True),
}


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclasses.dataclass
class TransferRun:
    """The two models' tensors before and after one call, and what the call returned."""

    lm_before: dict[str, torch.Tensor]
    clf_before: dict[str, torch.Tensor]
    lm_after: dict[str, torch.Tensor]
    clf_after: dict[str, torch.Tensor]
    returned: object
    raised: str | None  # the exception's type name, ValueError included
    message: str
    shares_storage: bool  # a classifier tensor is the language model's own


def run_transfer(transfer_encoder, pair: Pair, seed: int = 0) -> TransferRun:
    lm, clf = pair.build(seed)
    lm_before, clf_before = snapshot(lm), snapshot(clf)
    raised, message, returned = None, "", None
    try:
        returned = transfer_encoder(lm, clf)
    except NotImplementedError:
        raise CheckFailed(
            "transfer_encoder is not implemented yet: replace `raise NotImplementedError()` "
            "with your code."
        ) from None
    except Exception as err:  # noqa: BLE001 - judged below
        kinds = [k.__name__ for k in type(err).__mro__]
        raised, message = ("ValueError" if "ValueError" in kinds else type(err).__name__), str(err)
    lm_ptrs = {p.data_ptr() for p in lm.state_dict().values()}
    shares = any(v.data_ptr() in lm_ptrs for v in clf.state_dict().values())
    returned = list(returned) if isinstance(returned, list | tuple) else returned
    return TransferRun(
        lm_before, clf_before, snapshot(lm), snapshot(clf), returned, raised, message, shares
    )


def _differences(before, after) -> list[str]:
    return [k for k in before if k not in after or not torch.equal(before[k], after[k])]


def transfer_problem(run: TransferRun) -> str | None:
    """None when every encoder tensor was copied by value, the head and the LM untouched."""
    if run.raised:
        return f"it raised {run.raised} ({run.message}) on two models with matching encoders"
    encoder = sorted(k for k in run.clf_before if k.startswith(ENCODER))
    if changed := _differences(run.lm_before, run.lm_after):
        return f"the language model changed ({changed[0]}): copy from it, never into it"
    if run.shares_storage:
        return (
            "the classifier now shares tensors with the language model: fine-tuning would "
            "change the pre-trained model too. Copy the values (tensor.copy_)"
        )
    if set(run.clf_after) != set(run.clf_before):
        return "the classifier's parameter names changed: copy into its tensors, keep its modules"
    for name in encoder:
        if not torch.equal(run.clf_after[name], run.lm_before[name]):
            return f"classifier {name} is not the language model's {name}"
    head = [k for k in run.clf_before if not k.startswith(ENCODER)]
    if changed := _differences({k: run.clf_before[k] for k in head}, run.clf_after):
        return (
            f"the classifier's head changed ({changed[0]}): the head is new, keep its own "
            "initial weights (do not copy the LM's fc, do not re-initialise)"
        )
    returned = run.returned
    if not isinstance(returned, list) or sorted(map(str, returned)) != encoder:
        return f"it returned {returned!r}; expected the names copied, {encoder}"
    return None


def check_transfer_encoder(transfer_encoder) -> None:
    """transfer_encoder(lm, classifier) copies every embedding.* and rnn.* tensor by value."""
    for pair in MATCHING:
        problem = transfer_problem(run_transfer(transfer_encoder, pair))
        if problem:
            raise CheckFailed(f"transfer_encoder ({pair.layers}-layer LSTM): {problem}.")
    print("transfer_encoder copies the embedding and the LSTM, and leaves the head alone.")


def refusal_problem(run: TransferRun, what: str) -> str | None:
    """None when the call raised ValueError and left both models as they were."""
    if run.raised is None:
        return f"it accepted {what}: raise ValueError when the encoders' names or shapes differ"
    if run.raised != "ValueError":
        return f"it raised {run.raised} ({run.message}) for {what}; expected a ValueError"
    if changed := _differences(run.clf_before, run.clf_after):
        return (
            f"it refused {what} but had already changed the classifier ({changed[0]}): check "
            "every name and shape first, then copy"
        )
    if changed := _differences(run.lm_before, run.lm_after):
        return f"it changed the language model ({changed[0]})"
    return None


def check_transfer_refuses_mismatches(transfer_encoder) -> None:
    """transfer_encoder raises ValueError, copying nothing, when the encoders differ."""
    for what, pair in MISMATCHED.items():
        problem = refusal_problem(run_transfer(transfer_encoder, pair), what)
        if problem:
            raise CheckFailed(f"transfer_encoder: {problem}.")
    print("transfer_encoder refuses mismatched encoders and copies nothing then.")


# ----------------------------------------------------------------------------- freeze_until
def small_classifier(layers: int = 2, bidirectional: bool = False, seed: int = 0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SentimentRNN(9, 4, 4, layers, dropout=0.0, bidirectional=bidirectional).double()


def _loss(model, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(2, 9, (3, 5), generator=g)
    return F.cross_entropy(model(X, torch.tensor([5, 3, 4])), torch.tensor([0, 1, 1]))


@dataclasses.dataclass
class FreezeRun:
    """Per group: requires_grad and grad-is-None of each parameter after freeze_until(k), and
    whether a warmed-up AdamW step (gradients zeroed, not set to None) moved it."""

    requires_grad: list[list[bool]]
    grad_is_none: list[list[bool]]
    moved: list[list[bool]]


def run_freeze(freeze_until, k: int, layers: int = 2, bidirectional=False) -> FreezeRun:
    model = small_classifier(layers, bidirectional)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    _loss(model).backward()  # one step of all groups: Adam has momentum everywhere
    optimizer.step()
    _loss(model, seed=2).backward()  # and every parameter holds a stale gradient
    for p in model.parameters():  # all frozen before: freeze_until must unfreeze groups >= k
        p.requires_grad_(False)
    call_student(freeze_until, model, k, name="freeze_until")
    groups = layer_groups(model)
    requires = [[p.requires_grad for p in g] for g in groups]
    none = [[p.grad is None for p in g] for g in groups]
    before = [[p.detach().clone() for p in g] for g in groups]
    optimizer.zero_grad(set_to_none=False)  # zeros what has a gradient; None stays None
    if any(p.requires_grad for p in model.parameters()):
        _loss(model, seed=3).backward()
    optimizer.step()
    moved = [
        [not torch.equal(p.detach(), b) for p, b in zip(g, bs, strict=True)]
        for g, bs in zip(groups, before, strict=True)
    ]
    return FreezeRun(requires, none, moved)


GROUP_NAMES = ["the embedding", "LSTM layer 0", "LSTM layer 1", "LSTM layer 2"]


def group_name(i: int, n: int) -> str:
    return "the head (fc)" if i == n - 1 else GROUP_NAMES[i]


def freeze_problem(run: FreezeRun, k: int) -> str | None:
    n = len(run.requires_grad)
    for i in range(n):
        name, frozen = group_name(i, n), i < k
        if any(r == frozen for r in run.requires_grad[i]):
            state = "frozen" if frozen else "trainable"
            return f"freeze_until(model, {k}): {name} (group {i}) should be {state}"
        if frozen and not all(run.grad_is_none[i]):
            return (
                f"freeze_until(model, {k}): {name} is frozen but keeps its old gradient: set "
                "p.grad = None (a zero gradient still lets Adam's momentum move it)"
            )
        if frozen and any(run.moved[i]):
            return f"freeze_until(model, {k}): {name} is frozen but AdamW still moved it"
    return None


def check_freeze_until(freeze_until) -> None:
    """freeze_until(model, k): groups below k frozen (no grad, no update), the others train."""
    for k in range(5):
        problem = freeze_problem(run_freeze(freeze_until, k), k)
        if problem:
            raise CheckFailed(f"{problem}.")
    print("freeze_until freezes the groups below k, and a frozen group never moves.")


# ----------------------------------------------------------------------------- param_groups
PARAM_CASES = [(1e-2, 2.6, 2), (3e-3, 2.0, 1), (1e-3, 1.0, 2), (0.1, 4.0, 3)]


@dataclasses.dataclass
class ParamGroupsRun:
    """Per returned group: the positions of its parameters in model.parameters(), its lr."""

    groups: list[list[int]] | None
    lrs: list[float | None]
    optimizer_error: str  # what torch.optim.AdamW said about the list ("" if it took it)
    shape: str  # why the result could not be read ("" if it could)


def run_param_groups(param_groups, base_lr, decay, layers, bidirectional=False):
    model = small_classifier(layers, bidirectional)
    got = call_student(param_groups, model, base_lr, decay, name="param_groups")
    where = {id(p): i for i, p in enumerate(model.parameters())}
    if not isinstance(got, list | tuple) or not all(isinstance(g, dict) for g in got):
        return ParamGroupsRun(
            None, [], "", f"returned {type(got).__name__}; expected a list of dicts"
        )
    groups, lrs = [], []
    for g in got:
        params = list(g.get("params", []))
        groups.append([where.get(id(p), -1) for p in params])
        lr = g.get("lr")
        lrs.append(float(lr) if isinstance(lr, int | float) else None)
    try:
        torch.optim.AdamW(list(got))
        error = ""
    except Exception as err:  # noqa: BLE001 - reported
        error = f"{type(err).__name__}: {err}"
    return ParamGroupsRun(groups, lrs, error, "")


def expected_groups(layers: int, bidirectional=False) -> list[list[int]]:
    model = small_classifier(layers, bidirectional)
    where = {id(p): i for i, p in enumerate(model.parameters())}
    return [[where[id(p)] for p in g] for g in layer_groups(model)]


def param_groups_problem(run: ParamGroupsRun, base_lr, decay, layers, bidirectional=False):
    if run.shape:
        return run.shape
    want = expected_groups(layers, bidirectional)
    n = len(want)
    if len(run.groups) != n:
        return (
            f"{len(run.groups)} groups for a {layers}-layer model; expected {n}, one per "
            "layer group"
        )
    for i, (got, exp) in enumerate(zip(run.groups, want, strict=True)):
        if sorted(got) != sorted(exp):
            return (
                f"group {i} should hold the parameters of {group_name(i, n)} (layer_groups order)"
            )
    for i, lr in enumerate(run.lrs):
        right = base_lr / decay ** (n - 1 - i)
        if lr is None or not math.isclose(lr, right, rel_tol=1e-6):
            flipped = base_lr / decay**i
            hint = (
                " (the head gets base_lr; lower groups less)"
                if lr and math.isclose(lr, flipped)
                else ""
            )
            return (
                f"group {i} ({group_name(i, n)}) has lr {lr}; expected "
                f"base_lr / decay**{n - 1 - i} = {right:.4g}{hint}"
            )
    if run.optimizer_error:
        return f"torch.optim.AdamW refused the groups: {run.optimizer_error}"
    return None


def check_param_groups(param_groups) -> None:
    """param_groups(model, base_lr, decay): one group per layer group, lr / decay per level down."""
    for base_lr, decay, layers in PARAM_CASES:
        run = run_param_groups(param_groups, base_lr, decay, layers)
        problem = param_groups_problem(run, base_lr, decay, layers)
        if problem:
            raise CheckFailed(f"param_groups(model, {base_lr}, {decay}): {problem}.")
    print("param_groups gives every layer group its own, discriminative learning rate.")
