"""Lesson 07's checks of what the notebook trained: the fine-tuned classifier against its
control, and the checkpoint handed in."""

import dataclasses
from pathlib import Path

from rnncourse.checks._core import CheckFailed
from rnncourse.classify import SentimentRNN, evaluate
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint
from rnncourse.text import EOS, Batches, encode_reviews, itos

MARGIN = 0.03  # accuracy points the fine-tuned model must win by
NUM_REVIEWS = 1_000  # the first reviews of the split given (lesson 07: its validation split)


@dataclasses.dataclass(frozen=True)
class Comparison:
    finetuned: float
    scratch: float
    num_reviews: int


def compare_models(finetuned, scratch, vocab, split, max_len, num_reviews=NUM_REVIEWS):
    """Accuracy of both models on the first num_reviews reviews of split, encoded with vocab."""
    split = split.subset(range(min(num_reviews, len(split))))
    ids = encode_reviews(split.texts, vocab, max_len, start=EOS)
    batches = Batches(ids, split.labels, 256, shuffle=False)
    return Comparison(evaluate(finetuned, batches), evaluate(scratch, batches), len(ids))


def pretraining_problem(result: Comparison, margin: float = MARGIN) -> str | None:
    if result.finetuned >= result.scratch + margin:
        return None
    return (
        f"the fine-tuned classifier reaches {result.finetuned:.1%} on {result.num_reviews:,} "
        f"validation reviews, the control {result.scratch:.1%}: pre-training should win by "
        f"{margin:.0%} or more. Was the encoder transferred (transfer_encoder) from the "
        "pre-trained model, with the language model's vocabulary, and did fine-tuning keep it "
        "(freeze_until, param_groups, the schedule)?"
    )


def check_pretraining_helps(finetuned, scratch, vocab, lm_path, split, max_len) -> None:
    """The fine-tuned classifier beats the control on held-out reviews, with the LM's vocabulary."""
    if finetuned is scratch:
        raise CheckFailed("the fine-tuned model and the control are the same object.")
    try:
        lm_vocab = read_checkpoint(lm_path, max_len=False)["vocab"]
    except CheckpointError as err:
        raise CheckFailed(f"the language model's checkpoint: {err}") from None
    if lm_vocab != itos(vocab):
        raise CheckFailed(
            "the classifier's vocabulary is not the language model's: an id must mean the same "
            "word in both, so reuse the pre-training vocabulary, never rebuild it."
        )
    result = compare_models(finetuned, scratch, vocab, split, max_len)
    problem = pretraining_problem(result)
    if problem:
        raise CheckFailed(problem)
    print(
        f"fine-tuned {result.finetuned:.1%}, from scratch {result.scratch:.1%} on "
        f"{result.num_reviews:,} validation reviews."
    )


def build_classifier(checkpoint: dict, name: str) -> SentimentRNN:
    """lesson 07's classifier rebuilt from a checkpoint (CheckFailed with the reason if not)."""
    config = checkpoint["model_config"]
    try:
        model = SentimentRNN(**config)
    except Exception as err:  # noqa: BLE001 - reported
        raise CheckFailed(
            f"{name}: SentimentRNN(**model_config) failed ({type(err).__name__}: {err})."
        ) from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckFailed(f"{name}: the state_dict does not fit SentimentRNN: {err}") from None
    return model


def check_finetuned_checkpoint_file(path) -> None:
    """The checkpoint at ``path`` loads safely and rebuilds a left-to-right classifier."""
    name = Path(path).name
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckFailed(str(err)) from None
    model = build_classifier(checkpoint, name)
    if model.rnn.bidirectional:
        raise CheckFailed(f"{name}: the classifier is bidirectional; the LM read left to right.")
    count = sum(p.numel() for p in model.parameters())
    print(
        f"{name}: {model.rnn.num_layers}-layer LSTM of {model.rnn.hidden_size} units, "
        f"vocabulary of {len(checkpoint['vocab']):,}, {count / 1e6:.2f}M parameters; "
        "loads with weights_only=True."
    )
