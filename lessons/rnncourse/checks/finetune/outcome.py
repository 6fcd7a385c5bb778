"""Lesson 07's checks of what the notebook trained: the fine-tuned classifier (does it still
hold the pre-trained encoder?), and the checkpoint handed in."""

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from rnncourse.checks._core import CheckFailed
from rnncourse.classify import SentimentRNN, evaluate
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint
from rnncourse.text import EOS, Batches, encode_reviews, itos

MIN_SIMILARITY = 0.5  # cosine similarity of the fine-tuned encoder and the language model's
MIN_ACCURACY = 0.6  # on the validation reviews: the fine-tuned classifier has learned something
ENCODER = ("embedding.", "rnn.")


@dataclasses.dataclass(frozen=True)
class KeptEncoder:
    """What the outcome test measures: how much of the language model is still in the
    classifier's encoder, and how well the classifier does."""

    vocab_matches: bool
    missing: list[str]  # encoder tensors of the LM the classifier lacks (or has in another shape)
    similarity: float  # cosine similarity of the two encoders' parameters, flattened
    accuracy: float  # on the validation reviews
    num_reviews: int


def encoder_similarity(classifier_state: dict, lm_state: dict) -> tuple[list[str], float]:
    """(the LM's encoder tensors the classifier lacks, cosine similarity of the two encoders)."""
    names = sorted(k for k in lm_state if k.startswith(ENCODER))
    missing = [
        k
        for k in names
        if k not in classifier_state or classifier_state[k].shape != lm_state[k].shape
    ]
    if missing or not names:
        return missing or ["embedding.weight"], 0.0
    mine = torch.cat([classifier_state[k].detach().double().cpu().flatten() for k in names])
    theirs = torch.cat([lm_state[k].detach().double().flatten() for k in names])
    return [], float(F.cosine_similarity(mine, theirs, dim=0))


def measure_kept_encoder(finetuned, vocab, lm_checkpoint: dict, split, max_len) -> KeptEncoder:
    ids = encode_reviews(split.texts, vocab, max_len, start=EOS)
    accuracy = evaluate(finetuned, Batches(ids, split.labels, 256, shuffle=False))
    missing, similarity = encoder_similarity(finetuned.state_dict(), lm_checkpoint["state_dict"])
    matches = lm_checkpoint["vocab"] == itos(vocab)
    return KeptEncoder(matches, missing, similarity, accuracy, len(ids))


def kept_encoder_problem(result: KeptEncoder) -> str | None:
    if not result.vocab_matches:
        return (
            "the classifier's vocabulary is not the language model's: an id must mean the same "
            "word in both, so reuse the pre-training vocabulary, never rebuild it"
        )
    if result.missing:
        return (
            f"the classifier has no {result.missing[0]} of the language model's shape: build it "
            "with the language model's sizes (CLF_CONFIG)"
        )
    if result.similarity < MIN_SIMILARITY:
        return (
            f"the fine-tuned encoder is not the language model's (cosine similarity "
            f"{result.similarity:.2f}; a transferred one stays above {MIN_SIMILARITY}): was "
            "transfer_encoder called on this model, with the pre-trained language model, "
            "before fine-tuning?"
        )
    if result.accuracy < MIN_ACCURACY:
        return (
            f"the fine-tuned classifier reaches {result.accuracy:.1%} on {result.num_reviews:,} "
            f"validation reviews, under {MIN_ACCURACY:.0%}: did fine_tune_step train it "
            "(a step, a scheduler step, the frozen groups unfrozen over time)?"
        )
    return None


def check_finetuned_keeps_the_encoder(finetuned, vocab, lm_path, split, max_len) -> None:
    """The fine-tuned classifier uses the LM's vocabulary, its encoder is still recognisably
    the pre-trained one, and it classifies the validation reviews better than chance."""
    try:
        lm_checkpoint = read_checkpoint(lm_path, max_len=False)
    except CheckpointError as err:
        raise CheckFailed(f"the language model's checkpoint: {err}") from None
    result = measure_kept_encoder(finetuned, vocab, lm_checkpoint, split, max_len)
    problem = kept_encoder_problem(result)
    if problem:
        raise CheckFailed(f"{problem}.")
    print(
        f"the fine-tuned encoder keeps the language model's (similarity {result.similarity:.2f}); "
        f"{result.accuracy:.1%} on {result.num_reviews:,} validation reviews."
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
