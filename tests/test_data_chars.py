"""rnncourse.data.chars (lesson 06's character stream) on invented reviews: cleaning, the
split, the vocabulary, encoding, the cache and its rebuilding. The IMDB archive is never read
and nothing is written outside tmp_path."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnncourse.data import DatasetError, chars
from rnncourse.data import imdb as imdb_module
from rnncourse.data.chars import (
    UNK_CHAR,
    CharCorpus,
    CharVocab,
    build_char_cache,
    build_vocab,
    char_cache_path,
    clean_review,
    load_char_corpus,
    read_char_cache,
    split_reviews,
)

N_REVIEWS = chars.VALID_REVIEWS + 100  # build_char_cache keeps VALID_REVIEWS aside


# ----------------------------------------------------------------------------- cleaning
@pytest.mark.parametrize(
    "text, cleaned",
    [
        ("Good.<br /><br />Really.", "Good.  Really."),
        ("One<BR />two<Br/>three<br>four<br  />five", "One two three four five"),
        ("line\nbreak", "line break"),
        ("windows\r\nbreak", "windows  break"),
        ("no change: <b>bold</b> & 3 < 4", "no change: <b>bold</b> & 3 < 4"),
        ("", ""),
    ],
)
def test_clean_review(text, cleaned):
    assert clean_review(text) == cleaned


def test_a_cleaned_review_has_no_line_break():
    assert "\n" not in clean_review("a\nb<br />c\r\nd\n")


# ----------------------------------------------------------------------------- the split
TEXTS = [f"review {i}<br />with\na break" for i in range(20)]


def reviews_of(stream: str) -> list[str]:
    assert stream.endswith("\n"), "every review ends with the end-of-review character"
    return stream.split("\n")[:-1]


def test_split_reviews_is_a_fixed_shuffle_with_a_valid_slice():
    train, valid = split_reviews(TEXTS, valid_reviews=3)
    assert split_reviews(TEXTS, valid_reviews=3) == (train, valid)  # the same every time
    assert split_reviews(TEXTS, valid_reviews=3, seed=1) != (train, valid)
    train_reviews, valid_reviews = reviews_of(train), reviews_of(valid)
    assert (len(train_reviews), len(valid_reviews)) == (17, 3)
    cleaned = [clean_review(t) for t in TEXTS]
    assert sorted(train_reviews + valid_reviews) == sorted(cleaned)  # each review once
    assert not set(train_reviews) & set(valid_reviews)
    assert valid_reviews + train_reviews != cleaned  # shuffled, not in the archive's order


def test_split_reviews_uses_the_first_reviews_of_the_order_for_validation():
    """More validation reviews extend the slice: the order does not depend on the count."""
    _, three = split_reviews(TEXTS, valid_reviews=3)
    _, five = split_reviews(TEXTS, valid_reviews=5)
    assert reviews_of(five)[:3] == reviews_of(three)


@pytest.mark.parametrize("valid_reviews", [0, 20, 25])
def test_split_reviews_needs_reviews_on_both_sides(valid_reviews):
    with pytest.raises(ValueError, match="valid_reviews"):
        split_reviews(TEXTS, valid_reviews=valid_reviews)


# ----------------------------------------------------------------------------- the vocabulary
def test_build_vocab_keeps_characters_seen_min_count_times_in_code_point_order():
    vocab = build_vocab("zzz yyy\n\nxx a", min_count=2)
    assert vocab.itos == (UNK_CHAR, "\n", " ", "x", "y", "z")  # "a" once: <unk>
    assert vocab.stoi == {"\n": 1, " ": 2, "x": 3, "y": 4, "z": 5}
    assert len(vocab) == 6


def test_build_vocab_default_min_count():
    vocab = build_vocab("a" * chars.MIN_COUNT + "b" * (chars.MIN_COUNT - 1))
    assert vocab.itos == (UNK_CHAR, "a")


def test_unk_is_id_0_and_not_a_character_of_the_vocabulary():
    vocab = build_vocab("ab", min_count=1)
    assert vocab.itos[chars.UNK_ID] == UNK_CHAR == "\ufffd"
    assert UNK_CHAR not in vocab.stoi
    assert build_vocab("", min_count=1).itos == (UNK_CHAR,)


def test_build_vocab_refuses_more_characters_than_a_byte_holds():
    with pytest.raises(ValueError, match="one byte"):
        build_vocab("".join(chr(0x100 + i) for i in range(300)), min_count=1)


# ----------------------------------------------------------------------------- encoding
VOCAB = build_vocab("hello, world!\n", min_count=1)


def test_encode_decode_round_trip():
    text = "hello world!\nold lore, held"
    ids = VOCAB.encode(text)
    assert ids.dtype == torch.int64 and ids.shape == (len(text),)
    assert VOCAB.encode_array(text).dtype == np.uint8
    assert VOCAB.decode(ids) == text
    assert VOCAB.decode(ids.tolist()) == VOCAB.decode(ids.numpy()) == text
    assert ids.tolist() == [VOCAB.stoi[c] for c in text]


@pytest.mark.parametrize(
    "unknown",
    ["a", "H", "\t", "x", "é", "€", "\U0001f600", UNK_CHAR],  # below, at and above the table
)
def test_unknown_characters_are_unk(unknown):
    assert max(map(ord, VOCAB.itos[1:])) == ord("w")  # the table ends after "w"
    ids = VOCAB.encode(f"h{unknown}o")
    assert ids.tolist() == [VOCAB.stoi["h"], 0, VOCAB.stoi["o"]]
    assert VOCAB.decode(ids) == f"h{UNK_CHAR}o"


def test_encode_the_empty_text():
    assert VOCAB.encode("").shape == (0,)
    assert VOCAB.decode([]) == ""


def test_a_vocab_of_unk_alone_encodes_everything_to_0():
    vocab = CharVocab((UNK_CHAR,))
    assert vocab.encode("any text\n").tolist() == [0] * 9


# ----------------------------------------------------------------------------- the cache
def invented_reviews() -> list[str]:
    """N_REVIEWS reviews; "Q" is frequent in one training review only, "Z" in one validation
    review only, "é" is rare."""
    texts = [
        f"A {'good' if i % 3 else 'bad'} film.<br />I saw it in {1950 + i % 70}."
        for i in range(N_REVIEWS)
    ]
    _, valid = split_reviews([str(i) for i in range(N_REVIEWS)])  # which reviews are held out
    held_out = {int(r) for r in reviews_of(valid)}
    first_valid = min(held_out)
    first_train = min(set(range(N_REVIEWS)) - held_out)
    texts[first_valid] += " Z" * chars.MIN_COUNT
    texts[first_train] += " Q" * chars.MIN_COUNT + " café"
    return texts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    texts = invented_reviews()
    path = tmp_path_factory.mktemp("chars") / "chars.npz"
    info = build_char_cache(texts, path, source="invented")
    return texts, path, info


def test_build_and_read_the_cache(built):
    texts, path, info = built
    corpus = read_char_cache(path)
    assert isinstance(corpus, CharCorpus)
    train_text, valid_text = split_reviews(texts)
    assert corpus.vocab == build_vocab(train_text)  # the training reviews only
    assert corpus.train.dtype == corpus.valid.dtype == torch.int64
    assert corpus.train.tolist() == corpus.vocab.encode(train_text).tolist()
    assert corpus.valid.tolist() == corpus.vocab.encode(valid_text).tolist()
    assert corpus.info["format"] == info["format"] == chars.CACHE_FORMAT
    assert (info["source"], info["reviews"]) == ("invented", N_REVIEWS)
    assert (info["valid_reviews"], info["min_count"]) == (chars.VALID_REVIEWS, chars.MIN_COUNT)
    assert not list(path.parent.glob(".*partial")), "no temporary file is left behind"


def test_the_vocabulary_comes_from_the_training_reviews_only(built):
    _, path, _ = built
    corpus = read_char_cache(path)
    assert "Q" in corpus.vocab.stoi  # frequent in a training review
    assert "Z" not in corpus.vocab.stoi  # frequent, but only in a validation review
    assert "é" not in corpus.vocab.stoi  # rare
    valid = corpus.vocab.decode(corpus.valid)
    assert f" {UNK_CHAR}" * chars.MIN_COUNT in valid and "Z" not in valid
    assert " Q" * chars.MIN_COUNT in corpus.vocab.decode(corpus.train)


def test_every_review_ends_with_the_end_of_review_id(built):
    _, path, _ = built
    corpus = read_char_cache(path)
    end = corpus.vocab.stoi[chars.END_OF_REVIEW]
    assert int((corpus.valid == end).sum()) == chars.VALID_REVIEWS
    assert int((corpus.train == end).sum()) == N_REVIEWS - chars.VALID_REVIEWS
    assert corpus.train[-1] == end and corpus.valid[-1] == end
    assert "<br" not in corpus.vocab.decode(corpus.train)


# ----------------------------------------------------------------------------- bad caches
def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _info(**fields):
    return np.frombuffer(json.dumps(fields).encode(), dtype=np.uint8)


BAD_CACHES = {
    "missing": lambda path, good: path,
    "empty": lambda path, good: _write(path, b""),
    "not a zip": lambda path, good: _write(path, b"not an npz file" * 10),
    "an older format": lambda path, good: _write_npz(
        path,
        info=_info(format=0),
        train=np.zeros(3, np.uint8),
        valid=np.zeros(3, np.uint8),
        codes=np.zeros(0, np.int32),
    ),
    "no codes": lambda path, good: _write_npz(
        path,
        info=_info(format=chars.CACHE_FORMAT),
        train=np.zeros(3, np.uint8),
        valid=np.zeros(3, np.uint8),
    ),
    "info not JSON": lambda path, good: _write_npz(
        path,
        info=np.frombuffer(b"{oops", np.uint8),
        train=np.zeros(3, np.uint8),
        valid=np.zeros(3, np.uint8),
        codes=np.zeros(0, np.int32),
    ),
}

# A damaged zip (truncated, a flipped byte) raises zipfile.BadZipFile or zlib.error, neither
# an OSError nor a ValueError: read_char_cache must report it as a DatasetError too.
DAMAGED_CACHES = {
    "truncated": lambda path, good: _write(path, good[: len(good) // 2]),
    "last bytes cut": lambda path, good: _write(path, good[:-10]),
    "a flipped byte (CRC)": lambda path, good: _write(
        path, good[:200] + bytes([good[200] ^ 0xFF]) + good[201:]
    ),
}


@pytest.mark.parametrize(
    "make",
    [pytest.param(f, id=name) for name, f in BAD_CACHES.items()]
    + [pytest.param(f, id=name) for name, f in DAMAGED_CACHES.items()],
)
def test_a_bad_cache_is_a_dataset_error(make, built, tmp_path):
    _, good, _ = built
    path = make(tmp_path / "bad.npz", good.read_bytes())
    with pytest.raises(DatasetError, match="not a readable character cache"):
        read_char_cache(path)


# ----------------------------------------------------------------------------- load_char_corpus
@pytest.fixture
def fake_imdb(monkeypatch, tmp_path):
    """load_imdb replaced by invented reviews (calls counted); the default cache folder moved
    to tmp_path, so that nothing is ever written to datasets/cache."""
    calls = []
    texts = invented_reviews()

    def load_imdb(cache_dir=None, verbose=True):
        calls.append(cache_dir)
        return SimpleNamespace(unsup=SimpleNamespace(texts=texts), info={"source_name": "fake"})

    monkeypatch.setattr(imdb_module, "load_imdb", load_imdb)
    monkeypatch.setenv("RNNCOURSE_DATA_DIR", str(tmp_path / "default"))
    return calls


def test_char_cache_path(tmp_path, monkeypatch):
    assert char_cache_path(tmp_path) == tmp_path.resolve() / "imdb" / chars.CACHE_NAME
    monkeypatch.setenv("RNNCOURSE_DATA_DIR", str(tmp_path / "env"))
    assert char_cache_path() == (tmp_path / "env").resolve() / "imdb" / chars.CACHE_NAME


def test_load_char_corpus_builds_once_then_reads_the_cache(fake_imdb, tmp_path, capsys):
    corpus = load_char_corpus(tmp_path)
    assert len(fake_imdb) == 1 and "encoded" in capsys.readouterr().out
    assert char_cache_path(tmp_path).is_file()
    assert corpus.info["source"] == "fake"
    again = load_char_corpus(tmp_path)
    assert len(fake_imdb) == 1 and "loaded from cache" in capsys.readouterr().out
    assert torch.equal(again.train, corpus.train) and torch.equal(again.valid, corpus.valid)
    assert again.vocab == corpus.vocab
    load_char_corpus(tmp_path, rebuild=True, verbose=False)
    assert len(fake_imdb) == 2 and capsys.readouterr().out == ""


def test_load_char_corpus_uses_the_default_cache_folder(fake_imdb, tmp_path):
    load_char_corpus(verbose=False)
    assert (tmp_path / "default" / "imdb" / chars.CACHE_NAME).is_file()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"garbage" * 20, id="garbage"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    ],
)
def test_load_char_corpus_rebuilds_an_unreadable_cache(fake_imdb, tmp_path, capsys, damage):
    first = load_char_corpus(tmp_path, verbose=False)
    path = char_cache_path(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    corpus = load_char_corpus(tmp_path)
    assert len(fake_imdb) == 2
    assert "building it again" in capsys.readouterr().out
    assert torch.equal(corpus.train, first.train)
    read_char_cache(path)  # the file is whole again


def test_load_char_corpus_reports_a_cache_it_cannot_write_readably(
    fake_imdb, tmp_path, monkeypatch
):
    """A freshly built cache that cannot be read is an error, not an endless rebuild."""

    def build_char_cache(texts, target, source=""):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"broken")

    monkeypatch.setattr(chars, "build_char_cache", build_char_cache)
    with pytest.raises(DatasetError, match="not a readable character cache"):
        load_char_corpus(tmp_path, verbose=False)
    assert len(fake_imdb) == 1
