"""rnncourse holds lesson 03's answer for lesson 04 (rnncourse.gradient_flow) and lesson 05's
and 06's answers for lesson 07 (rnncourse.text, rnncourse.classify, rnncourse.lm). Importing
them is not an answer: the integrity pass runs those lessons' answers with the modules withheld,
and fails an answer that uses them."""

import pytest

from tests.integrity_support import NO_OP_CHECKS, released, verdicts

CASES = {
    "03_lstm": {
        "state_gradient_norms": "from rnncourse.gradient_flow import state_gradient_norms\n",
    },
    "05_imdb_sentiment": {
        # an import inside the function: the cell runs, the call fails
        "tokenize": "def tokenize(text):\n    from rnncourse.text import tokenize as t\n"
        "    return t(text)\n",
        # an import at the top of the cell: the cell itself fails, nothing is defined
        "build_vocab": "from rnncourse.text import build_vocab\n",
        "masked_mean": "import rnncourse.classify as c\n\n"
        "def masked_mean(H_all, lengths):\n    return c.masked_mean(H_all, lengths)\n",
    },
    "06_language_model": {
        "batchify": "from rnncourse import lm\n\n"
        "def batchify(ids, batch_size):\n    return lm.batchify(ids, batch_size)\n",
        "detach_state": "from rnncourse.lm import detach_state\n",
    },
}


@pytest.mark.parametrize("lesson_id", list(CASES))
def test_answers_imported_from_rnncourse_fail_the_integrity_pass(lesson_id):
    template = released(lesson_id)
    answers = {name: NO_OP_CHECKS + source for name, source in CASES[lesson_id].items()}
    found = verdicts(lesson_id, template, answers)
    for name in CASES[lesson_id]:
        status, message = found[name]
        assert status == "fail", (name, message)
        # used inside the function: the call says why; imported at the top of the cell: the
        # cell fails (its error goes to the feedback), and the function does not exist
        assert "holds this lesson's answers" in message or f"KeyError: '{name}'" in message, message
