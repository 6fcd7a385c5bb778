"""Checks for lesson 06 (a character-level language model): the stream, the model, its
evaluation and training, sampling, and the n-gram baseline.

Conventions: streams are int64 ids; windows are (X, Y) pairs of (B, t) with Y shifted by
one; a model maps (X (B, t), state) to (logits (B, t, V), state). The checks use inputs
whose right answers they can work out directly (``arange`` streams, probe models that are
sure of every step or give the same logits at every step); none contains the exercises'
solutions.
"""

from rnncourse.checks.lm.model import (
    LM_CONFIGS,
    CountingLM,
    EvaluationRun,
    LMConfig,
    build_student_lm,
    char_lm_problem,
    check_char_lm,
    check_evaluate_lm,
    counting_lm_bits,
    evaluation_problem,
    expected_parameter_names,
    lm_outputs,
    random_weights,
    reference_lm,
    run_evaluation,
)
from rnncourse.checks.lm.ngram import check_ngram_log_probs
from rnncourse.checks.lm.sampling import (
    SEED_LOGITS,
    DrawCase,
    FixedLM,
    PrimingCase,
    SumLM,
    check_sample_seeded_and_primed,
    check_sample_temperature_and_top_k,
    draws_problem,
    priming_problem,
    run_draws,
    run_priming,
    run_seeding,
    seeding_problem,
)
from rnncourse.checks.lm.stream import (
    batchify_problem,
    check_batchify,
    check_detach_state,
    check_stream_windows,
    detach_problem,
    windows_problem,
)
from rnncourse.checks.lm.training import (
    TinyLM,
    WindowRun,
    check_lm_beats_unigram,
    check_train_window,
    lm_bits,
    run_window,
    unigram_bits,
    window_case,
    window_problem,
)

__all__ = [
    "LM_CONFIGS",
    "CountingLM",
    "DrawCase",
    "EvaluationRun",
    "FixedLM",
    "LMConfig",
    "PrimingCase",
    "SEED_LOGITS",
    "SumLM",
    "TinyLM",
    "WindowRun",
    "batchify_problem",
    "build_student_lm",
    "char_lm_problem",
    "check_batchify",
    "check_char_lm",
    "check_detach_state",
    "check_evaluate_lm",
    "check_lm_beats_unigram",
    "check_ngram_log_probs",
    "check_sample_seeded_and_primed",
    "check_sample_temperature_and_top_k",
    "check_stream_windows",
    "check_train_window",
    "counting_lm_bits",
    "detach_problem",
    "draws_problem",
    "evaluation_problem",
    "expected_parameter_names",
    "lm_bits",
    "lm_outputs",
    "priming_problem",
    "random_weights",
    "reference_lm",
    "run_draws",
    "run_evaluation",
    "run_priming",
    "run_seeding",
    "run_window",
    "seeding_problem",
    "unigram_bits",
    "window_case",
    "window_problem",
    "windows_problem",
]
