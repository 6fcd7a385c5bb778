"""Hidden checks called from the lessons' hidden test cells (kept thin: logic lives here).

Only what the integrity pass cannot yet check outside the notebook is here: lesson 05's
model, training loop, evaluation, checkpoint and prediction. Every other graded
function is checked in the grader's process on cases the kernel never sees (``integrity_*``).
"""

from rnncourse_grader.hidden.imdb import (
    check_evaluate_hidden,
    check_predict_hidden,
    check_save_checkpoint_hidden,
    check_sentiment_rnn_hidden,
    check_sentiment_rnn_ignores_padding_hidden,
    check_train_one_epoch_hidden,
    grade_imdb_checkpoint,
)

__all__ = [
    "check_evaluate_hidden",
    "check_predict_hidden",
    "check_save_checkpoint_hidden",
    "check_sentiment_rnn_hidden",
    "check_sentiment_rnn_ignores_padding_hidden",
    "check_train_one_epoch_hidden",
    "grade_imdb_checkpoint",
]
