"""Checks for lesson 05 (IMDB sentiment): text pipeline, batching, pooling, model, training.

Conventions: ``<pad>`` has id 0 and ``<unk>`` id 1; batches are (X (B, T) int64 padded with
0, lengths (B,) int64, y (B,) int64); class 1 is positive. The checks build their own inputs
(known token lists, sequences padded with garbage, tiny probe models that record how they are
called) and compare with PyTorch or with values they can work out directly; none of them
contains the exercises' solutions.
"""

import contextlib
import copy
import errno
import math
import numbers
import os
import tempfile
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from rnncourse.checks._core import (
    CheckFailed,
    RecordingSGD,
    call_student,
    expect_close,
    expect_tensor,
)
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
CLASS_NAMES = ("negative", "positive")


# ----------------------------------------------------------------------------- tokenize
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


# ----------------------------------------------------------------------------- vocabulary
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


# ----------------------------------------------------------------------------- encode
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


# ----------------------------------------------------------------------------- collate
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


# ----------------------------------------------------------------------------- buckets
def _padding_share(lengths, batches) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - real / padded


def bucket_lengths(num_examples: int, seed: int) -> torch.Tensor:
    """Review-like lengths (N,): log-normal around 150 tokens, 1..1500."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(num_examples, generator=g) * 0.8 + 5).exp().long().clamp(1, 1500)


def bucket_batches_runs(bucket_batches, lengths, batch_size, pool_batches, call=None) -> list:
    """The four calls the rules look at: generator seeds 1, 1 again, 2, and seed 3 on equal
    lengths. ``call(fn, *args, **kwargs)`` runs the student's function (``call_student``)."""
    call = call or call_student
    runs = []
    for gen_seed, lens in (
        (1, lengths),
        (1, lengths),
        (2, lengths),
        (3, torch.full_like(lengths, 7)),
    ):
        gen = torch.Generator().manual_seed(gen_seed)
        runs.append(
            call(bucket_batches, lens, batch_size, generator=gen, pool_batches=pool_batches)
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


# ----------------------------------------------------------------------------- pooling
def _padded_states(lengths, dim, *, dtype, seed, fill):
    """Sequences (L_b, D) and their padded stack (B, T, D) whose padded places hold ``fill``."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, dim, generator=g, dtype=torch.float64).to(dtype) for n in lengths]
    H = pad_sequence(seqs, batch_first=True, padding_value=fill)
    return seqs, H


def _check_pool(student, name, reduce, wrong, *, lengths, dim, dtype, seed, fill, shift=0.0):
    seqs, H = _padded_states(lengths, dim, dtype=dtype, seed=seed, fill=fill)
    seqs, H = [s + shift for s in seqs], H.clone()
    real = torch.arange(H.shape[1]) < torch.tensor(lengths)[:, None]
    H[real] += shift
    lens = torch.tensor(lengths)
    got = call_student(student, H.clone(), lens.clone(), name=name)
    want = torch.stack([reduce(s) for s in seqs])  # (B, D)
    expect_tensor("the pooled states", got, want.shape, "(B, D)")
    if got.dtype != dtype:
        raise CheckFailed(f"{name} returns {got.dtype}; expected the dtype of H, {dtype}.")
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    hint = next(
        (h for h, candidate in wrong(H, lens, real) if torch.allclose(got, candidate, **tol)),
        "compare with each sequence's own H[b, :lengths[b]].",
    )
    expect_close("the pooled states", got.detach(), want, hint=hint, **tol)


def check_masked_mean(
    masked_mean, *, lengths=(6, 1, 3, 4), dim=3, dtype=torch.float64, seed=0, fill=1e3
):
    """masked_mean(H (B, T, D), lengths (B,)) -> mean over the real steps, (B, D)."""
    mask = lambda real: real[:, :, None].to(dtype)  # noqa: E731

    def wrong(H, lens, real):
        T = H.shape[1]
        return [
            ("padding counts: average over the first lengths[b] steps only.", H.mean(1)),
            (
                "the padded states are masked but you divide by T: divide by each length L_b.",
                (H * mask(real)).sum(1) / T,
            ),
            (
                "you divide by L_b but sum the padded states too: zero them with the mask first.",
                H.sum(1) / lens[:, None].to(dtype),
            ),
        ]

    _check_pool(
        masked_mean,
        "masked_mean",
        lambda s: s.mean(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed,
        fill=fill,
    )
    print(f"masked_mean ignores padding (lengths {list(lengths)}, {dtype}).")


def check_masked_max(
    masked_max, *, lengths=(6, 1, 3, 4), dim=3, dtype=torch.float64, seed=0, fill=-1e3
):
    """masked_max(H (B, T, D), lengths (B,)) -> elementwise max over the real steps, (B, D)."""

    def wrong(H, lens, real):
        zeroed = H * real[:, :, None].to(dtype)
        return [
            ("the maximum sees the padded steps: exclude them.", H.amax(1)),
            (
                "multiplying by the mask puts zeros in the padded places, and 0 beats negative "
                "states: fill them with -inf instead.",
                zeroed.amax(1),
            ),
        ]

    # all real states negative, padding large: a max over padding returns the padding, and
    # zeroing the padding with the mask returns 0
    _check_pool(
        masked_max,
        "masked_max",
        lambda s: s.amax(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed,
        fill=1e3,
        shift=-10.0,
    )
    _check_pool(
        masked_max,
        "masked_max",
        lambda s: s.amax(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed + 1,
        fill=fill,
    )
    print(f"masked_max ignores padding (lengths {list(lengths)}, {dtype}).")


# ----------------------------------------------------------------------------- the model
def expected_parameter_names(cell: str, num_layers: int) -> set[str]:
    """Parameter names of the lesson's layout (what the grader loads)."""
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](2, 2, num_layers=num_layers, bidirectional=True)
    names = {f"rnn.{name}" for name, _ in rnn.named_parameters()}
    return names | {"embedding.weight", "fc.weight", "fc.bias"}


def build_student_model(SentimentRNN, config, *, dtype=torch.float64, seed=0):
    """The student's SentimentRNN(**config) in eval mode, weights drawn from ``seed``."""
    torch.manual_seed(seed)
    model = call_student(SentimentRNN, **config, name="SentimentRNN")
    if not isinstance(model, nn.Module):
        raise CheckFailed("SentimentRNN must be an nn.Module subclass.")
    return model.to(dtype).eval()


def _random_batch(lengths, vocab_size, *, seed, extra_padding=0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(2, vocab_size, (n,), generator=g) for n in lengths]
    X = pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)  # (B, T)
    if extra_padding:
        X = torch.cat([X, X.new_full((len(seqs), extra_padding), PAD_ID)], dim=1)
    return seqs, X, torch.tensor(lengths)


def _layout_problems(model, config) -> list[str]:
    V, e, h = config["vocab_size"], config["embed_size"], config["num_hiddens"]
    layers, cell, p = config["num_layers"], config["cell"], config["dropout"]
    rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
    problems = []
    emb = getattr(model, "embedding", None)
    if not isinstance(emb, nn.Embedding) or (emb.num_embeddings, emb.embedding_dim) != (V, e):
        problems.append(f"model.embedding must be nn.Embedding({V}, {e}, padding_idx=PAD_ID)")
    elif emb.padding_idx != PAD_ID:
        problems.append(f"model.embedding.padding_idx is {emb.padding_idx}; expected PAD_ID = 0")
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, rnn_class):
        problems.append(f"with cell={cell!r}, model.rnn must be an nn.{rnn_class.__name__}")
    else:
        wanted = dict(
            input_size=e,
            hidden_size=h,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=p if layers > 1 else 0.0,
        )
        for attr, value in wanted.items():
            if getattr(rnn, attr) != value:
                problems.append(f"model.rnn.{attr} is {getattr(rnn, attr)}; expected {value}")
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear) or (fc.in_features, fc.out_features) != (4 * h, 2):
        problems.append(
            f"model.fc must be nn.Linear(4 * num_hiddens, 2) = nn.Linear({4 * h}, 2): "
            "[mean; max] of both directions in, two logits out"
        )
    drop = getattr(model, "dropout", None)
    if not isinstance(drop, nn.Dropout) or drop.p != p:
        problems.append(f"model.dropout must be nn.Dropout({p})")
    names = set(model.state_dict())
    want = expected_parameter_names(cell, layers)
    if not problems and names != want:
        problems.append(
            f"parameter names differ from the layout the grader loads: missing "
            f"{sorted(want - names)}, unexpected {sorted(names - want)}"
        )
    return problems


def check_sentiment_rnn(
    SentimentRNN,
    configs=(
        dict(
            vocab_size=30,
            embed_size=8,
            num_hiddens=5,
            num_layers=1,
            cell="gru",
            dropout=0.0,
            packed=False,
        ),
        dict(
            vocab_size=25,
            embed_size=6,
            num_hiddens=4,
            num_layers=2,
            cell="lstm",
            dropout=0.25,
            packed=False,
        ),
    ),
    *,
    seed=0,
):
    """Layers, parameter names, (B, 2) logits, [mean; max] pooling of the BiRNN's states."""
    for config in configs:
        model = build_student_model(SentimentRNN, config, seed=seed)
        problems = _layout_problems(model, config)
        if problems:
            raise CheckFailed(f"SentimentRNN(**{config}): " + "; ".join(problems) + ".")
        T = 7
        _, X, lengths = _random_batch([T, T, T], config["vocab_size"], seed=seed)  # no padding
        with torch.no_grad():
            logits = call_student(model, X, lengths, name="SentimentRNN.forward")
            expect_tensor("logits", logits, (3, 2), "(B, 2)")
            H, _ = model.rnn(model.embedding(X))  # (B, T, 2h): no padding, plain pooling
            mean, top = H.mean(1), H.amax(1)
            want = model.fc(torch.cat([mean, top], -1))
            hints = [
                ("concatenate [mean; max] in this order", model.fc(torch.cat([top, mean], -1))),
            ]
        tol = {"rtol": 1e-8, "atol": 1e-8}
        hint = next((h for h, c in hints if torch.allclose(logits, c, **tol)), "")
        expect_close(
            "logits (no padding, eval mode)",
            logits,
            want,
            hint=hint
            or "expected fc([masked_mean(H); masked_max(H)]) with H the bidirectional "
            "RNN's states over the embedded tokens.",
            **tol,
        )
        model.train()
        if config["dropout"] > 0:
            with torch.no_grad():
                a, b = model(X, lengths), model(X, lengths)
            if torch.allclose(a, b):
                raise CheckFailed("in training mode dropout must make two calls differ.")
    print(f"SentimentRNN: layout, parameter names and logits right for {len(configs)} configs.")


def check_sentiment_rnn_ignores_padding(
    SentimentRNN,
    config=(
        ("vocab_size", 30),
        ("embed_size", 6),
        ("num_hiddens", 4),
        ("num_layers", 1),
        ("cell", "gru"),
        ("dropout", 0.3),
    ),
    lengths=(5, 2, 7, 1),
    *,
    seed=0,
):
    """packed=True: a review's logits alone = in a padded batch; packed = padded without padding."""
    config = dict(config)
    model = build_student_model(SentimentRNN, config | {"packed": True}, seed=seed)
    seqs, X, lens = _random_batch(list(lengths), config["vocab_size"], seed=seed, extra_padding=3)
    tol = {"rtol": 1e-8, "atol": 1e-8}
    with torch.no_grad():
        batch = call_student(model, X, lens, name="SentimentRNN.forward")
        expect_tensor("logits", batch, (len(seqs), 2), "(B, 2)")
        alone = torch.cat(
            [call_student(model, s[None], torch.tensor([len(s)])) for s in seqs]
        )  # (B, 2)
    expect_close(
        "logits in a padded batch vs alone (packed=True, eval mode)",
        batch,
        alone,
        hint="in packed mode padding must change nothing: pack_padded_sequence(E, "
        "lengths.cpu(), batch_first=True, enforce_sorted=False), then pad_packed_sequence(..., "
        "total_length=T), and pool with masked_mean / masked_max.",
        **tol,
    )
    padded_model = build_student_model(SentimentRNN, config | {"packed": False}, seed=seed)
    padded_model.load_state_dict(model.state_dict())
    full = [len(seqs[0])] * 3
    _, X_full, lens_full = _random_batch(full, config["vocab_size"], seed=seed + 1)
    with torch.no_grad():
        expect_close(
            "logits with packed=False (no padding in the batch)",
            padded_model(X_full, lens_full),
            model(X_full, lens_full),
            hint="without padding, packed and padded modes must agree: same layers, same pooling.",
            **tol,
        )
    print(f"SentimentRNN (packed) ignores padding for lengths {list(lengths)}.")


# ----------------------------------------------------------------------------- training
class _ProbeModel(nn.Module):
    """Bag of embeddings -> linear: logits from the mean embedding of the real tokens.

    Records, on each call: the training flag, whether autograd is on, the logits.
    """

    def __init__(self, vocab_size=20, dim=4, *, seed=0, noisy_in_training=False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Parameter(torch.randn(vocab_size, dim, generator=g))
        self.fc_weight = nn.Parameter(torch.randn(2, dim, generator=g))
        self.fc_bias = nn.Parameter(torch.randn(2, generator=g) * 0.1)
        self.noisy_in_training = noisy_in_training
        self.modes, self.grad_modes, self.outputs, self.shapes = [], [], [], []

    def logits(self, X, lengths):
        mask = (torch.arange(X.shape[1]) < lengths[:, None].cpu()).to(self.embedding.dtype)
        mean = (self.embedding[X] * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return mean @ self.fc_weight.T + self.fc_bias  # (B, 2)

    def forward(self, X, lengths):
        self.modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        self.shapes.append(tuple(X.shape))
        out = self.logits(X, lengths)
        if self.training and self.noisy_in_training:  # behaves like heavy dropout
            out = out + 50 * torch.randn_like(out)
        self.outputs.append(out.detach().clone())
        return out


class _RecordingScaler:
    """A disabled GradScaler (what a CPU gets) that records how it is used."""

    def __init__(self, optimizer_calls):
        self.calls, self._optimizer_calls = [], optimizer_calls

    def scale(self, loss):
        self.calls.append("scale")
        return loss

    def unscale_(self, optimizer):
        self.calls.append("unscale_")

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")

    def is_enabled(self):
        return False

    def get_scale(self):
        return 1.0


class _RecordingAutocast:
    """Wraps torch.autocast and records each (device_type, enabled) it is entered with."""

    def __init__(self, real, records):
        self.real, self.records = real, records

    def __call__(self, device_type=None, dtype=None, enabled=True, cache_enabled=None, **kwargs):
        self.records.append((str(device_type), bool(enabled)))
        kwargs = {"dtype": dtype, "enabled": enabled} | kwargs
        if cache_enabled is not None:
            kwargs["cache_enabled"] = cache_enabled
        return self.real(device_type, **kwargs)


def _training_batches(sizes, vocab_size=20, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for B in sizes:
        lengths = torch.randint(1, 9, (B,), generator=g)
        X = torch.randint(2, vocab_size, (B, int(lengths.max())), generator=g)
        X[torch.arange(X.shape[1]) >= lengths[:, None]] = PAD_ID
        batches.append((X, lengths, torch.randint(0, 2, (B,), generator=g)))
    return batches


def _fresh_gradient(model, params, batch):
    """The gradient of the batch's mean cross-entropy at ``params`` (for the probe model)."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        for p, value in zip(probe.parameters(), params, strict=True):
            p.copy_(value)
    X, lengths, y = batch
    loss = F.cross_entropy(probe.logits(X, lengths), y)
    return torch.autograd.grad(loss, list(probe.parameters()))


def _run_training(train_one_epoch, sizes, max_norm, seed):
    model = _ProbeModel(seed=seed).eval()  # the student must switch to train mode
    batches = _training_batches(sizes, seed=seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.5)
    scaler = _RecordingScaler(optimizer)
    autocasts = []
    for p in model.parameters():  # stale gradients that zero_grad must clear
        p.grad = torch.ones_like(p)
    with (
        mock.patch.object(torch, "autocast", _RecordingAutocast(torch.autocast, autocasts)),
        mock.patch.object(torch.amp, "autocast", _RecordingAutocast(torch.amp.autocast, autocasts)),
    ):
        result = call_student(
            train_one_epoch, model, iter(batches), optimizer, scaler, max_norm=max_norm
        )
    return model, batches, optimizer, scaler, autocasts, result


def check_train_one_epoch(train_one_epoch, sizes=(5, 3, 6, 2), *, seed=0):
    """train_one_epoch(model, batches, optimizer, scaler, max_norm) -> mean loss (float)."""
    n = len(sizes)
    for max_norm in (1e6, 0.05):  # first no clipping happens, then every step is clipped
        model, batches, optimizer, scaler, autocasts, result = _run_training(
            train_one_epoch, sizes, max_norm, seed
        )
        if len(model.modes) != n:
            raise CheckFailed(f"the model was called {len(model.modes)} times for {n} batches.")
        if not all(model.modes):
            raise CheckFailed(
                "the model ran in eval mode: call model.train() first (evaluate() leaves the "
                "model in eval mode, and dropout would stay off)."
            )
        if len(optimizer.steps) != n:
            raise CheckFailed(
                f"optimizer.step() ran {len(optimizer.steps)} times for {n} batches: once "
                "per batch, through scaler.step(optimizer)."
            )
        if scaler.calls != ["scale", "unscale_", "step", "update"] * n:
            raise CheckFailed(
                "use the GradScaler in this order for every batch: scaler.scale(loss).backward(), "
                "scaler.unscale_(optimizer), clip, scaler.step(optimizer), scaler.update(). "
                f"Your calls: {scaler.calls[:8]}{' ...' if len(scaler.calls) > 8 else ''}."
            )
        # On the CPU, autocast disabled and no autocast are the same computation: only an
        # autocast enabled here is wrong (an `if device.type == "cuda":` around it is fine).
        if any(enabled for _, enabled in autocasts):
            raise CheckFailed(
                'autocast was enabled on the CPU: use enabled=(device.type == "cuda").'
            )
        for k, (params, grads) in enumerate((s.params, s.grads) for s in optimizer.steps):
            if any(g is None for g in grads):
                raise CheckFailed("some parameters have no gradient at optimizer.step().")
            fresh = _fresh_gradient(model, params, batches[k])
            norm = torch.sqrt(sum((g**2).sum() for g in fresh))
            coef = min(1.0, max_norm / (float(norm) + 1e-6))
            want = [g * coef for g in fresh]
            got_flat, want_flat = (
                torch.cat([g.flatten() for g in grads]),
                torch.cat([g.flatten() for g in want]),
            )
            if torch.allclose(got_flat, want_flat, rtol=1e-4, atol=1e-6):
                continue
            fresh_flat = torch.cat([g.flatten() for g in fresh])
            if float(got_flat.abs().max()) == 0:
                hint = (
                    "the gradients are zero at the step: zero them before backward(), "
                    "not between backward() and the step."
                )
            elif coef < 1 and torch.allclose(got_flat, fresh_flat, rtol=1e-4, atol=1e-6):
                hint = (
                    f"the gradient was not clipped (norm {float(norm):.3g} > max_norm "
                    f"{max_norm}): nn.utils.clip_grad_norm_(model.parameters(), max_norm) "
                    "after unscale_ and before the step."
                )
            elif float(got_flat.norm()) > float(want_flat.norm()) * 1.01 and coef == 1:
                hint = (
                    "the gradient holds more than this batch's: call optimizer.zero_grad() "
                    "before each backward (or the loss is a sum, not the batch mean)."
                )
            else:
                hint = "the loss must be F.cross_entropy(logits, y), the mean over the batch."
            raise CheckFailed(f"at step {k + 1} the gradient is not the expected one: {hint}")
        if not isinstance(result, numbers.Real) or isinstance(result, bool):
            raise CheckFailed(
                f"train_one_epoch should return a float (loss.item()); got {type(result).__name__}."
            )
        losses = [
            F.cross_entropy(out, y).item()
            for out, (_, _, y) in zip(model.outputs, batches, strict=True)
        ]
        weighted = sum(
            loss * len(y) for loss, (_, _, y) in zip(losses, batches, strict=True)
        ) / sum(sizes)
        if not math.isclose(result, weighted, rel_tol=1e-4, abs_tol=1e-6):
            hint = (
                "weight each batch's loss by its size: batches differ in size."
                if math.isclose(result, sum(losses) / n, rel_tol=1e-4)
                else "return the mean cross-entropy over all the epoch's examples."
            )
            raise CheckFailed(f"returned {result:.6g}; expected {weighted:.6g}: {hint}")
    print(
        f"train_one_epoch: train mode, fresh and clipped gradients, autocast and scaler over "
        f"{n} batches; mean loss right."
    )


# ----------------------------------------------------------------------------- evaluation
def check_evaluate(evaluate, sizes=(4, 7, 2), *, seed=0):
    """evaluate(model, batches) -> accuracy over all examples, in eval mode, without grad."""
    model = _ProbeModel(seed=seed, noisy_in_training=True).train()
    batches = _training_batches(sizes, seed=seed + 1)
    with torch.no_grad():
        predictions = [model.logits(X, L).argmax(1) for X, L, _ in batches]
    model.modes.clear()
    result = call_student(evaluate, model, iter(batches), name="evaluate")
    if not model.modes:
        raise CheckFailed("evaluate never called the model.")
    if any(model.modes):
        raise CheckFailed(
            "the model ran in training mode: call model.eval() first (dropout stays on otherwise)."
        )
    if any(model.grad_modes):
        raise CheckFailed(
            "autograd was on: wrap the loop in torch.no_grad() (or torch.inference_mode())."
        )
    if not isinstance(result, numbers.Real) or isinstance(result, bool):
        raise CheckFailed(f"evaluate should return a float; got {type(result).__name__}.")
    correct = [int((p == y).sum()) for p, (_, _, y) in zip(predictions, batches, strict=True)]
    want = sum(correct) / sum(sizes)
    if math.isclose(result, want, abs_tol=1e-6):
        print(f"evaluate: accuracy {want:.3f} over {sum(sizes)} examples in eval mode.")
        return
    per_batch = sum(c / s for c, s in zip(correct, sizes, strict=True)) / len(sizes)
    if math.isclose(result, 1 - want, abs_tol=1e-6):
        hint = "that is 1 - accuracy: the labels are flipped (class 1 is positive, y as given)."
    elif math.isclose(result, per_batch, abs_tol=1e-6):
        hint = (
            "that is the mean of the batch accuracies: count correct predictions over all examples."
        )
    else:
        hint = "the prediction is logits.argmax(dim=1), compared with y."
    raise CheckFailed(f"evaluate returned {result:.4f}; expected {want:.4f}: {hint}")


# ----------------------------------------------------------------------------- predict
class _KeywordModel(nn.Module):
    """Logits [0, s] with s = 2 (#great) - 2 (#awful) over the real tokens of one review."""

    def __init__(self, great_id, awful_id):
        super().__init__()
        self.great_id, self.awful_id = great_id, awful_id
        self.unused = nn.Parameter(torch.zeros(1))  # so that next(model.parameters()) works
        self.modes, self.grad_modes, self.inputs = [], [], []

    def forward(self, X, lengths):
        self.modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        self.inputs.append((X.clone(), torch.as_tensor(lengths).clone()))
        if X.dim() != 2 or X.dtype != torch.long:
            raise CheckFailed(
                f"X must be a (1, L) int64 batch of one review; got {X.dtype} {tuple(X.shape)}."
            )
        real = torch.arange(X.shape[1]) < torch.as_tensor(lengths).cpu()[:, None]
        score = 2.0 * ((X == self.great_id) & real).sum(1) - 2.0 * (
            (X == self.awful_id) & real
        ).sum(1)
        return torch.stack([torch.zeros_like(score), score], dim=1) + 0 * self.unused  # (B, 2)


def check_predict(predict):
    """predict(text, model, vocab, max_len) -> (label, probability of that label)."""
    vocab = {PAD: 0, UNK: 1, "great": 2, "awful": 3, "film": 4, "!": 5, "a": 6}
    model = _KeywordModel(vocab["great"], vocab["awful"]).train()
    sigmoid = lambda s: 1 / (1 + math.exp(-s))  # noqa: E731
    long_text = "great " * 10 + "awful " * 30  # clipped to 9: 4 great + 5 awful -> score -2
    cases = [
        ("A GREAT film!", 100, ("positive", sigmoid(2)), "a positive review"),
        ("Awful, awful film.", 100, ("negative", sigmoid(4)), "a negative review"),
        (
            long_text,
            9,
            ("negative", sigmoid(2)),
            "clip(ids, max_len) as in training: the first and last halves",
        ),
    ]
    for text, max_len, (label, prob), about in cases:
        result = call_student(predict, text, model, vocab, max_len, name="predict")
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise CheckFailed(f"predict should return (label, probability); got {result!r}.")
        got_label, got_prob = result
        if model.modes and model.modes[-1]:
            raise CheckFailed("predict ran the model in training mode: call model.eval().")
        if model.grad_modes and model.grad_modes[-1]:
            raise CheckFailed("predict ran with autograd on: use torch.no_grad().")
        if got_label not in CLASS_NAMES:
            raise CheckFailed(f"the label should be 'positive' or 'negative'; got {got_label!r}.")
        if not isinstance(got_prob, numbers.Real):
            raise CheckFailed(f"the probability should be a float; got {type(got_prob).__name__}.")
        if got_label != label:
            raise CheckFailed(
                f"predict({text[:40]!r}...) says {got_label!r}; expected {label!r} ({about}). "
                "Class 1 is positive: the label is CLASS_NAMES[argmax]."
            )
        if not math.isclose(float(got_prob), prob, abs_tol=1e-6):
            hint = (
                "return the probability of the label you return (at least 0.5), not P(positive)."
                if math.isclose(float(got_prob), 1 - prob, abs_tol=1e-6)
                else f"expected softmax(logits)[label] = {prob:.4f} ({about})."
            )
            raise CheckFailed(
                f"predict({text[:40]!r}) gives probability {float(got_prob):.4f}: {hint}"
            )
    print("predict: tokenize -> encode -> clip -> model in eval mode -> (label, probability).")


# ----------------------------------------------------------------------------- checkpoints
def _small_config(cell="gru", num_layers=1):
    return dict(
        vocab_size=12,
        embed_size=4,
        num_hiddens=3,
        num_layers=num_layers,
        cell=cell,
        dropout=0.1,
        packed=False,
    )


def _shuffled_vocab(size, *, seed=0):
    """A vocabulary whose dict order differs from its id order (as a real one may)."""
    g = torch.Generator().manual_seed(seed)
    tokens = [PAD, UNK] + [f"tok{i}" for i in range(size - 2)]
    order = torch.randperm(size, generator=g).tolist()
    return {tokens[i]: i for i in order}


def check_save_checkpoint(save_checkpoint, SentimentRNN, *, cell="gru", num_layers=1, seed=0):
    """save_checkpoint writes a safe, complete checkpoint, atomically."""
    config = _small_config(cell, num_layers)
    model = build_student_model(SentimentRNN, config, dtype=torch.float32, seed=seed)
    vocab = _shuffled_vocab(config["vocab_size"], seed=seed)
    with tempfile.TemporaryDirectory(prefix="rnncourse-ckpt-") as tmp:
        path = Path(tmp) / "model.pt"
        call_student(save_checkpoint, path, model, vocab, config, 77, name="save_checkpoint")
        try:
            checkpoint = read_checkpoint(path)
        except CheckpointError as err:
            message = f"the saved checkpoint: {err}"
            with contextlib.suppress(Exception):
                raw = torch.load(path, map_location="cpu", weights_only=True)
                if raw["vocab"] == list(vocab) != sorted(vocab, key=vocab.get):
                    message = (
                        "the saved vocab lists the tokens in the dict's insertion order; "
                        "it must be in id order: sorted(vocab, key=vocab.get)."
                    )
            raise CheckFailed(message) from None
        leftovers = sorted(p.name for p in Path(tmp).iterdir() if p.name != "model.pt")
        if leftovers:
            raise CheckFailed(f"save_checkpoint left other files behind: {leftovers}.")
        if checkpoint["vocab"] != sorted(vocab, key=vocab.get):
            hint = (
                " (that is the dict's insertion order)"
                if checkpoint["vocab"] == list(vocab)
                else ""
            )
            raise CheckFailed(
                f"vocab must list the tokens in id order, sorted(vocab, key=vocab.get){hint}."
            )
        if checkpoint["model_config"] != config or checkpoint["max_len"] != 77:
            raise CheckFailed("model_config and max_len must be saved as given.")
        state = checkpoint["state_dict"]
        want = model.state_dict()
        if set(state) != set(want) or not all(torch.equal(state[k], want[k].cpu()) for k in want):
            raise CheckFailed("state_dict must be model.state_dict(), every tensor on the CPU.")
        rebuilt = build_student_model(
            SentimentRNN, checkpoint["model_config"], dtype=torch.float32, seed=seed + 1
        )
        rebuilt.load_state_dict(state)
        _, X, lengths = _random_batch([5, 3], config["vocab_size"], seed=seed)
        with torch.no_grad():
            if not torch.equal(rebuilt(X, lengths), model.eval()(X, lengths)):
                raise CheckFailed("the model rebuilt from the checkpoint predicts differently.")
        _check_atomic(save_checkpoint, path, model, vocab, config)
    print("save_checkpoint: weights-only, complete (weights, vocab, config), written atomically.")


def _check_atomic(save_checkpoint, path, model, vocab, config):
    """A save that fails half-way must leave the previous file untouched."""
    path.write_bytes(b"the previous checkpoint")
    calls = []

    def disk_full(obj, f, *args, **kwargs):
        calls.append(f)
        if isinstance(f, str | os.PathLike):
            with open(f, "wb") as out:
                out.write(b"half a checkpoi")
        else:
            f.write(b"half a checkpoi")
        raise OSError(errno.ENOSPC, "No space left on device (simulated by the check)")

    with mock.patch.object(torch, "save", disk_full), contextlib.suppress(Exception):
        save_checkpoint(path, model, vocab, config, 77)  # expected to fail: what is left counts
    if not calls:
        raise CheckFailed("save_checkpoint must write the file with torch.save.")
    if path.read_bytes() != b"the previous checkpoint":
        raise CheckFailed(
            "when torch.save fails half-way (a full disk), the previous checkpoint was "
            "damaged: write to a temporary file in the same folder, then os.replace(tmp, path)."
        )


def check_checkpoint_file(path, SentimentRNN):
    """The checkpoint at ``path`` loads safely and rebuilds the student's model."""
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckFailed(str(err)) from None
    config = checkpoint["model_config"]
    try:
        model = SentimentRNN(**config)
    except Exception as err:  # noqa: BLE001 - reported to the student
        raise CheckFailed(
            f"SentimentRNN(**model_config) failed ({type(err).__name__}: {err}): model_config "
            "must hold SentimentRNN's constructor arguments."
        ) from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckFailed(f"the checkpoint's state_dict does not fit SentimentRNN: {err}") from None
    count = sum(p.numel() for p in model.parameters())
    print(
        f"{Path(path).name}: {config.get('num_layers')}-layer bidirectional "
        f"{str(config.get('cell')).upper()}, {config.get('num_hiddens')} hidden units, "
        f"vocabulary of {len(checkpoint['vocab']):,}, {count / 1e6:.2f}M parameters; "
        "loads with weights_only=True."
    )
