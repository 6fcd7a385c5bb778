"""Lesson 07's checks of the pre-training data: the test-leak guard and the LM batches.

The corpora are short made-up reviews whose leaks the check places itself; the documents of
``lm_batches`` are ``arange`` pieces, so a misplaced id says where it came from.
"""

import dataclasses

import torch

from rnncourse.checks._core import CheckFailed, call_student

TEST_TEXTS = [f"Test review {i}: the plot was {'good' if i % 2 else 'bad'}." for i in range(40)]
CLEAN = (
    [f"Training review {i}, not a test one." for i in range(30)]
    + [
        TEST_TEXTS[3].upper(),  # the same words in capitals: not the same text
        TEST_TEXTS[5][:-1],  # a test review without its last character
        TEST_TEXTS[7] + " ",  # and with one more
    ]
)


@dataclasses.dataclass(frozen=True)
class LeakCase:
    """A corpus and what the guard must do with it: raise (``leaked`` > 0) or accept."""

    what: str
    corpus: list[str]
    leaked: int = 0
    first: int = -1


def leak_cases() -> list[LeakCase]:
    with_one = CLEAN[:17] + [TEST_TEXTS[11]] + CLEAN[17:]
    with_three = CLEAN[:9] + [TEST_TEXTS[0]] + CLEAN[9:20] + [TEST_TEXTS[0], TEST_TEXTS[39]]
    return [
        LeakCase("a clean corpus (with near-copies of test reviews)", CLEAN),
        LeakCase("a corpus with one test review", with_one, leaked=1, first=17),
        LeakCase("a corpus with three test reviews", with_three, leaked=3, first=9),
        LeakCase("an empty corpus", []),
        LeakCase("a corpus that is one test review", [TEST_TEXTS[20]], leaked=1, first=0),
    ]


@dataclasses.dataclass
class LeakRun:
    """What the guard did: the type and message of what it raised (None, "" if nothing)."""

    raised: str | None
    message: str


def run_leak(no_test_leak, case: LeakCase, test_texts=TEST_TEXTS) -> LeakRun:
    try:
        no_test_leak(list(case.corpus), list(test_texts))
    except NotImplementedError:
        raise CheckFailed(
            "no_test_leak is not implemented yet: replace `raise NotImplementedError()` "
            "with your code."
        ) from None
    except Exception as err:  # noqa: BLE001 - what it raised is what we judge
        kinds = [k.__name__ for k in type(err).__mro__]
        return LeakRun("ValueError" if "ValueError" in kinds else type(err).__name__, str(err))
    return LeakRun(None, "")


def leak_problem(run: LeakRun, case: LeakCase) -> str | None:
    """None when the guard accepted a clean corpus or refused a leak as specified."""
    if not case.leaked:
        if run.raised is not None:
            return (
                f"it raised {run.raised} ({run.message}) for {case.what}: only a text equal to "
                "a test review, character for character, is a leak"
            )
        return None
    if run.raised is None:
        return f"it accepted {case.what}: raise ValueError when any corpus text is a test text"
    if run.raised != "ValueError":
        return f"it raised {run.raised} for {case.what}; expected a ValueError"
    missing = [
        what
        for what, value in (("the count", case.leaked), ("the first index", case.first))
        if str(value) not in run.message
    ]
    if missing:
        return (
            f"for {case.what} (the first at index {case.first}) the message {run.message!r} "
            f"does not give {' and '.join(missing)} ({case.leaked}, {case.first})"
        )
    return None


def check_no_test_leak(no_test_leak) -> None:
    """no_test_leak(corpus_texts, test_texts) raises ValueError for any exact test text."""
    for case in leak_cases():
        problem = leak_problem(run_leak(no_test_leak, case), case)
        if problem:
            raise CheckFailed(f"no_test_leak: {problem}.")
    print("no_test_leak refuses test reviews and accepts a clean corpus.")


# ----------------------------------------------------------------------------- lm_batches
# (document lengths, eos_id, batch_size): an empty document, one document, B = 1, a remainder
BATCH_CASES = [
    ((3, 1, 2), 2, 2),
    ((4, 0, 3, 2), 1, 3),
    ((5,), 0, 2),
    ((2, 2, 2, 2), 3, 1),
    ((7, 3, 0, 0, 6, 1), 2, 4),
]


def documents(lengths) -> list[torch.Tensor]:
    """Documents of consecutive ids from 100 on: document i holds ids no other one has."""
    starts = [100 + sum(lengths[:i]) for i in range(len(lengths))]
    return [torch.arange(s, s + n, dtype=torch.long) for s, n in zip(starts, lengths, strict=True)]


def _rows(stream: list[int], batch_size: int) -> torch.Tensor:
    L = len(stream) // batch_size
    return torch.tensor(stream[: batch_size * L], dtype=torch.long).view(batch_size, L)


def expected_rows(docs, eos_id: int, batch_size: int) -> torch.Tensor:
    return _rows([i for doc in docs for i in [*doc.tolist(), eos_id]], batch_size)


# streams of the usual mistakes, and what to say when the student's rows are one of them
MISTAKES = {
    "every document, even an empty one, is followed by <eos>": lambda docs, eos: [
        i for doc in docs if len(doc) for i in [*doc.tolist(), eos]
    ],
    "the last document is followed by <eos> too (the stream ends with one)": lambda docs, eos: [
        i for n, doc in enumerate(docs) for i in [*doc.tolist(), *([eos] * (n < len(docs) - 1))]
    ],
    "<eos> goes after each document, not before": lambda docs, eos: [
        i for doc in docs for i in [eos, *doc.tolist()]
    ],
    "every document ends with <eos>": lambda docs, eos: [i for doc in docs for i in doc.tolist()],
}


def lm_batches_problem(rows, docs, eos_id: int, batch_size: int) -> str | None:
    """None when ``rows`` is the batchified stream of the documents, each ended by <eos>."""
    want = expected_rows(docs, eos_id, batch_size)
    if not isinstance(rows, torch.Tensor):
        return f"returned {type(rows).__name__}; expected a (B, L) tensor"
    if rows.dtype != torch.long:
        return f"rows has dtype {rows.dtype}; expected torch.int64 (token ids)"
    if torch.equal(rows, want):
        return None
    lengths = [len(d) for d in docs]
    for hint, stream in MISTAKES.items():
        wrong = _rows(stream(docs, eos_id), batch_size)
        if rows.shape == wrong.shape and torch.equal(rows, wrong):
            return f"for documents of lengths {lengths}: {hint}"
    if rows.shape[0] > 1 and torch.equal(rows, want.flatten().view(want.shape[1], -1).T):
        return "the stream runs down the columns: use batchify (row b is a consecutive piece)"
    if tuple(rows.shape) != tuple(want.shape):
        return (
            f"for documents of lengths {lengths}, B = {batch_size}: rows has shape "
            f"{tuple(rows.shape)}; expected {tuple(want.shape)}"
        )
    b = int((rows != want).any(1).nonzero()[0, 0])
    return f"row {b} is {rows[b].tolist()[:10]}; expected {want[b].tolist()[:10]}"


def check_lm_batches(lm_batches) -> None:
    """lm_batches(docs, eos_id, B): docs[0], eos, docs[1], eos, ... batchified into (B, L)."""
    for lengths, eos_id, B in BATCH_CASES:
        docs = documents(lengths)
        rows = call_student(lm_batches, docs, eos_id, B, name="lm_batches")
        problem = lm_batches_problem(rows, docs, eos_id, B)
        if problem:
            raise CheckFailed(f"lm_batches: {problem}.")
    print("lm_batches ends every document with <eos> and batchifies the stream.")
