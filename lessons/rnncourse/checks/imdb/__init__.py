"""Checks for lesson 05 (IMDB sentiment): text pipeline, batching, pooling, model, training.

Conventions: ``<pad>`` has id 0 and ``<unk>`` id 1; batches are (X (B, T) int64 padded with
0, lengths (B,) int64, y (B,) int64); class 1 is positive. The checks build their own inputs
(known token lists, sequences padded with garbage, tiny probe models that record how they are
called) and compare with PyTorch or with values they can work out directly; none of them
contains the exercises' solutions.
"""

from rnncourse.checks.imdb.data import (
    CLASS_NAMES as CLASS_NAMES,
)
from rnncourse.checks.imdb.data import (
    PAD as PAD,
)
from rnncourse.checks.imdb.data import (
    PAD_ID as PAD_ID,
)
from rnncourse.checks.imdb.data import (
    TOKENIZE_CASES as TOKENIZE_CASES,
)
from rnncourse.checks.imdb.data import (
    UNK as UNK,
)
from rnncourse.checks.imdb.data import (
    UNK_ID as UNK_ID,
)
from rnncourse.checks.imdb.data import (
    VOCAB_CASES as VOCAB_CASES,
)
from rnncourse.checks.imdb.data import (
    bucket_batches_problem as bucket_batches_problem,
)
from rnncourse.checks.imdb.data import (
    bucket_batches_runs as bucket_batches_runs,
)
from rnncourse.checks.imdb.data import (
    bucket_lengths as bucket_lengths,
)
from rnncourse.checks.imdb.data import (
    check_bucket_batches as check_bucket_batches,
)
from rnncourse.checks.imdb.data import (
    check_build_vocab as check_build_vocab,
)
from rnncourse.checks.imdb.data import (
    check_collate as check_collate,
)
from rnncourse.checks.imdb.data import (
    check_encode as check_encode,
)
from rnncourse.checks.imdb.data import (
    check_tokenize as check_tokenize,
)
from rnncourse.checks.imdb.data import (
    check_vocab_from_training_data as check_vocab_from_training_data,
)
from rnncourse.checks.imdb.model import (
    build_student_model as build_student_model,
)
from rnncourse.checks.imdb.model import (
    check_masked_max as check_masked_max,
)
from rnncourse.checks.imdb.model import (
    check_masked_mean as check_masked_mean,
)
from rnncourse.checks.imdb.model import (
    check_sentiment_rnn as check_sentiment_rnn,
)
from rnncourse.checks.imdb.model import (
    check_sentiment_rnn_ignores_padding as check_sentiment_rnn_ignores_padding,
)
from rnncourse.checks.imdb.model import (
    expected_parameter_names as expected_parameter_names,
)
from rnncourse.checks.imdb.training import (
    check_evaluate as check_evaluate,
)
from rnncourse.checks.imdb.training import (
    check_train_one_epoch as check_train_one_epoch,
)
from rnncourse.checks.imdb.using import (
    _KeywordModel as _KeywordModel,
)
from rnncourse.checks.imdb.using import (
    check_checkpoint_file as check_checkpoint_file,
)
from rnncourse.checks.imdb.using import (
    check_predict as check_predict,
)
from rnncourse.checks.imdb.using import (
    check_save_checkpoint as check_save_checkpoint,
)
