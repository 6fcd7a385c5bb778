"""Datasets for the lessons: one registry (URL + sha256), a download-once cache, fast reloads.

``load_imdb()`` returns the IMDB reviews (lesson 05); ``load_char_corpus()`` the unlabelled
ones as a stream of character ids (lesson 06). Environment variables:

- ``RNNCOURSE_DATA_DIR``: the cache folder (default ``datasets/cache/`` in the repository).
- ``RNNCOURSE_IMDB_ARCHIVE``: a local copy of the IMDB archive that replaces the download.
- ``RNNCOURSE_ALLOW_UNKNOWN_ARCHIVE=1``: accept an archive whose checksum is not a known one.

See datasets/README.md for sources, sizes, checksums and licences.
"""

from rnncourse.data._files import (
    ChecksumError,
    CorruptArchiveError,
    DatasetError,
    LayoutError,
    data_dir,
    sha256_file,
)
from rnncourse.data.chars import CharCorpus, CharVocab, load_char_corpus
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint
from rnncourse.data.download import download
from rnncourse.data.imdb import CLASS_NAMES, IMDB, IMDBSplit, load_imdb, train_valid_split
from rnncourse.data.registry import DATASETS, Dataset
from rnncourse.data.series import Scaler, Series, Split, load_co2, load_electricity

__all__ = [
    "Scaler",
    "Series",
    "Split",
    "load_co2",
    "load_electricity",
    "CLASS_NAMES",
    "CharCorpus",
    "CharVocab",
    "DATASETS",
    "CheckpointError",
    "ChecksumError",
    "CorruptArchiveError",
    "Dataset",
    "DatasetError",
    "IMDB",
    "IMDBSplit",
    "LayoutError",
    "data_dir",
    "download",
    "load_char_corpus",
    "load_imdb",
    "read_checkpoint",
    "sha256_file",
    "train_valid_split",
]
