"""Lesson 06's text: the unlabelled IMDB reviews as one stream of character ids.

The 50,000 unlabelled reviews (never the test reviews) are cleaned, shuffled once with a
fixed seed and split into a held-out validation slice (``VALID_REVIEWS`` reviews) and the
training stream (the rest). Each review ends with ``"\\n"``, the end-of-review character, so
that a model learns where reviews stop and a sampler can stop there too.

The vocabulary is built from the training stream only: every character seen at least
``MIN_COUNT`` times gets an id (by code point), every other one maps to ``<unk>`` (id 0,
shown as U+FFFD when decoded). About 210 distinct characters occur in the reviews, half of
them fewer than 100 times (accents, symbols, stray bytes).

Encoding is vectorised: the text becomes an array of code points (UTF-32), then one table
lookup turns every code point into its id. The encoded corpus is cached in
``<cache>/imdb/chars_v1.npz`` (one byte per character, about 65 MB) and reloads in well
under a second; ``bench/bench_lm_data.py`` measures both.
"""

import dataclasses
import json
import re
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from rnncourse.data._files import DatasetError, atomic_write, data_dir

CACHE_NAME = "chars_v1.npz"
CACHE_FORMAT = 1
MIN_COUNT = 100  # characters seen fewer times in the training stream become <unk>
VALID_REVIEWS = 500  # the held-out validation slice (about 630,000 characters)
SEED = 0  # the one shuffle of the unlabelled reviews
UNK_ID = 0
UNK_CHAR = "\ufffd"  # how <unk> is shown by ``decode``
END_OF_REVIEW = "\n"
LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # as lesson 05: <br />, <BR />, <br>


def clean_review(text: str) -> str:
    """A review as the model reads it: each ``<br />`` and any raw line break become a space
    (as in lesson 05), so ``"\\n"`` appears only at the end of a review."""
    return LINE_BREAK.sub(" ", text).replace("\r", " ").replace("\n", " ")


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """Character <-> id. ``itos[0]`` is ``<unk>``; the other ids follow code point order.

    Attributes:
        itos: the character of each id (``itos[UNK_ID]`` is U+FFFD).
    """

    itos: tuple[str, ...]

    def __post_init__(self):
        codes = np.array([ord(c) for c in self.itos[1:]], dtype=np.int64)
        table = np.full(int(codes.max(initial=0)) + 2, UNK_ID, dtype=np.uint8)
        table[codes] = np.arange(1, len(codes) + 1)
        object.__setattr__(self, "_table", table)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.itos) if i != UNK_ID}

    def encode_array(self, text: str) -> np.ndarray:
        """The ids of ``text``, (len(text),) uint8: one lookup per code point, no Python loop."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        codes = np.minimum(codes, len(self._table) - 1)  # beyond the table: <unk>
        return self._table[codes]

    def encode(self, text: str) -> torch.Tensor:
        """The ids of ``text`` as an int64 tensor, (len(text),)."""
        return torch.from_numpy(self.encode_array(text).astype(np.int64))

    def decode(self, ids) -> str:
        """The text of a sequence of ids (a tensor, array or list of ints)."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return "".join(self.itos[i] for i in ids)


def build_vocab(text: str, min_count: int = MIN_COUNT) -> CharVocab:
    """The characters of ``text`` seen at least ``min_count`` times, in code point order."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    counts = np.bincount(codes)
    kept = np.flatnonzero(counts >= min_count)
    if len(kept) > 255:
        raise ValueError(f"{len(kept)} characters kept: the cache stores ids in one byte")
    return CharVocab((UNK_CHAR, *(chr(c) for c in kept)))


@dataclasses.dataclass(frozen=True)
class CharCorpus:
    """The training stream, the validation stream and their vocabulary.

    Attributes:
        train: (N_train,) int64 character ids, reviews one after another, each ending in "\\n".
        valid: (N_valid,) int64, the held-out validation reviews, same layout.
        vocab: the ``CharVocab`` built from the training stream only.
        info: where it came from (the IMDB cache, the settings, the sizes).
    """

    train: torch.Tensor
    valid: torch.Tensor
    vocab: CharVocab
    info: dict

    def __repr__(self) -> str:
        return (
            f"CharCorpus(train={len(self.train):,} chars, valid={len(self.valid):,} chars, "
            f"vocab={len(self.vocab)})"
        )


def split_reviews(texts: list[str], valid_reviews: int = VALID_REVIEWS, seed: int = SEED):
    """(train text, valid text): cleaned reviews in one fixed random order, each ending in
    ``END_OF_REVIEW``; the first ``valid_reviews`` of that order are the validation slice."""
    if not 0 < valid_reviews < len(texts):
        raise ValueError(f"valid_reviews must be in 1..{len(texts) - 1}; got {valid_reviews}")
    order = np.random.default_rng(seed).permutation(len(texts))
    cleaned = [clean_review(texts[i]) + END_OF_REVIEW for i in order]
    return "".join(cleaned[valid_reviews:]), "".join(cleaned[:valid_reviews])


def build_char_cache(texts: list[str], target: Path, source: str = "") -> dict:
    """Split, build the vocabulary on the training part, encode both parts, write ``target``."""
    start = time.perf_counter()
    train_text, valid_text = split_reviews(texts)
    vocab = build_vocab(train_text)
    info = {
        "format": CACHE_FORMAT,
        "source": source,
        "reviews": len(texts),
        "valid_reviews": VALID_REVIEWS,
        "min_count": MIN_COUNT,
        "seed": SEED,
    }
    arrays = {
        "train": vocab.encode_array(train_text),
        "valid": vocab.encode_array(valid_text),
        "codes": np.array([ord(c) for c in vocab.itos[1:]], dtype=np.int32),
        "info": np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
    }
    atomic_write(target, lambda f: np.savez(f, **arrays))
    info["build_seconds"] = round(time.perf_counter() - start, 2)
    return info


def read_char_cache(path: Path) -> CharCorpus:
    try:
        with np.load(path) as data:
            info = json.loads(bytes(data["info"]).decode())
            if not isinstance(info, dict) or info.get("format") != CACHE_FORMAT:
                raise ValueError("an older cache format")
            vocab = CharVocab((UNK_CHAR, *(chr(int(c)) for c in data["codes"])))
            train = torch.from_numpy(data["train"].astype(np.int64))
            valid = torch.from_numpy(data["valid"].astype(np.int64))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetError(f"{path} is not a readable character cache ({err}).") from err
    return CharCorpus(train, valid, vocab, info)


def char_cache_path(cache_dir=None) -> Path:
    return data_dir(cache_dir) / "imdb" / CACHE_NAME


def load_char_corpus(cache_dir=None, *, rebuild: bool = False, verbose: bool = True):
    """The unlabelled IMDB reviews as character ids: a ``CharCorpus`` (see the module's doc).

    The first call reads the IMDB reviews (``load_imdb``), encodes them and caches the result
    in ``<cache>/imdb/chars_v1.npz``; later calls read that file only.
    """
    from rnncourse.data.imdb import load_imdb

    target = char_cache_path(cache_dir)
    start = time.perf_counter()
    built = rebuild or not target.is_file()
    if built:
        imdb = load_imdb(cache_dir, verbose=verbose)
        build_char_cache(imdb.unsup.texts, target, source=imdb.info.get("source_name", ""))
    try:
        corpus = read_char_cache(target)
    except DatasetError:
        if built:
            raise
        if verbose:
            print(f"{target} is unreadable or outdated: building it again.")
        return load_char_corpus(cache_dir, rebuild=True, verbose=verbose)
    if verbose:
        verb = "encoded" if built else "loaded from cache"
        print(f"{corpus} ({verb} in {time.perf_counter() - start:.1f} s; {target}).")
    return corpus
