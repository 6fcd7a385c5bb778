"""Lesson 05's checks, from text to batches: tokenize, vocabulary, encode, collate, buckets."""

import math

import torch
from torch.nn.utils.rnn import pad_sequence

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    expect_tensor,
)

PAD, UNK = "<pad>", "<unk>"


PAD_ID, UNK_ID = 0, 1


CLASS_NAMES = ("negative", "positive")


# (text, expected tokens, what the case is about)
TOKENIZE_CASES = [
    ("great movie!", ["great", "movie", "!"], "split punctuation off the words"),
    ("GREAT Movie", ["great", "movie"], "lowercase the text first"),
    (
        "the end.<br /><br />Loved it",
        ["the", "end", ".", "loved", "it"],
        "replace every '<br />' by a space before splitting",
    ),
    (
        "Loved it<br />really",
        ["loved", "it", "really"],
        "'<br />' becomes a space, not nothing: it separates the words on either side",
    ),
    ("Bye.<BR />See", ["bye", ".", "see"], "lowercase first: '<BR />' is a line break too"),
    (
        "I didn't like it, 2/10!!",
        ["i", "didn't", "like", "it", ",", "2", "/", "10", "!", "!"],
        "an apostrophe between word characters stays inside the word; every other "
        "non-space character is a token of its own",
    ),
    (
        "Rock'n'roll at O'Brien's caf\u00e9...",
        ["rock'n'roll", "at", "o'brien's", "caf\u00e9", ".", ".", "."],
        "words are runs of \\w (Unicode letters too), joined by inner apostrophes",
    ),
    (
        "'quoted' words, the_end :)",
        ["'", "quoted", "'", "words", ",", "the_end", ":", ")"],
        "an apostrophe at the start or end of a word is punctuation",
    ),
    ("  tabs\tand\nnewlines  ", ["tabs", "and", "newlines"], "whitespace separates tokens"),
    ("", [], "an empty text has no tokens"),
]


def check_tokenize(tokenize, cases=TOKENIZE_CASES):
    """tokenize(text) -> list of str, by the lesson's rules."""
    for text, want, about in cases:
        got = call_student(tokenize, text, name="tokenize")
        if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
            raise CheckFailed(
                f"tokenize should return a list of str; got {type(got).__name__} for {text!r}."
            )
        if got != want:
            raise CheckFailed(f"tokenize({text!r}) = {got}; expected {want}: {about}.")
    print(f"tokenize follows the rules on {len(cases)} texts.")


VOCAB_CASES = [  # (token lists, kwargs, expected, what the case is about)
    (
        [["good", "film", "good"], ["bad", "film", "!"], ["good"]],
        dict(min_freq=2),
        {PAD: 0, UNK: 1, "good": 2, "film": 3},
        "tokens seen fewer than min_freq times are left out",
    ),
    (
        [["good", "film", "good"], ["bad", "film", "!"], ["good"]],
        dict(min_freq=1),
        {PAD: 0, UNK: 1, "good": 2, "film": 3, "!": 4, "bad": 5},
        "ids follow decreasing counts, ties in alphabetical order ('!' < 'bad')",
    ),
    (
        [["b", "a", "c", "a", "b", "d"]],
        dict(min_freq=1, max_size=4),
        {PAD: 0, UNK: 1, "a": 2, "b": 3},
        "max_size counts every entry, <pad> and <unk> included",
    ),
    ([["z", "y"], ["y"]], {}, {PAD: 0, UNK: 1, "y": 2, "z": 3}, "defaults: min_freq=1, no limit"),
]


def _vocab_problem(vocab) -> str:
    """What is structurally wrong with a vocabulary, or ''."""
    if not isinstance(vocab, dict):
        return f"build_vocab should return a dict str -> int; got {type(vocab).__name__}."
    if vocab.get(PAD) != PAD_ID or vocab.get(UNK) != UNK_ID:
        return (
            f"<pad> must have id 0 and <unk> id 1; got {vocab.get(PAD)!r} and {vocab.get(UNK)!r}."
        )
    if sorted(vocab.values()) != list(range(len(vocab))):
        return "ids must be 0, 1, ..., len(vocab) - 1, each used once."
    return ""


def check_build_vocab(build_vocab, cases=VOCAB_CASES, *, seed=0):
    """build_vocab(token_lists, min_freq, max_size) -> {"<pad>": 0, "<unk>": 1, ...}."""
    for token_lists, kwargs, want, about in cases:
        got = call_student(build_vocab, token_lists, **kwargs, name="build_vocab")
        problem = _vocab_problem(got)
        if problem:
            raise CheckFailed(problem)
        if got != want:
            shown = sorted(got, key=got.get)
            raise CheckFailed(
                f"build_vocab({token_lists}, {kwargs}) gives tokens in id order {shown}; "
                f"expected {sorted(want, key=want.get)}: {about}."
            )
    # a larger corpus: the properties that define the vocabulary
    g = torch.Generator().manual_seed(seed)
    words = [f"w{i:03d}" for i in range(300)]
    weights = 1.0 / torch.arange(1, 301, dtype=torch.float64)  # Zipf-like counts, many ties
    token_lists = [
        [words[i] for i in torch.multinomial(weights, 20, True, generator=g).tolist()]
        for _ in range(60)
    ]
    counts: dict[str, int] = {}
    for tokens in token_lists:
        for tok in tokens:
            counts[tok] = counts.get(tok, 0) + 1
    min_freq, max_size = 3, 40
    got = call_student(build_vocab, token_lists, min_freq=min_freq, max_size=max_size)
    problem = _vocab_problem(got)
    if problem:
        raise CheckFailed(problem)
    kept = sorted((t for t in got if t not in (PAD, UNK)), key=got.get)
    eligible = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: -counts[t])
    if any(counts.get(t, 0) < min_freq for t in kept):
        raise CheckFailed(f"a kept token is seen fewer than min_freq={min_freq} times.")
    if len(got) != min(max_size, len(eligible) + 2):
        raise CheckFailed(
            f"with max_size={max_size} the vocabulary has {len(got)} entries; expected "
            f"{min(max_size, len(eligible) + 2)} (the limit counts <pad> and <unk>)."
        )
    keys = [(-counts[t], t) for t in kept]
    if keys != sorted(keys):
        raise CheckFailed("ids must follow decreasing counts, ties in alphabetical order.")
    print(f"build_vocab passes {len(cases)} small cases and a corpus of {len(token_lists)} texts.")


def check_vocab_from_training_data(
    vocab, build_vocab, train_tokens, test_tokens, *, min_freq, max_size
):
    """The notebook's vocabulary is build_vocab(train_tokens, min_freq, max_size): nothing else."""
    problem = _vocab_problem(vocab)
    if problem:
        raise CheckFailed(problem.replace("build_vocab should return", "vocab should be"))
    seen_in_train = {tok for tokens in train_tokens for tok in tokens}
    foreign = [t for t in vocab if t not in seen_in_train and t not in (PAD, UNK)]
    if foreign:
        seen_in_test = {tok for tokens in test_tokens for tok in tokens}
        from_test = [t for t in foreign if t in seen_in_test]
        where = f"; {len(from_test)} of them occur in the test reviews" if from_test else ""
        raise CheckFailed(
            f"{len(foreign)} tokens of vocab never occur in the training reviews "
            f"(e.g. {foreign[:5]}){where}. Build the vocabulary from train_tokens only: "
            "the test set must not influence any choice."
        )
    expected = call_student(build_vocab, train_tokens, min_freq=min_freq, max_size=max_size)
    if vocab != expected:
        raise CheckFailed(
            f"vocab ({len(vocab):,} entries) differs from build_vocab(train_tokens, "
            f"min_freq={min_freq}, max_size={max_size}) ({len(expected):,} entries): build it "
            "from the training tokens with the configured min_freq and max_vocab."
        )
    print(f"vocab: {len(vocab):,} entries, built from the training split only.")


def check_encode(encode):
    """encode(tokens, vocab) -> (T,) int64 ids, <unk> for unknown tokens."""
    vocab = {PAD: 0, UNK: 1, "good": 2, "film": 3, "!": 4}
    cases = [
        (["good", "film", "!"], [2, 3, 4], ""),
        (["good", "awful", "film"], [2, 1, 3], "unknown tokens get the id of <unk>, 1."),
        ([], [], "no tokens give an empty tensor of shape (0,)."),
    ]
    for tokens, want, hint in cases:
        got = call_student(encode, tokens, vocab, name="encode")
        expect_tensor(f"encode({tokens})", got, (len(want),), "(T,)")
        if got.dtype != torch.long:
            raise CheckFailed(
                f"encode returns {got.dtype}; expected torch.int64 (torch.long), the type "
                "nn.Embedding takes."
            )
        if got.tolist() != want:
            raise CheckFailed(f"encode({tokens}) = {got.tolist()}; expected {want}. {hint}")
    print("encode maps tokens to int64 ids, unknown ones to <unk>.")


def _example_batch(lengths, labels, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randint(2, 50, (n,), generator=g), label)
        for n, label in zip(lengths, labels, strict=True)
    ]


def check_collate(collate, lengths=(3, 1, 5, 2), labels=(1, 0, 0, 1), *, seed=0):
    """collate([(ids, label), ...]) -> (X (B, T) padded with 0, lengths (B,), y (B,))."""
    batch = _example_batch(lengths, labels, seed=seed)
    result = call_student(collate, batch, name="collate")
    if not (isinstance(result, tuple | list) and len(result) == 3):
        raise CheckFailed(f"collate should return (X, lengths, y); got {type(result).__name__}.")
    X, got_lengths, y = result
    B, T = len(batch), max(lengths)
    expect_tensor("X", X, (B, T), "(B, T), batch first")
    expect_tensor("lengths", got_lengths, (B,), "(B,)")
    expect_tensor("y", y, (B,), "(B,)")
    for name, value in (("X", X), ("lengths", got_lengths), ("y", y)):
        if value.dtype != torch.long:
            raise CheckFailed(f"{name} has dtype {value.dtype}; expected torch.int64.")
    want_X = pad_sequence([ids for ids, _ in batch], batch_first=True, padding_value=PAD_ID)
    if got_lengths.tolist() != list(lengths):
        raise CheckFailed(f"lengths = {got_lengths.tolist()}; expected {list(lengths)}.")
    if not torch.equal(X, want_X):
        real = torch.arange(T) < torch.tensor(lengths)[:, None]  # (B, T)
        hint = (
            "the padded places must hold PAD_ID = 0."
            if torch.equal(X[real], want_X[real])
            else "row b must start with example b's ids, in order."
        )
        raise CheckFailed(f"X differs from torch's pad_sequence(batch_first=True): {hint}")
    if y.tolist() != list(labels):
        flipped = y.tolist() == [1 - v for v in labels]
        raise CheckFailed(
            f"y = {y.tolist()}; expected the labels as given, {list(labels)}"
            + (": they are flipped (class 1 is positive)." if flipped else ".")
        )
    print(f"collate pads {B} examples to (B, T) = {(B, T)} like pad_sequence.")


def _padding_share(lengths, batches) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - real / padded


def bucket_lengths(num_examples: int, seed: int) -> torch.Tensor:
    """Review-like lengths (N,): log-normal around 150 tokens, 1..1500."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(num_examples, generator=g) * 0.8 + 5).exp().long().clamp(1, 1500)


def bucket_batches_runs(bucket_batches, lengths, batch_size, pool_batches) -> list:
    """The four calls the rules look at: generator seeds 1, 1 again, 2, and seed 3 on equal
    lengths (the student's function through ``call_student``, here and in the grader's runner)."""
    runs = []
    for gen_seed, lens in (
        (1, lengths),
        (1, lengths),
        (2, lengths),
        (3, torch.full_like(lengths, 7)),
    ):
        gen = torch.Generator().manual_seed(gen_seed)
        runs.append(
            call_student(bucket_batches, lens, batch_size, generator=gen, pool_batches=pool_batches)
        )
    return runs


def bucket_batches_problem(lengths, batch_size, pool_batches, runs, seed=0) -> str | None:
    """What is wrong with ``bucket_batches_runs``' results, or None: every index once, batch
    sizes, padding far below random batches', shuffled order, and the generator's role."""
    n, bs = len(lengths), batch_size
    for out in runs:
        if not isinstance(out, list) or not all(
            isinstance(b, torch.Tensor) and b.dim() == 1 and b.dtype == torch.long for b in out
        ):
            return "bucket_batches should return a list of 1-D int64 index tensors."
    batches, again, other, same = runs
    everything = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.long)
    if len(everything) != n or not torch.equal(everything.sort().values, torch.arange(n)):
        counts = torch.bincount(everything.clamp(0), minlength=n)
        return (
            f"the batches must hold every index 0..{n - 1} exactly once; "
            f"{int((counts[:n] == 0).sum())} are missing and {int((counts > 1).sum())} repeated."
        )
    sizes = [len(b) for b in batches]
    if max(sizes) > bs or min(sizes) < 1:
        return f"batch sizes range from {min(sizes)} to {max(sizes)}; at most {bs}."
    if len(batches) > math.ceil(n / bs) + math.ceil(n / (bs * pool_batches)):
        return f"{len(batches)} batches for {n} examples: only a pool's last batch may be short."
    g = torch.Generator().manual_seed(seed + 7)
    random_share = _padding_share(lengths, list(torch.randperm(n, generator=g).split(bs)))
    share = _padding_share(lengths, batches)
    allowed = 0.25 if pool_batches >= 20 else 0.8  # small pools leave more padding
    if share > allowed * random_share:
        return (
            f"{share:.0%} of the batches' tokens are padding, against {random_share:.0%} with "
            "random batches: sort each pool by length before cutting it into batches."
        )
    means = [float(lengths[b].float().mean()) for b in batches]
    if len(means) > 2 and (means == sorted(means) or means == sorted(means, reverse=True)):
        return (
            "the batches go from short to long: shuffle the order of the batches, or every "
            "epoch sees the reviews in the same order of length."
        )
    if [b.tolist() for b in again] != [b.tolist() for b in batches]:
        return "the same generator seed must give the same batches: use `generator`."
    if len(batches) > 1 and [b.tolist() for b in other] == [b.tolist() for b in batches]:
        return "another generator seed gives the same batches: draw with `generator`."
    contiguous = sum(
        bool(torch.equal(b.sort().values, b.min() + torch.arange(len(b))))
        for b in same
        if len(b) > 1
    )
    if bs > 1 and contiguous > len(same) // 2:
        return (
            "with equal lengths most batches hold consecutive indices: shuffle all indices "
            "first (torch.randperm), then cut them into pools."
        )
    return None


def check_bucket_batches(
    bucket_batches, *, num_examples=2000, batch_size=16, pool_batches=50, seed=0
):
    """bucket_batches(lengths, batch_size, generator, pool_batches) -> shuffled index batches."""
    lengths = bucket_lengths(num_examples, seed)
    runs = bucket_batches_runs(bucket_batches, lengths, batch_size, pool_batches)
    problem = bucket_batches_problem(lengths, batch_size, pool_batches, runs, seed)
    if problem:
        raise CheckFailed(problem)
    batches = runs[0]
    share = _padding_share(lengths, batches)
    print(
        f"bucket_batches: {len(batches)} batches, {share:.1%} padding, reshuffled by the generator."
    )
