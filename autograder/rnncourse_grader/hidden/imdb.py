"""The grading of the sentiment classifiers students hand in, on held-out reviews.

Every graded function of the lessons is checked outside the notebook (``integrity_*``).
``grade_imdb_checkpoint`` (lesson 05) and ``grade_finetuned_checkpoint`` (lesson 07) load the
student's checkpoint with ``weights_only=True``, rebuild the lesson's architecture from it
with the grader's own code, and measure accuracy on a fixed slice of the official test split.
"""

import json
import os
from pathlib import Path

import torch
from torch import nn

from rnncourse.checks import CheckFailed
from rnncourse.checks.imdb import PAD_ID, UNK_ID
from rnncourse.data import sha256_file
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint
from rnncourse_grader.integrity_imdb import reference_clip_ids, reference_tokenize
from rnncourse_grader.integrity_imdb_model import ReferenceSentimentRNN

THRESHOLD = 0.85
# 2,500 reviews: a model of the `gpu` configuration (11.3M parameters, reviews up to 800
# tokens, packed) took 21 s to evaluate on one CPU core at load average 3, and about 5 times
# as long (per review) at load 6: well inside nbgrader's 300 s per cell. One standard error of
# the accuracy is then about 0.6%, against a threshold of 85% and models at 87-91%.
HELDOUT_SIZE = 2500
HELDOUT_SEED = 20110619  # fixed forever: every submission is graded on the same reviews
MAX_EVAL_LEN = 2000  # the grader clips reviews to at most this many tokens


# ----------------------------------------------------------------------------- the model
def _refuse_the_instructors_copy(path: Path, lesson_id: str) -> None:
    """At autograde, fail closed if the file is the instructor's own checkpoint.

    nbgrader copies every file of solutions/<id>/ over the student's files before grading
    (unless ``Autograde.exclude_overwriting`` lists it). A checkpoint left in
    solutions/<id>/ by running the reference notebook there would replace every
    student's and pass them all; this turns that into a loud failure instead.
    """
    if os.environ.get("NBGRADER_EXECUTION") != "autograde":
        return
    from rnncourse_grader import pipeline

    instructors = pipeline.ROOT / "solutions" / lesson_id / path.name
    if instructors.is_file() and sha256_file(instructors) == sha256_file(path):
        raise CheckFailed(
            f"{path.name} is the instructor's copy from {instructors}, not the student's: "
            "nbgrader overwrote the submission. Remove that file (and list it in "
            "Autograde.exclude_overwriting), then grade again."
        )


def _require_the_handed_in_file(path: Path) -> None:
    """Under ``course grade``, grade only the checkpoint the student handed in.

    The grader copies the files handed in beside the notebook into the kernel's folder and
    names their hashes in ``RNNCOURSE_HANDED_IN``. A checkpoint that is missing there, or
    differs from the one handed in, was made by the notebook's own run while being graded
    (the smoke configuration): it never counts.
    """
    from rnncourse_grader.sandbox import HANDED_IN_VAR

    raw = os.environ.get(HANDED_IN_VAR)
    if raw is None:  # not the course grader (nbgrader's own autograde, validate)
        return
    handed_in = json.loads(raw)
    if path.name not in handed_in:
        raise CheckFailed(
            f"no {path.name} was handed in with the notebook: hand in the checkpoint your "
            "training run saved (a model trained while the notebook is graded never counts)."
        )
    if not path.is_file() or sha256_file(path) != handed_in[path.name]:
        raise CheckFailed(
            f"{path.name} is not the file handed in with the notebook: it was replaced while "
            "the notebook was graded (only the checkpoint you hand in counts)."
        )


CONFIG_LIMITS = {
    "vocab_size": (2, 1_000_000),
    "embed_size": (1, 4096),
    "num_hiddens": (1, 4096),
    "num_layers": (1, 8),
}


def build_reference_model(checkpoint: dict, name: str = "the checkpoint") -> nn.Module:
    """The grader's model with the checkpoint's weights (CheckFailed with a reason if not)."""
    config = dict(checkpoint["model_config"])
    for key, (low, high) in CONFIG_LIMITS.items():
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise CheckFailed(
                f"{name}: model_config[{key!r}] = {value!r}; expected an int in {low}..{high}."
            )
    if config.get("cell") not in ("lstm", "gru"):
        raise CheckFailed(f"{name}: model_config['cell'] must be 'lstm' or 'gru'.")
    if len(checkpoint["vocab"]) != config["vocab_size"]:
        raise CheckFailed(
            f"{name}: the vocabulary has {len(checkpoint['vocab']):,} tokens but "
            f"model_config['vocab_size'] is {config['vocab_size']:,}."
        )
    known = {"vocab_size", "embed_size", "num_hiddens", "num_layers", "cell", "dropout", "packed",
             "bidirectional"}  # fmt: skip
    model = ReferenceSentimentRNN(**{k: v for k, v in config.items() if k in known})
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[1:3]
        raise CheckFailed(
            f"{name}: the weights do not fit the lesson's layout (embedding, rnn, dropout, fc): "
            f"{' '.join(s.strip() for s in first)}"
        ) from None
    return model.float().eval()


def heldout_slice(num_reviews: int = HELDOUT_SIZE):
    """The fixed slice of the official test split that every submission is graded on."""
    from rnncourse.data import load_imdb

    test = load_imdb(verbose=False, progress=False).test
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(HELDOUT_SEED))
    return test.subset(order[:num_reviews])


@torch.inference_mode()
def checkpoint_accuracy(checkpoint: dict, texts, labels, *, batch_size=128, start=None) -> float:
    """Accuracy of a checkpoint on texts, with the reference pipeline (tokenize, encode, clip;
    with ``start``, that token's id before each review, as lesson 07's classifier reads it)."""
    model = build_reference_model(checkpoint)
    stoi = {token: i for i, token in enumerate(checkpoint["vocab"])}
    if start is not None and start not in stoi:
        raise CheckFailed(f"the checkpoint's vocabulary has no {start}: is it the LM's vocabulary?")
    head = torch.tensor([stoi[start]] if start is not None else [], dtype=torch.long)
    max_len = min(int(checkpoint["max_len"]), MAX_EVAL_LEN)
    ids = [
        torch.cat([head, reference_clip_ids(
            torch.tensor([stoi.get(t, UNK_ID) for t in reference_tokenize(text)] or [UNK_ID]),
            max_len,
        )])
        for text in texts
    ]  # fmt: skip
    order = torch.argsort(torch.tensor([len(x) for x in ids]))
    correct = 0
    for index in order.split(batch_size):
        seqs = [ids[i] for i in index.tolist()]
        lengths = torch.tensor([len(s) for s in seqs])
        X = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)
        correct += int((model(X, lengths).argmax(1) == labels[index]).sum())
    return correct / len(ids)


def grade_imdb_checkpoint(
    path,
    *,
    threshold: float = THRESHOLD,
    num_reviews: int = HELDOUT_SIZE,
    lesson_id: str = "05_imdb_sentiment",
    start: str | None = None,
) -> None:
    """The submitted model must reach ``threshold`` accuracy on the held-out test slice.

    Prints the accuracy and returns nothing: a number left as a test cell's output would
    be read by nbgrader as partial credit.
    """
    _require_the_handed_in_file(Path(path))
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckFailed(str(err)) from None
    _refuse_the_instructors_copy(Path(path), lesson_id)
    data = heldout_slice(num_reviews)
    accuracy = checkpoint_accuracy(checkpoint, data.texts, data.labels, start=start)
    name = Path(path).name
    if accuracy >= threshold:
        print(
            f"{name}: {accuracy:.2%} on {num_reviews:,} held-out test reviews "
            f"(needed {threshold:.0%})."
        )
        return
    if accuracy < 0.3:
        hint = "far below chance: are the labels flipped somewhere (class 1 = positive)?"
    elif accuracy < 0.6:
        hint = "about chance: did the model train, and was it saved after training?"
    else:
        hint = "train longer or larger (the cpu or gpu configuration), then save again."
    raise CheckFailed(
        f"{name} reaches {accuracy:.2%} on {num_reviews:,} held-out test reviews; it needs "
        f"{threshold:.0%}: {hint}"
    )


def grade_finetuned_checkpoint(path, *, num_reviews: int = HELDOUT_SIZE) -> None:
    """Lesson 07: the fine-tuned left-to-right classifier, on lesson 05's held-out slice, each
    review read after an <eos> as in the notebook."""
    grade_imdb_checkpoint(
        path, num_reviews=num_reviews, lesson_id="07_pretrain_finetune", start="<eos>"
    )
