"""Where datasets are cached, checksums, and files written so that they are never half there."""

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

DATA_DIR_ENV = "RNNCOURSE_DATA_DIR"
# lessons/rnncourse/data/_files.py -> the repository root, when the package sits in the repo.
REPO_ROOT = Path(__file__).resolve().parents[3]


class DatasetError(RuntimeError):
    """Something is wrong with a dataset's files; the message says what and what to do."""


class ChecksumError(DatasetError):
    """An archive's sha256 is not the one expected (or not any known one)."""


class CorruptArchiveError(DatasetError):
    """An archive cannot be read to the end: truncated, damaged, or not a tar.gz at all."""


class LayoutError(DatasetError):
    """An archive reads fine but does not hold the files where the dataset keeps them."""


def in_repository() -> bool:
    """True when this package is the editable copy inside the course repository."""
    return (REPO_ROOT / "datasets").is_dir() and (REPO_ROOT / "lessons" / "rnncourse").is_dir()


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``override``, else $RNNCOURSE_DATA_DIR, else datasets/cache/.

    Outside the repository (an installed copy) the default is the user's cache folder,
    e.g. ``~/.cache/rnncourse`` on Linux.
    """
    chosen = override or os.environ.get(DATA_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if in_repository():
        return REPO_ROOT / "datasets" / "cache"
    import pooch

    return Path(pooch.os_cache("rnncourse"))


def resolve_user_path(value: str | os.PathLike) -> Path:
    """A path from an environment variable: relative ones are relative to the repository root.

    So ``../shared/datasets/imdb/aclImdb_v1.texts.tar.gz`` means the same file whatever
    folder a notebook or a test runs in.
    """
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(fileobj)`` to a temporary name, then rename it into place.

    Readers see the old file or the complete new one, never a partial one. If anything
    fails (a full disk included) the temporary file is removed and the error re-raised;
    ``ENOSPC`` becomes a ``DatasetError`` that says where the space ran out.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise DatasetError(
                f"No space left on the device while writing {path}. Nothing was left behind; "
                f"free some space or point ${DATA_DIR_ENV} at a disk with room, then retry."
            ) from err
        raise
    return path
