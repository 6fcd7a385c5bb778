"""The Large Movie Review Dataset (IMDB, Maas et al. 2011): find, verify, parse once, reload fast.

Where the archive comes from, in order:

1. ``$RNNCOURSE_IMDB_ARCHIVE``: a local archive with the official layout (offline copies,
   mirrors). Relative paths are relative to the repository root.
2. The shared mirror next to the repository, ``../shared/datasets/imdb/aclImdb_v1.texts.tar.gz``
   (development machines and CI), when it exists.
3. The official download (https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz),
   with a progress bar and retries, stored in ``<cache>/imdb/``.

The archive's sha256 must be one of the known ones (``registry.IMDB.known_archives``); any
other is refused unless ``allow_unknown=True`` or ``$RNNCOURSE_ALLOW_UNKNOWN_ARCHIVE=1``, and
then accepted with a warning. The reviews are read straight from the compressed stream (no
100,000 small files on disk) and stored once in ``<cache>/imdb/imdb_v1.npz``: one UTF-8 blob
and an offset table per split, with ids, star ratings, labels and movie ids. Later loads
read that file only.
"""

import gzip
import json
import os
import re
import tarfile
import time
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnncourse.data._files import (
    REPO_ROOT,
    ChecksumError,
    CorruptArchiveError,
    DatasetError,
    LayoutError,
    atomic_write,
    data_dir,
    resolve_user_path,
    sha256_file,
)
from rnncourse.data.download import download
from rnncourse.data.registry import IMDB as IMDB_SOURCE
from rnncourse.data.registry import Dataset

MIRROR = REPO_ROOT.parent / "shared" / "datasets" / "imdb" / "aclImdb_v1.texts.tar.gz"
ALLOW_UNKNOWN_ENV = "RNNCOURSE_ALLOW_UNKNOWN_ARCHIVE"
CACHE_NAME = "imdb_v1.npz"
CACHE_FORMAT = 1
SPLITS = ("train", "test", "unsup")
LABELS = {"neg": 0, "pos": 1, "unsup": -1}
CLASS_NAMES = ("negative", "positive")
# (folder, sub-folder) -> split. The official archive keeps the unlabelled reviews in train/.
FOLDERS = {
    ("train", "neg"): "train",
    ("train", "pos"): "train",
    ("test", "neg"): "test",
    ("test", "pos"): "test",
    ("train", "unsup"): "unsup",
}
OFFICIAL_COUNTS = {folder: 12_500 for folder in FOLDERS} | {("train", "unsup"): 50_000}
RATINGS = {"neg": range(1, 5), "pos": range(7, 11), "unsup": range(0, 1)}
REVIEW = re.compile(r"^aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
URLS = re.compile(r"^aclImdb/(train|test)/urls_(pos|neg|unsup)\.txt$")
MOVIE = re.compile(r"/title/tt(\d+)/")
READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError)


@dataclass
class IMDBSplit:
    """One split: parallel columns, one entry per review.

    Attributes:
        texts: the raw reviews (with their ``<br />`` tags), a list of N str.
        labels: (N,) int64, 1 positive, 0 negative, -1 unlabelled.
        ratings: (N,) int64 star ratings 1-10 (0 when unknown, as in the unlabelled split).
        ids: (N,) int64 review ids, unique within a (split, label) folder.
        movies: (N,) int64 IMDb title number of the reviewed movie (tt0453418 -> 453418),
            -1 when unknown. The official train and test splits share no movie.
    """

    texts: list[str]
    labels: torch.Tensor
    ratings: torch.Tensor
    ids: torch.Tensor
    movies: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        """(text, label) of one review."""
        return self.texts[index], int(self.labels[index])

    def subset(self, indices) -> "IMDBSplit":
        """The reviews at ``indices`` (a sequence or tensor of positions), in that order."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return IMDBSplit(
            texts=[self.texts[i] for i in index.tolist()],
            labels=self.labels[index],
            ratings=self.ratings[index],
            ids=self.ids[index],
            movies=self.movies[index],
        )

    def __repr__(self) -> str:
        counts = Counter(self.labels.tolist())
        return (
            f"IMDBSplit({len(self)} reviews: {counts.get(1, 0)} positive, "
            f"{counts.get(0, 0)} negative, {counts.get(-1, 0)} unlabelled)"
        )


@dataclass
class IMDB:
    """The three splits and where they came from (``info``: source, checksum, counts)."""

    train: IMDBSplit
    test: IMDBSplit
    unsup: IMDBSplit
    info: dict

    def __repr__(self) -> str:
        return (
            f"IMDB(train={len(self.train)}, test={len(self.test)}, unsup={len(self.unsup)}, "
            f"source={self.info.get('source_name', '?')!r})"
        )


# ----------------------------------------------------------------------------- the archive
def find_archive(
    dataset: Dataset = IMDB_SOURCE, cache_dir=None, *, progress: bool = True
) -> tuple[Path, str]:
    """(path, where it came from) of the archive to read, downloading it as a last resort."""
    value = os.environ.get(dataset.archive_env)
    if value:
        path = resolve_user_path(value)
        if not path.is_file():
            raise DatasetError(
                f"${dataset.archive_env} is set to {value!r}, but {path} is not a file. "
                "Fix the path, or unset the variable to download the official archive."
            )
        return path, f"${dataset.archive_env}"
    if dataset is IMDB_SOURCE and MIRROR.is_file():
        return MIRROR, "the shared mirror"
    return download(dataset, cache_dir, progress=progress), f"download from {dataset.url}"


def verify_archive(
    path: Path, dataset: Dataset = IMDB_SOURCE, *, allow_unknown: bool | None = None
) -> str:
    """Return the archive's sha256 if it is a known one; refuse or warn otherwise."""
    digest = sha256_file(path)
    if digest in dataset.known_archives:
        return digest
    if allow_unknown is None:
        allow_unknown = os.environ.get(ALLOW_UNKNOWN_ENV, "").lower() in {"1", "true", "yes"}
    size = path.stat().st_size
    if not allow_unknown:
        known = "; ".join(f"{h} ({d})" for h, d in dataset.known_archives.items())
        raise ChecksumError(
            f"{path} ({size:,} bytes) has sha256 {digest}, which is not a known {dataset.name} "
            f"archive (known: {known}). A truncated or damaged copy looks like this: fetch it "
            f"again. If it is deliberately a different archive with the same layout, pass "
            f"allow_unknown=True or set ${ALLOW_UNKNOWN_ENV}=1."
        )
    warnings.warn(
        f"Using {path} ({size:,} bytes, sha256 {digest}), which is not a known {dataset.name} "
        "archive: results may not be comparable with the official split.",
        UserWarning,
        stacklevel=3,
    )
    return digest


def _movie_ids(data: bytes) -> list[int]:
    """Movie number per line of a urls_*.txt file (line i belongs to review id i)."""
    movies = []
    for line in data.decode("utf-8").splitlines():
        found = MOVIE.search(line)
        movies.append(int(found.group(1)) if found else -1)
    return movies


def parse_archive(
    path: Path, *, official_counts: bool = False, progress: bool = False
) -> dict[str, dict]:
    """Read every review from the tar.gz stream; return split -> columns (lists).

    Raises CorruptArchiveError if the archive cannot be read to its end and LayoutError if
    the reviews are not where the official layout keeps them.
    """
    from tqdm.auto import tqdm

    rows = {split: [] for split in SPLITS}  # (label, id, rating, text, folder)
    urls: dict[tuple[str, str], list[int]] = {}
    seen_names, folder_counts = [], Counter()
    total = sum(OFFICIAL_COUNTS.values()) if official_counts else None
    bar = tqdm(total=total, desc="reading reviews", unit="review", disable=not progress)
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                if len(seen_names) < 8:
                    seen_names.append(member.name)
                if not member.isfile():
                    continue
                review = REVIEW.match(member.name)
                url_file = URLS.match(member.name)
                if not (review or url_file):
                    continue
                data = tar.extractfile(member).read()
                if url_file:
                    urls[url_file.groups()] = _movie_ids(data)
                    continue
                folder, sub, review_id, rating = review.groups()
                split = FOLDERS.get((folder, sub))
                if split is None:
                    raise LayoutError(
                        f"{path}: {member.name} is in {folder}/{sub}/, which the official "
                        "layout does not have."
                    )
                rating = int(rating)
                if rating not in RATINGS[sub]:
                    raise LayoutError(
                        f"{path}: {member.name} has rating {rating}, impossible for {sub}/ "
                        f"(allowed {RATINGS[sub].start}-{RATINGS[sub].stop - 1})."
                    )
                rows[split].append((LABELS[sub], int(review_id), rating, data.decode("utf-8"), sub))
                folder_counts[(folder, sub)] += 1
                bar.update()
    except READ_ERRORS as err:
        raise CorruptArchiveError(
            f"{path} cannot be read to its end ({type(err).__name__}: {err}): the file is "
            "truncated or damaged, or not a .tar.gz. Delete it and fetch it again."
        ) from err
    finally:
        bar.close()
    _check_layout(path, folder_counts, seen_names, official_counts, rows)
    return {split: _columns(path, split, rows[split], urls) for split in SPLITS}


def _check_layout(path, folder_counts, seen_names, official_counts, rows) -> None:
    if not folder_counts:
        raise LayoutError(
            f"{path} holds no reviews at aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt "
            f"(the official layout). Its first entries are: {seen_names}."
        )
    for folder, expected in OFFICIAL_COUNTS.items():
        got = folder_counts.get(folder, 0)
        required = folder != ("train", "unsup")
        if (official_counts and got != expected) or (required and got == 0):
            raise LayoutError(
                f"{path}: aclImdb/{'/'.join(folder)}/ holds {got:,} reviews; expected "
                f"{expected:,} in the official archive{'' if official_counts else ' (at least 1)'}."
            )
    for split, items in rows.items():
        keys = Counter((label, review_id) for label, review_id, *_ in items)
        duplicated = [k for k, n in keys.items() if n > 1]
        if duplicated:
            raise LayoutError(f"{path}: {split} has the review id {duplicated[0][1]} twice.")


def _columns(path, split, items, urls) -> dict:
    items.sort(key=lambda row: (row[0], row[1]))  # negatives first, then by id
    folder = "test" if split == "test" else "train"
    movies = []
    for _, review_id, _, _, sub in items:
        table = urls.get((folder, sub), [])
        movies.append(table[review_id] if review_id < len(table) else -1)
    return {
        "labels": [row[0] for row in items],
        "ids": [row[1] for row in items],
        "ratings": [row[2] for row in items],
        "texts": [row[3] for row in items],
        "movies": movies,
    }


# ----------------------------------------------------------------------------- the cache
def _to_arrays(columns: dict[str, dict], info: dict) -> dict[str, np.ndarray]:
    arrays = {"info": np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)}
    for split, col in columns.items():
        encoded = [text.encode("utf-8") for text in col["texts"]]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        arrays[f"{split}_text"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays[f"{split}_offsets"] = offsets
        arrays[f"{split}_labels"] = np.asarray(col["labels"], dtype=np.int8)
        arrays[f"{split}_ids"] = np.asarray(col["ids"], dtype=np.int32)
        arrays[f"{split}_ratings"] = np.asarray(col["ratings"], dtype=np.int8)
        arrays[f"{split}_movies"] = np.asarray(col["movies"], dtype=np.int32)
    return arrays


def _save_arrays(fileobj, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache's arrays (an uncompressed .npz: a zip of .npy files, no pickle)."""
    np.savez(fileobj, **arrays)


def _split_from(arrays, split: str) -> IMDBSplit:
    blob = arrays[f"{split}_text"].tobytes()
    offsets = arrays[f"{split}_offsets"].tolist()
    texts = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def column(name):
        return torch.from_numpy(arrays[f"{split}_{name}"].astype(np.int64))

    return IMDBSplit(
        texts=texts,
        labels=column("labels"),
        ratings=column("ratings"),
        ids=column("ids"),
        movies=column("movies"),
    )


def read_cache(path: Path) -> IMDB:
    """Load a cache written by ``load_imdb``; DatasetError if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        info = json.loads(arrays["info"].tobytes().decode())
        if info.get("format") != CACHE_FORMAT:
            raise DatasetError(f"{path} has cache format {info.get('format')}, not {CACHE_FORMAT}")
        splits = {split: _split_from(arrays, split) for split in SPLITS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetError(f"{path} is not a readable IMDB cache ({err}).") from err
    return IMDB(**splits, info=info)


def build_cache(
    archive: Path,
    target: Path,
    *,
    source_name: str = "",
    dataset: Dataset = IMDB_SOURCE,
    allow_unknown: bool | None = None,
    progress: bool = True,
) -> dict:
    """Verify ``archive``, parse it and write the cache to ``target`` (atomically)."""
    digest = verify_archive(archive, dataset, allow_unknown=allow_unknown)
    official = digest in dataset.known_archives
    columns = parse_archive(archive, official_counts=official, progress=progress)
    info = {
        "format": CACHE_FORMAT,
        "source": str(archive),
        "source_name": source_name or str(archive),
        "source_sha256": digest,
        "known_archive": dataset.known_archives.get(digest, "unknown (accepted by opt-in)"),
        "counts": {split: len(col["texts"]) for split, col in columns.items()},
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    arrays = _to_arrays(columns, info)
    atomic_write(target, lambda f: _save_arrays(f, arrays))
    return info


def cache_path(cache_dir=None) -> Path:
    """Where the parsed IMDB cache lives: ``<cache>/imdb/imdb_v1.npz``."""
    return data_dir(cache_dir) / "imdb" / CACHE_NAME


def load_imdb(
    cache_dir=None,
    *,
    rebuild: bool = False,
    allow_unknown: bool | None = None,
    progress: bool | None = None,
    verbose: bool = True,
) -> IMDB:
    """The IMDB reviews: 25,000 train, 25,000 test, 50,000 unlabelled.

    The first call finds the archive (see the module's docstring), verifies its checksum and
    parses it into ``<cache>/imdb/imdb_v1.npz``; later calls read that file only (about a
    second). ``rebuild=True`` parses the archive again. ``progress`` (default: on, except
    under nbgrader) shows progress bars.
    """
    from rnncourse.device import under_nbgrader

    progress = (not under_nbgrader()) if progress is None else progress
    target = cache_path(cache_dir)
    start = time.perf_counter()
    built = False
    if rebuild or not target.is_file():
        archive, source_name = find_archive(IMDB_SOURCE, cache_dir, progress=progress)
        build_cache(
            archive,
            target,
            source_name=source_name,
            allow_unknown=allow_unknown,
            progress=progress,
        )
        built = True
    try:
        data = read_cache(target)
    except DatasetError:
        if built:
            raise
        if verbose:
            print(f"{target} is unreadable or outdated: building it again.")
        return load_imdb(
            cache_dir, rebuild=True, allow_unknown=allow_unknown, progress=progress, verbose=verbose
        )
    if verbose:
        verb = "parsed from " + data.info["source_name"] if built else "loaded from cache"
        print(
            f"IMDB: {len(data.train):,} train, {len(data.test):,} test, {len(data.unsup):,} "
            f"unlabelled reviews ({verb} in {time.perf_counter() - start:.1f} s; {target})."
        )
    return data


# ----------------------------------------------------------------------------- splitting
def train_valid_split(
    split: IMDBSplit, valid_fraction: float = 0.1, *, seed: int = 0, by_movie: bool = True
) -> tuple[IMDBSplit, IMDBSplit]:
    """Carve a validation set out of a split; return (train, valid).

    With ``by_movie`` (the default) whole movies go to one side, as in the official
    train/test split, so that the validation accuracy does not reward remembering a movie's
    name. Reviews with an unknown movie are assigned one by one.
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1); got {valid_fraction}")
    g = torch.Generator().manual_seed(seed)
    n = len(split)
    num_valid = round(n * valid_fraction)
    if by_movie:
        groups = split.movies.clone()
        unknown = groups < 0
        groups[unknown] = -1 - torch.arange(int(unknown.sum()))  # each its own group
        _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        order = torch.randperm(len(counts), generator=g)  # movies in random order
        covered = counts[order].cumsum(0)
        valid_groups = order[: int((covered < num_valid).sum()) + 1]  # whole movies
        is_valid = torch.isin(inverse, valid_groups)
    else:
        is_valid = torch.zeros(n, dtype=torch.bool)
        is_valid[torch.randperm(n, generator=g)[:num_valid]] = True
    train_idx, valid_idx = (~is_valid).nonzero()[:, 0], is_valid.nonzero()[:, 0]
    return split.subset(train_idx), split.subset(valid_idx)
