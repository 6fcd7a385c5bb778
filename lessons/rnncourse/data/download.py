"""Downloading a dataset's archive once: progress bar, retries, sha256 verified (with pooch).

pooch streams the file to a temporary name in the cache folder, checks its sha256 and only
then renames it, so an interrupted or corrupted download never looks finished; a failed
attempt (network error or checksum mismatch) is retried with a growing pause.
"""

import os
from pathlib import Path

from rnncourse.data._files import ChecksumError, DatasetError, data_dir
from rnncourse.data.registry import Dataset

RETRIES = 3


def download(
    dataset: Dataset,
    cache_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    progress: bool = True,
    retries: int = RETRIES,
) -> Path:
    """The dataset's archive in ``<cache>/<name>/``, downloaded first if it is not there yet.

    Returns the path of the verified file. ``url`` replaces the official address (a mirror).
    Raises ChecksumError when every attempt delivered a file with the wrong sha256 and
    DatasetError when the server cannot be reached.
    """
    import pooch
    import requests

    folder = data_dir(cache_dir) / dataset.name
    source = url or dataset.url
    fetcher = pooch.create(
        path=folder,
        base_url="",
        registry={dataset.filename: f"sha256:{dataset.sha256}"},
        urls={dataset.filename: source},
        retry_if_failed=retries,
    )
    try:
        return Path(fetcher.fetch(dataset.filename, progressbar=progress))
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        raise ChecksumError(
            f"The file downloaded from {source} does not have the expected sha256 "
            f"({dataset.sha256}) after {retries + 1} attempts: the server sent something else "
            "or the transfer was damaged. Nothing was kept. "
            f"Details: {err}"
        ) from err
    except requests.exceptions.RequestException as err:
        raise DatasetError(
            f"Could not download {dataset.name} from {source} ({type(err).__name__}: {err}). "
            f"Offline? Put a copy of {dataset.filename} somewhere and set "
            f"${dataset.archive_env} to its path."
        ) from err
