"""Hidden checks for lesson 02: the truncated-BPTT loop on other lengths and chunk sizes.

Its other functions are checked outside the notebook (``integrity_bptt``).
"""

import contextlib
import io

from rnncourse.checks import bptt
from rnncourse_grader.guards import run_cases


def check_train_truncated_bptt_hidden(train_truncated_bptt):
    cases = [
        dict(num_steps=5, chunk_size=1, seed=31),
        dict(num_steps=11, chunk_size=3, batch_size=1, seed=32),
        dict(num_steps=4, chunk_size=6, seed=33),  # one chunk, shorter than chunk_size
    ]
    with contextlib.redirect_stdout(io.StringIO()):  # no "passed" line per case
        run_cases(bptt.check_train_truncated_bptt, train_truncated_bptt, cases)
    print("Hidden checks passed.")
