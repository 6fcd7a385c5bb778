"""The integrity pass for lesson 05, without nbgrader: honest code passes (the corpus of
alternatives included), cheats behind no-op checks fail, with why."""

import pytest

from tests import test_alternatives_imdb as alt
from tests.course import solution_cells
from tests.integrity_support import NO_OP_CHECKS, as_answer, released, sources, verdicts

LESSON = "05_imdb_sentiment"
REF = solution_cells(LESSON)
PROBED = ("tokenize", "build_vocab", "encode", "collate", "masked_mean", "masked_max")


@pytest.fixture(scope="module")
def template():
    return released(LESSON)


def test_the_reference_passes_every_probe(template):
    assert verdicts(LESSON, template, REF) == {f: ("pass", "") for f in PROBED}


def test_alternatives_of_the_corpus_pass(template):
    helpers = "import re\nfrom collections import Counter, defaultdict\n" + sources(alt._mask)
    helpers = helpers.replace(
        "import numpy as np\n", "import numpy as np\nfrom torch.nn.utils.rnn import pad_sequence\n"
    )
    helpers += "\n\nWORD = r\"\\w+(?:'\\w+)*\"\nPAD, UNK, PAD_ID, UNK_ID = '<pad>', '<unk>', 0, 1\n"
    for pick in range(3):
        answers = {
            **REF,
            "tokenize": as_answer(alt.TOKENIZERS[pick], "tokenize"),
            "build_vocab": as_answer(alt.VOCABS[pick], "build_vocab"),
            "encode": as_answer(alt.ENCODERS[pick], "encode"),
            "collate": as_answer(alt.COLLATES[pick], "collate"),
            "masked_mean": as_answer(alt.MEANS[pick], "masked_mean"),
            "masked_max": as_answer(alt.MAXES[pick], "masked_max"),
        }
        got = verdicts(LESSON, template, answers, added=[helpers])
        assert got == {f: ("pass", "") for f in PROBED}, (pick, got)


CHEATS = {
    "tokenize": ("def tokenize(text):\n    return text.lower().split()\n", "tokenize("),
    "build_vocab": (
        "def build_vocab(token_lists, min_freq=1, max_size=None):\n"
        "    words = sorted({t for ts in token_lists for t in ts})\n"  # no counts at all
        "    return {'<pad>': 0, '<unk>': 1} | {w: i + 2 for i, w in enumerate(words)}\n",
        "differs from the expected ids",
    ),
    "masked_mean": (
        "def masked_mean(H, lengths):\n    return H.mean(1)\n",  # counts the padding
        "largest difference",
    ),
}


@pytest.mark.parametrize("function", CHEATS)
def test_a_wrong_answer_behind_no_op_checks_fails_here_with_why(template, function):
    source, why = CHEATS[function]
    got = verdicts(LESSON, template, {**REF, function: NO_OP_CHECKS + source})
    assert got[function][0] == "fail" and why in got[function][1], got[function]
    assert all(got[f][0] == "pass" for f in set(PROBED) - {function}), got
