"""Every case of every probe can fail: the grader's cases are checks, not decoration.

For each lesson the reference answers go through the integrity runner once; then, for each
case of each probe, the runner's reply for that case alone is made a little wrong (tensors
moved by 1e-3, ints by one, bools flipped, strings by a character: ``nudged``). The grader
must reject it, naming that case, and accept the untouched replies.
"""

import tempfile

import numpy as np
import pytest

from rnncourse_grader import integrity, integrity_runner
from rnncourse_grader.integrity import Report
from tests.course import solution_cells
from tests.integrity_support import nudged, released, submission

LESSONS = [
    "01_rnn_forward",
    "02_bptt",
    "03_lstm",
    "04_gru",
    "05_imdb_sentiment",
    "06_language_model",
    "07_pretrain_finetune",
    "08_time_series",
]


def replies(lesson_id: str):
    """(probe, its cases, the runner's outcomes for the reference answers), per probe."""
    spec = integrity.lesson_spec(lesson_id)
    rng = np.random.default_rng(7)
    probes = [(p, p.cases(rng)) for p in spec.probes]
    template = released(lesson_id)
    nb = submission(template, solution_cells(lesson_id))
    with tempfile.TemporaryDirectory(prefix="integrity-") as home:
        policy = {"memory_mb": 3072, "tmp_base": home}
        results = integrity.ask(spec.module, nb, template, probes, policy, 300, Report([]))
    return [(probe, cases, results[probe.key]) for probe, cases in probes]


def spoiled(outcome: dict) -> dict:
    """The same reply, a little wrong."""
    value = nudged(integrity.decode_reply(outcome["value"]))
    return {"value": integrity_runner.encode(value)}


@pytest.mark.parametrize("lesson_id", LESSONS)
def test_each_case_rejects_a_wrong_reply_and_names_itself(lesson_id):
    for probe, cases, outcomes in replies(lesson_id):
        assert integrity.judge(probe, cases, outcomes) is None, probe.function
        for i, case in enumerate(cases):
            wrong = [spoiled(o) if j == i else o for j, o in enumerate(outcomes)]
            why = integrity.judge(probe, cases, wrong)
            assert why is not None, f"{probe.function}: case {i} cannot fail"
            label = case.get("label")
            assert label is None or f"on the grader's case {label}:" in why, (label, why)
