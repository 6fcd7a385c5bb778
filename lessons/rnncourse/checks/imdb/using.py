"""Lesson 05's checks, using the model: predict, and checkpoints saved safely."""

import contextlib
import dataclasses
import errno
import math
import numbers
import os
import tempfile
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
)
from rnncourse.checks.imdb.data import CLASS_NAMES, PAD, UNK
from rnncourse.checks.imdb.model import _random_batch, build_student_model
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint


class KeywordModel(nn.Module):
    """Logits [0, s] with s = 2 (#great) - 2 (#awful) over the real tokens of one review."""

    def __init__(self, great_id, awful_id):
        super().__init__()
        self.great_id, self.awful_id = great_id, awful_id
        self.unused = nn.Parameter(torch.zeros(1))  # so that next(model.parameters()) works
        self.modes, self.grad_modes, self.inputs = [], [], []

    def forward(self, X, lengths):
        self.modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        self.inputs.append((X.clone(), torch.as_tensor(lengths).clone()))
        if X.dim() != 2 or X.dtype != torch.long:
            raise CheckFailed(
                f"X must be a (1, L) int64 batch of one review; got {X.dtype} {tuple(X.shape)}."
            )
        real = torch.arange(X.shape[1]) < torch.as_tensor(lengths).cpu()[:, None]
        score = 2.0 * ((X == self.great_id) & real).sum(1) - 2.0 * (
            (X == self.awful_id) & real
        ).sum(1)
        return torch.stack([torch.zeros_like(score), score], dim=1) + 0 * self.unused  # (B, 2)


@dataclasses.dataclass
class PredictionRun:
    """What one call of a student's predict returned, and how it ran the ``KeywordModel``."""

    result: object  # (label, probability), if right
    mode: bool | None  # the model's training flag at its last call (None: never called)
    grad_mode: bool | None  # whether autograd was on then


KEYWORD_VOCAB = {PAD: 0, UNK: 1, "great": 2, "awful": 3, "film": 4, "!": 5, "a": 6}


def run_prediction(predict, text, vocab, max_len) -> PredictionRun:
    """``predict(text, KeywordModel, vocab, max_len)``, the model left in training mode."""
    model = KeywordModel(vocab["great"], vocab["awful"]).train()
    result = call_student(predict, text, model, vocab, max_len, name="predict")
    last = lambda seen: seen[-1] if seen else None  # noqa: E731
    return PredictionRun(result, last(model.modes), last(model.grad_modes))


def prediction_problem(run: PredictionRun, text, label, prob, about) -> str | None:
    """None when ``run`` is (label, prob) from the model in eval mode without autograd."""
    result = run.result
    if not (isinstance(result, tuple | list) and len(result) == 2):
        return f"predict should return (label, probability); got {result!r}."
    got_label, got_prob = result
    if run.mode:
        return "predict ran the model in training mode: call model.eval()."
    if run.grad_mode:
        return "predict ran with autograd on: use torch.no_grad()."
    if got_label not in CLASS_NAMES:
        return f"the label should be 'positive' or 'negative'; got {got_label!r}."
    if not isinstance(got_prob, numbers.Real):
        return f"the probability should be a float; got {type(got_prob).__name__}."
    if got_label != label:
        return (
            f"predict({text[:40]!r}...) says {got_label!r}; expected {label!r} ({about}). "
            "Class 1 is positive: the label is CLASS_NAMES[argmax]."
        )
    if math.isclose(float(got_prob), prob, abs_tol=1e-6):
        return None
    hint = (
        "return the probability of the label you return (at least 0.5), not P(positive)."
        if math.isclose(float(got_prob), 1 - prob, abs_tol=1e-6)
        else f"expected softmax(logits)[label] = {prob:.4f} ({about})."
    )
    return f"predict({text[:40]!r}) gives probability {float(got_prob):.4f}: {hint}"


def check_predict(predict):
    """predict(text, model, vocab, max_len) -> (label, probability of that label)."""
    sigmoid = lambda s: 1 / (1 + math.exp(-s))  # noqa: E731
    long_text = "great " * 10 + "awful " * 30  # clipped to 9: 4 great + 5 awful -> score -2
    cases = [
        ("A GREAT film!", 100, ("positive", sigmoid(2)), "a positive review"),
        ("Awful, awful film.", 100, ("negative", sigmoid(4)), "a negative review"),
        (
            long_text,
            9,
            ("negative", sigmoid(2)),
            "clip(ids, max_len) as in training: the first and last halves",
        ),
    ]
    for text, max_len, (label, prob), about in cases:
        run = run_prediction(predict, text, KEYWORD_VOCAB, max_len)
        problem = prediction_problem(run, text, label, prob, about)
        if problem:
            raise CheckFailed(problem)
    print("predict: tokenize -> encode -> clip -> model in eval mode -> (label, probability).")


def _small_config(cell="gru", num_layers=1):
    return dict(
        vocab_size=12,
        embed_size=4,
        num_hiddens=3,
        num_layers=num_layers,
        cell=cell,
        dropout=0.1,
        packed=False,
    )


def _shuffled_vocab(size, *, seed=0):
    """A vocabulary whose dict order differs from its id order (as a real one may)."""
    g = torch.Generator().manual_seed(seed)
    tokens = [PAD, UNK] + [f"tok{i}" for i in range(size - 2)]
    order = torch.randperm(size, generator=g).tolist()
    return {tokens[i]: i for i in order}


PREVIOUS = b"the previous checkpoint"


@dataclasses.dataclass
class SaveRun:
    """What a student's save_checkpoint wrote (plain data: ``save_problem`` judges it)."""

    checkpoint: dict | None  # the file as read_checkpoint reads it (None: it was refused)
    refusal: str  # why read_checkpoint refused the file ("" when it did not)
    leftovers: list[str]  # other files left in the folder
    used_torch_save: bool  # whether a save that fails half-way went through torch.save
    after_failure: str  # the file after that failed save (PREVIOUS if it was left alone)


def run_save(save_checkpoint, model, vocab, config, max_len) -> SaveRun:
    """Save to a fresh folder and read it back; then a save that fails half-way over it."""
    with tempfile.TemporaryDirectory(prefix="rnncourse-ckpt-") as tmp:
        path = Path(tmp) / "model.pt"
        call_student(save_checkpoint, path, model, vocab, config, max_len, name="save_checkpoint")
        checkpoint, refusal = None, ""
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            refusal = _refusal(path, vocab, err)
        leftovers = sorted(p.name for p in Path(tmp).iterdir() if p.name != "model.pt")
        used, after = _failing_save(save_checkpoint, path, model, vocab, config, max_len)
    return SaveRun(checkpoint, refusal, leftovers, used, after)


def _refusal(path, vocab, err) -> str:
    message = f"the saved checkpoint: {err}"
    with contextlib.suppress(Exception):
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if raw["vocab"] == list(vocab) != sorted(vocab, key=vocab.get):
            message = (
                "the saved vocab lists the tokens in the dict's insertion order; "
                "it must be in id order: sorted(vocab, key=vocab.get)."
            )
    return message


def _failing_save(save_checkpoint, path, model, vocab, config, max_len) -> tuple[bool, str]:
    """Over an existing file, a save whose torch.save fails half-way (a full disk)."""
    path.write_bytes(PREVIOUS)
    calls = []

    def disk_full(obj, f, *args, **kwargs):
        calls.append(f)
        if isinstance(f, str | os.PathLike):
            with open(f, "wb") as out:
                out.write(b"half a checkpoi")
        else:
            f.write(b"half a checkpoi")
        raise OSError(errno.ENOSPC, "No space left on device (simulated by the check)")

    with mock.patch.object(torch, "save", disk_full), contextlib.suppress(Exception):
        save_checkpoint(path, model, vocab, config, max_len)  # fails: what is left counts
    after = path.read_bytes()[:64].decode("latin-1") if path.is_file() else ""
    return bool(calls), after


def save_problem(run: SaveRun, state, vocab, config, max_len) -> str | None:
    """None when ``run`` saved exactly these things, weights-only, and atomically."""
    if run.checkpoint is None:
        return run.refusal
    if run.leftovers:
        return f"save_checkpoint left other files behind: {run.leftovers}."
    checkpoint = run.checkpoint
    if checkpoint["vocab"] != sorted(vocab, key=vocab.get):
        insertion = checkpoint["vocab"] == list(vocab)
        hint = " (that is the dict's insertion order)" if insertion else ""
        return f"vocab must list the tokens in id order, sorted(vocab, key=vocab.get){hint}."
    if checkpoint["model_config"] != config or checkpoint["max_len"] != max_len:
        return "model_config and max_len must be saved as given."
    saved = checkpoint["state_dict"]
    if set(saved) != set(state) or not all(
        isinstance(saved[k], torch.Tensor) and torch.equal(saved[k], state[k].cpu()) for k in state
    ):
        return "state_dict must be model.state_dict(), every tensor on the CPU."
    if not run.used_torch_save:
        return "save_checkpoint must write the file with torch.save."
    if run.after_failure != PREVIOUS.decode():
        return (
            "when torch.save fails half-way (a full disk), the previous checkpoint was "
            "damaged: write to a temporary file in the same folder, then os.replace(tmp, path)."
        )
    return None


def check_save_checkpoint(save_checkpoint, SentimentRNN, *, cell="gru", num_layers=1, seed=0):
    """save_checkpoint writes a safe, complete checkpoint, atomically."""
    config = _small_config(cell, num_layers)
    model = build_student_model(SentimentRNN, config, dtype=torch.float32, seed=seed)
    vocab = _shuffled_vocab(config["vocab_size"], seed=seed)
    run = run_save(save_checkpoint, model, vocab, config, 77)
    problem = save_problem(run, model.state_dict(), vocab, config, 77)
    if problem:
        raise CheckFailed(problem)
    rebuilt = build_student_model(
        SentimentRNN, run.checkpoint["model_config"], dtype=torch.float32, seed=seed + 1
    )
    rebuilt.load_state_dict(run.checkpoint["state_dict"])
    _, X, lengths = _random_batch([5, 3], config["vocab_size"], seed=seed)
    with torch.no_grad():
        if not torch.equal(rebuilt(X, lengths), model.eval()(X, lengths)):
            raise CheckFailed("the model rebuilt from the checkpoint predicts differently.")
    print("save_checkpoint: weights-only, complete (weights, vocab, config), written atomically.")


def check_checkpoint_file(path, SentimentRNN):
    """The checkpoint at ``path`` loads safely and rebuilds the student's model."""
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckFailed(str(err)) from None
    config = checkpoint["model_config"]
    try:
        model = SentimentRNN(**config)
    except Exception as err:  # noqa: BLE001 - reported to the student
        raise CheckFailed(
            f"SentimentRNN(**model_config) failed ({type(err).__name__}: {err}): model_config "
            "must hold SentimentRNN's constructor arguments."
        ) from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckFailed(f"the checkpoint's state_dict does not fit SentimentRNN: {err}") from None
    count = sum(p.numel() for p in model.parameters())
    print(
        f"{Path(path).name}: {config.get('num_layers')}-layer bidirectional "
        f"{str(config.get('cell')).upper()}, {config.get('num_hiddens')} hidden units, "
        f"vocabulary of {len(checkpoint['vocab']):,}, {count / 1e6:.2f}M parameters; "
        "loads with weights_only=True."
    )
