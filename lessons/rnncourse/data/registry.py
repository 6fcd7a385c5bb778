"""The datasets the course uses: where each comes from and the checksums of its known archives.

A download is verified against ``sha256``; a local archive (a mirror, an offline copy) is
accepted when its checksum is any of ``known_archives``.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dataset:
    """One downloadable dataset.

    Attributes:
        name: short id, also the name of its cache sub-folder.
        url: the official download address.
        filename: the name the download is stored under in the cache.
        sha256: checksum of the official file (a download must match it).
        size: the official file's size in bytes (shown in messages).
        archive_env: environment variable naming a local archive that replaces the download.
        known_archives: sha256 -> description, for every archive accepted without opt-in.
        citation: how to cite it.
    """

    name: str
    url: str
    filename: str
    sha256: str
    size: int
    archive_env: str
    known_archives: dict[str, str] = field(default_factory=dict)
    citation: str = ""


IMDB = Dataset(
    name="imdb",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    filename="aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    size=84_125_825,
    archive_env="RNNCOURSE_IMDB_ARCHIVE",
    known_archives={
        "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe": (
            "the official aclImdb_v1.tar.gz (84,125,825 bytes)"
        ),
        "a343918647f9c6c5b4b09ae2de13bafa91ad6016d65c206ba7ae67d1792049b0": (
            "aclImdb_v1.texts.tar.gz, the official archive without its *.feat files"
        ),
    },
    citation=(
        "Andrew L. Maas, Raymond E. Daly, Peter T. Pham, Dan Huang, Andrew Y. Ng, and "
        "Christopher Potts. 2011. Learning Word Vectors for Sentiment Analysis. ACL 2011."
    ),
)

DATASETS: dict[str, Dataset] = {IMDB.name: IMDB}
