"""rnncourse.data on tiny archives built here (official layout, invented reviews) and on the
real mirror when it is there: parsing, the cache, checksums, bad archives, full disks,
downloads from a local HTTP server (progress bar, retry, checksum)."""

import errno
import http.server
import io
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
import torch

from rnncourse.data import (
    ChecksumError,
    CorruptArchiveError,
    DatasetError,
    LayoutError,
    data_dir,
    download,
    load_imdb,
    train_valid_split,
)
from rnncourse.data import imdb as imdb_module
from rnncourse.data._files import REPO_ROOT, atomic_write, sha256_file
from rnncourse.data.imdb import MIRROR, verify_archive
from rnncourse.data.registry import IMDB as IMDB_SOURCE
from rnncourse.data.registry import Dataset

ARCHIVE_ENV, ALLOW_ENV = IMDB_SOURCE.archive_env, imdb_module.ALLOW_UNKNOWN_ENV

# (folder, label folder) -> [(id, rating, text, movie)]; movies 1-3 train, 7-8 test.
TINY = {
    ("train", "pos"): [
        (0, 9, "A <br />great film!", 1),
        (1, 10, "Loved it.", 2),
        (2, 7, "Fine.", 3),
    ],
    ("train", "neg"): [(0, 2, "Awful.", 1), (1, 1, "Boring<br /><br />and long", 3)],
    ("train", "unsup"): [(0, 0, "No rating here", 2), (1, 0, "Caf\u00e9 scenes", 3)],
    ("test", "pos"): [(0, 8, "Nice one", 7), (1, 9, "Wonderful", 8)],
    ("test", "neg"): [(0, 3, "Meh", 7), (1, 4, "Not good", 8)],
}


def make_archive(path: Path, reviews=TINY, prefix="aclImdb", urls=True) -> Path:
    """A .tar.gz with the official layout holding ``reviews`` (and urls_*.txt files)."""

    def add(tar, name, text):
        data = text.encode("utf-8")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, f"{prefix}/README", "tiny test archive\n")
        for (folder, sub), items in reviews.items():
            for review_id, rating, text, _ in items:
                add(tar, f"{prefix}/{folder}/{sub}/{review_id}_{rating}.txt", text)
            if urls and items:
                lines = [""] * (max(i for i, *_ in items) + 1)
                for review_id, _, _, movie in items:
                    lines[review_id] = f"http://www.imdb.com/title/tt{movie:07d}/usercomments"
                add(tar, f"{prefix}/{folder}/urls_{sub}.txt", "\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny archive named by $RNNCOURSE_IMDB_ARCHIVE and an empty cache folder."""
    archive = make_archive(tmp_path / "tiny.tar.gz")
    monkeypatch.setenv(ARCHIVE_ENV, str(archive))
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    return archive, tmp_path / "cache"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ----------------------------------------------------------------------------- parsing
def test_tiny_archive_is_parsed_into_three_splits_with_ids_ratings_and_movies(tiny):
    archive, cache = tiny
    with pytest.warns(UserWarning, match="not a known imdb archive"):
        data = load_imdb(cache, allow_unknown=True, verbose=False)
    assert (len(data.train), len(data.test), len(data.unsup)) == (5, 4, 2)
    # negatives first, then by id; labels 0/1/-1
    assert data.train.texts == [t for _, _, t, _ in TINY["train", "neg"] + TINY["train", "pos"]]
    assert data.train.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.train.ratings.tolist() == [2, 1, 9, 10, 7]
    assert data.train.ids.tolist() == [0, 1, 0, 1, 2]
    assert data.train.movies.tolist() == [1, 3, 1, 2, 3]
    assert data.unsup.labels.tolist() == [-1, -1] and data.unsup.ratings.tolist() == [0, 0]
    assert data.unsup.texts[1] == "Caf\u00e9 scenes"  # UTF-8 survives the cache
    assert data.test[0] == ("Meh", 0)
    assert data.info["source_sha256"] == sha256_file(archive)
    assert data.info["source_name"] == f"${ARCHIVE_ENV}"


def test_second_load_reads_only_the_cache(tiny, capsys):
    archive, cache = tiny
    with pytest.warns(UserWarning):
        first = load_imdb(cache, allow_unknown=True)
    assert "parsed from" in capsys.readouterr().out
    archive.unlink()  # the cache alone must be enough now
    second = load_imdb(cache)
    assert "loaded from cache" in capsys.readouterr().out
    assert second.train.texts == first.train.texts
    assert torch.equal(second.test.labels, first.test.labels)


def test_unreadable_cache_is_rebuilt(tiny, capsys):
    archive, cache = tiny
    target = imdb_module.cache_path(cache)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning):
        data = load_imdb(cache, allow_unknown=True)
    assert "building it again" in capsys.readouterr().out
    assert len(data.train) == 5


def test_movies_never_straddle_the_validation_split(tiny):
    _, cache = tiny
    with pytest.warns(UserWarning):
        train = load_imdb(cache, allow_unknown=True, verbose=False).train
    for seed in range(5):
        fit, valid = train_valid_split(train, 0.3, seed=seed)
        assert len(fit) + len(valid) == len(train) and len(valid) >= 1
        assert not set(fit.movies.tolist()) & set(valid.movies.tolist())
    a, b = train_valid_split(train, 0.3, seed=1), train_valid_split(train, 0.3, seed=1)
    assert a[1].texts == b[1].texts  # repeatable
    fit, valid = train_valid_split(train, 0.4, seed=0, by_movie=False)
    assert len(valid) == 2 and sorted(fit.texts + valid.texts) == sorted(train.texts)


# ----------------------------------------------------------------------------- checksums
def test_unknown_archive_is_refused_without_opt_in_and_nothing_is_written(tiny):
    archive, cache = tiny
    with pytest.raises(ChecksumError) as err:
        load_imdb(cache, verbose=False)
    message = str(err.value)
    assert sha256_file(archive) in message and ALLOW_ENV in message
    assert IMDB_SOURCE.sha256 in message  # names the checksums it knows
    assert files_in(cache) == []


def test_unknown_archive_is_accepted_with_the_environment_opt_in_and_a_warning(tiny, monkeypatch):
    _, cache = tiny
    monkeypatch.setenv(ALLOW_ENV, "1")
    with pytest.warns(UserWarning, match="may not be comparable with the official split"):
        data = load_imdb(cache, verbose=False)
    assert data.info["known_archive"].startswith("unknown")


def test_known_checksum_is_accepted_silently(tiny, recwarn):
    archive, _ = tiny
    digest = sha256_file(archive)
    known = Dataset("t", "http://x", "t.tgz", digest, 1, "T", known_archives={digest: "tiny"})
    assert verify_archive(archive, known) == digest
    assert not recwarn.list


def test_the_cache_folder_follows_its_environment_variable(tiny, monkeypatch):
    _, cache = tiny
    monkeypatch.setenv("RNNCOURSE_DATA_DIR", str(cache))
    assert data_dir() == cache.resolve()
    with pytest.warns(UserWarning):
        load_imdb(allow_unknown=True, verbose=False)  # no folder given: the variable decides
    assert files_in(cache) == ["imdb_v1.npz"]
    monkeypatch.delenv("RNNCOURSE_DATA_DIR")
    assert data_dir() == REPO_ROOT / "datasets" / "cache"


def test_archive_variable_pointing_nowhere_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(ARCHIVE_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(DatasetError, match="is not a file"):
        load_imdb(tmp_path / "cache", verbose=False)


def test_relative_archive_paths_are_relative_to_the_repository(tiny, monkeypatch):
    archive, cache = tiny
    monkeypatch.setenv(ARCHIVE_ENV, os.path.relpath(archive, REPO_ROOT))
    monkeypatch.chdir(archive.parent.parent)  # somewhere else entirely
    with pytest.warns(UserWarning):
        assert len(load_imdb(cache, allow_unknown=True, verbose=False).test) == 4


# ----------------------------------------------------------------------------- bad archives
def test_truncated_archive_is_refused_by_checksum_then_reported_as_truncated(tmp_path, monkeypatch):
    whole = make_archive(tmp_path / "whole.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv(ARCHIVE_ENV, str(cut))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="truncated or damaged copy"):
        load_imdb(cache, verbose=False)
    with pytest.warns(UserWarning), pytest.raises(CorruptArchiveError, match="truncated"):
        load_imdb(cache, allow_unknown=True, verbose=False)
    assert files_in(cache) == []


def test_a_file_that_is_not_a_tar_gz_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"PK\x03\x04 this is a zip, not a tar.gz" * 10)
    monkeypatch.setenv(ARCHIVE_ENV, str(bad))
    with pytest.warns(UserWarning), pytest.raises(CorruptArchiveError, match="not a .tar.gz"):
        load_imdb(tmp_path / "cache", allow_unknown=True, verbose=False)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(prefix="imdb_reviews"), "holds no reviews at aclImdb/"),
        (
            dict(reviews={k: v for k, v in TINY.items() if k != ("test", "neg")}),
            "test/neg/ holds 0",
        ),
        (
            dict(reviews={**TINY, ("train", "pos"): [(5, 3, "x", 1)]}),
            "rating 3, impossible for pos",
        ),
        (dict(reviews={**TINY, ("test", "unsup"): [(0, 0, "x", 7)]}), "does not have"),
    ],
    ids=["wrong top folder", "missing split", "rating contradicts label", "unknown folder"],
)
def test_wrong_layout_is_reported_with_what_was_found(tmp_path, monkeypatch, change, message):
    archive = make_archive(tmp_path / "odd.tar.gz", **change)
    monkeypatch.setenv(ARCHIVE_ENV, str(archive))
    with pytest.warns(UserWarning), pytest.raises(LayoutError, match=message):
        load_imdb(tmp_path / "cache", allow_unknown=True, verbose=False)
    assert files_in(tmp_path / "cache") == []


def test_full_disk_while_writing_the_cache_leaves_nothing_behind(tiny, monkeypatch):
    _, cache = tiny

    def runs_out_of_space(fileobj, arrays):
        fileobj.write(b"x" * 4096)  # some of it made it to disk ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(imdb_module, "_save_arrays", runs_out_of_space)
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="No space left") as err:
        load_imdb(cache, allow_unknown=True, verbose=False)
    assert "RNNCOURSE_DATA_DIR" in str(err.value)
    assert files_in(cache) == []  # neither the cache nor its temporary file


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def fails(f):
        f.write(b"new but incomplete")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fails)
    assert target.read_bytes() == b"old" and files_in(tmp_path) == ["f.bin"]


# ----------------------------------------------------------------------------- downloads
class _Server:
    """A local HTTP server; ``responses`` is a list of (status, body) served in order."""

    def __init__(self, responses):
        self.responses, self.requests = list(responses), 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                outer.requests += 1
                status, body = outer.responses[min(outer.requests, len(outer.responses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/aclImdb_v1.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    servers = []

    def serve(responses):
        servers.append(_Server(responses))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def _dataset(body: bytes, sha=None) -> Dataset:
    import hashlib

    digest = sha or hashlib.sha256(body).hexdigest()
    return Dataset("imdb", "unused", "aclImdb_v1.tar.gz", digest, len(body), ARCHIVE_ENV)


def test_download_shows_progress_verifies_and_happens_once(tmp_path, served, capsys):
    body = make_archive(tmp_path / "a.tar.gz").read_bytes()
    server = served([(200, body)])
    path = download(_dataset(body), tmp_path / "cache", url=server.url, retries=0)
    assert path.read_bytes() == body and path.parent == tmp_path / "cache" / "imdb"
    assert "100%" in capsys.readouterr().err  # the progress bar
    download(_dataset(body), tmp_path / "cache", url=server.url, retries=0)
    assert server.requests == 1  # already there and verified: not downloaded again


def test_download_retries_after_a_server_error(tmp_path, served):
    body = make_archive(tmp_path / "a.tar.gz").read_bytes()
    server = served([(503, b"busy"), (200, body)])
    path = download(_dataset(body), tmp_path / "cache", url=server.url, retries=1, progress=False)
    assert path.read_bytes() == body and server.requests == 2


def test_download_with_the_wrong_checksum_keeps_nothing(tmp_path, served):
    body = make_archive(tmp_path / "a.tar.gz").read_bytes()
    server = served([(200, body)])
    with pytest.raises(ChecksumError, match="does not have the expected sha256"):
        download(_dataset(body, sha="0" * 64), tmp_path / "cache", url=server.url, retries=0)
    assert files_in(tmp_path / "cache") == []


def test_unreachable_server_suggests_the_offline_archive(tmp_path):
    body = b"x"
    with pytest.raises(DatasetError, match=ARCHIVE_ENV):
        download(_dataset(body), tmp_path / "cache", url="http://127.0.0.1:9/x", retries=0)


# ----------------------------------------------------------------------------- the real data
@pytest.mark.skipif(
    not MIRROR.is_file() and not os.environ.get(ARCHIVE_ENV),
    reason=f"no IMDB archive here: neither the shared mirror {MIRROR} nor ${ARCHIVE_ENV}",
)
def test_real_archive_has_the_official_splits_and_balanced_labels(monkeypatch):
    start = time.perf_counter()
    data = load_imdb(progress=False)  # the repository's cache, shared with the notebooks
    assert data.info["source_sha256"] in IMDB_SOURCE.known_archives
    assert (len(data.train), len(data.test), len(data.unsup)) == (25_000, 25_000, 50_000)
    for split in (data.train, data.test):
        assert torch.bincount(split.labels).tolist() == [12_500, 12_500]
        positive = split.labels == 1
        assert split.ratings[positive].min() >= 7 and split.ratings[~positive].max() <= 4
        assert len(set(zip(split.labels.tolist(), split.ids.tolist(), strict=True))) == 25_000
        assert (split.movies > 0).all()
    assert (data.unsup.labels == -1).all() and (data.unsup.ratings == 0).all()
    assert all(data.train.texts) and "<br />" in "".join(data.train.texts[:200])
    shared_movies = set(data.train.movies.tolist()) & set(data.test.movies.tolist())
    assert len(shared_movies) <= 1  # the README promises disjoint movies; one title slipped
    assert time.perf_counter() - start < 60
