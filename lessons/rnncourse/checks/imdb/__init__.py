"""Checks for lesson 05 (IMDB sentiment): text pipeline, batching, pooling, model, training.

Conventions: ``<pad>`` has id 0 and ``<unk>`` id 1; batches are (X (B, T) int64 padded with
0, lengths (B,) int64, y (B,) int64); class 1 is positive. The checks build their own inputs
(known token lists, sequences padded with garbage, tiny probe models that record how they are
called) and compare with PyTorch or with values they can work out directly; none of them
contains the exercises' solutions.
"""

from rnncourse.checks.imdb.data import (
    CLASS_NAMES,
    PAD,
    PAD_ID,
    TOKENIZE_CASES,
    UNK,
    UNK_ID,
    VOCAB_CASES,
    bucket_batches_problem,
    bucket_batches_runs,
    bucket_lengths,
    check_bucket_batches,
    check_build_vocab,
    check_collate,
    check_encode,
    check_tokenize,
    check_vocab_from_training_data,
)
from rnncourse.checks.imdb.model import (
    build_student_model,
    check_masked_max,
    check_masked_mean,
    check_sentiment_rnn,
    check_sentiment_rnn_ignores_padding,
    expected_parameter_names,
)
from rnncourse.checks.imdb.training import (
    check_evaluate,
    check_train_one_epoch,
)
from rnncourse.checks.imdb.using import (
    KeywordModel,
    check_checkpoint_file,
    check_predict,
    check_save_checkpoint,
)

__all__ = [
    "KeywordModel",
    "CLASS_NAMES",
    "PAD",
    "PAD_ID",
    "TOKENIZE_CASES",
    "UNK",
    "UNK_ID",
    "VOCAB_CASES",
    "bucket_batches_problem",
    "bucket_batches_runs",
    "bucket_lengths",
    "build_student_model",
    "check_bucket_batches",
    "check_build_vocab",
    "check_checkpoint_file",
    "check_collate",
    "check_encode",
    "check_evaluate",
    "check_masked_max",
    "check_masked_mean",
    "check_predict",
    "check_save_checkpoint",
    "check_sentiment_rnn",
    "check_sentiment_rnn_ignores_padding",
    "check_tokenize",
    "check_train_one_epoch",
    "check_vocab_from_training_data",
    "expected_parameter_names",
]
