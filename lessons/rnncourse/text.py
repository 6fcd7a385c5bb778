"""Lesson 05's text pipeline, given from lesson 07 on: tokens, a vocabulary, padded batches.

Lesson 05 asks you to write these functions; lesson 07 reuses them from here instead of a
copy. Lesson 05's grader runs your answers with this module unavailable, so importing it
there is not an answer. The definitions are lesson 05's specification word for word.
"""

import math
import re
from collections import Counter
from collections.abc import Iterable

import torch

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
PAD_ID, UNK_ID = 0, 1  # every vocabulary starts with <pad>, <unk>
TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lowercase tokens: words (apostrophes inside), every other non-space character alone."""
    return TOKEN.findall(text.lower().replace("<br />", " "))


def build_vocab(
    token_lists: Iterable[list[str]],
    min_freq: int = 1,
    max_size: int | None = None,
    specials: tuple[str, ...] = (PAD, UNK),
) -> dict[str, int]:
    """A token -> id dict: ``specials`` first (``<pad>`` = 0, ``<unk>`` = 1, then any others
    such as ``<eos>``), then tokens seen ``min_freq`` times or more by decreasing count (ties
    alphabetical), ``max_size`` entries in all (specials included; None: no limit)."""
    if specials[:2] != (PAD, UNK):
        raise ValueError(f"specials must start with {PAD!r}, {UNK!r}; got {specials}")
    counts = Counter(tok for tokens in token_lists for tok in tokens if tok not in specials)
    kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max(max_size - len(specials), 0)]
    return {tok: i for i, tok in enumerate([*specials, *kept])}


def itos(vocab: dict[str, int]) -> list[str]:
    """The tokens in id order (what a checkpoint stores)."""
    return sorted(vocab, key=vocab.get)


def encode(tokens: list[str], vocab: dict[str, int]) -> torch.Tensor:
    """(T,) int64 ids of a token list, ``<unk>`` for unknown tokens."""
    return torch.tensor([vocab.get(tok, UNK_ID) for tok in tokens], dtype=torch.long)


def clip(ids: torch.Tensor, max_len: int) -> torch.Tensor:
    """The first max_len // 2 and the last max_len - max_len // 2 ids of a long sequence."""
    if len(ids) <= max_len:
        return ids
    return torch.cat([ids[: max_len // 2], ids[len(ids) - (max_len - max_len // 2) :]])


def encode_reviews(texts, vocab: dict[str, int], max_len: int, *, start: str | None = None):
    """Each review tokenized, encoded and clipped to max_len ids, as a list of (L,) tensors;
    with ``start`` (lesson 07: ``<eos>``) that token's id first, then the clipped review."""
    head = [vocab[start]] if start is not None else []
    return [
        torch.cat([torch.tensor(head, dtype=torch.long), clip(encode(tokenize(t), vocab), max_len)])
        for t in texts
    ]


def collate(batch: list[tuple[torch.Tensor, int]]):
    """Pad B pairs (ids (L_b,), label) into X (B, T) (``<pad>`` = 0), lengths (B,), y (B,)."""
    seqs, labels = zip(*batch, strict=True)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    X = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)  # (B, T)
    for b, seq in enumerate(seqs):
        X[b, : len(seq)] = seq
    return X, lengths, torch.tensor(labels, dtype=torch.long)


def bucket_batches(lengths: torch.Tensor, batch_size: int, generator=None, pool_batches=50):
    """Shuffled batches of indices, similar lengths together: shuffle, cut into pools of
    ``batch_size * pool_batches``, sort each pool by length, cut it into batches, shuffle
    the batches. Together they hold each of 0..N-1 once."""
    order = torch.randperm(len(lengths), generator=generator)  # (N,)
    batches = []
    for pool in order.split(batch_size * pool_batches):
        pool = pool[torch.argsort(lengths[pool], stable=True)]  # shortest first
        batches.extend(pool.split(batch_size))
    shuffle = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in shuffle.tolist()]


class Batches:
    """Batches (X (B, T), lengths (B,), y (B,)) of encoded reviews, redrawn at every pass:
    bucketed and shuffled for training, sorted by length for evaluation (``shuffle=False``)."""

    def __init__(self, ids, labels, batch_size, *, shuffle=True, seed=0):
        self.ids, self.labels = ids, torch.as_tensor(labels).tolist()
        self.lengths = torch.tensor([len(x) for x in ids])
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def index_batches(self) -> list[torch.Tensor]:
        if not self.shuffle:
            return list(torch.argsort(self.lengths, stable=True).split(self.batch_size))
        return bucket_batches(self.lengths, self.batch_size, generator=self.generator)

    def __iter__(self):
        for index in self.index_batches():
            yield collate([(self.ids[i], self.labels[i]) for i in index.tolist()])

    def __len__(self) -> int:  # exact when sorted; bucketing may add a few smaller batches
        return math.ceil(len(self.ids) / self.batch_size)
