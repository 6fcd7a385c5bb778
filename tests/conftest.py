import os

import matplotlib

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")

# Notebook kernels run two at a time under pytest-xdist on two cores. With PyTorch's default
# of one OpenMP thread per core, the kernels' spinning threads oversubscribe the machine and
# small-tensor loops slow down by an order of magnitude. One thread each is faster here.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# The longest test files (minutes each, measured on the 2-core CI machine), started first.
# Under `--dist loadfile --no-loadscope-reorder` (the Makefile) the xdist workers take whole
# files in collection order, so a long file collected late would run alone at the end while
# the other core idles. (xdist's default reorder puts files with the most tests first, and
# these files hold one test each: they ran last.)
SLOWEST_FILES = (
    "test_grading_imdb.py",
    "test_grading_finetune.py",
    "test_tamper.py",
    "test_hosted.py",  # a fresh virtual environment that installs the course from its bundle
)


def pytest_collection_modifyitems(items):
    """Notebook tests before the rest, the slowest files first (a stable sort: each file's
    tests keep their order, and every worker computes the same order)."""

    def rank(item) -> tuple[int, int]:
        name = item.path.name
        slow = SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)
        return (item.get_closest_marker("notebook") is None, slow)

    items.sort(key=rank)
