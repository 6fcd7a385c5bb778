"""IMDB data layer: time to build the parsed cache from the archive, and to reload it.

Builds into a fresh temporary cache folder (the repository's cache is left alone), then
reloads it ``--reloads`` times. Appends one JSON line per measurement to
bench/results/imdb_data.jsonl: metric, seconds, archive, cache size, torch version, CPU
count and the load average before and after (other processes share the machine).

    .venv/bin/python bench/bench_imdb_data.py [--reloads 3]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnncourse.data import load_imdb
from rnncourse.data.imdb import cache_path, find_archive

RESULTS = Path(__file__).resolve().parent / "results" / "imdb_data.jsonl"


def record(row: dict, out: Path) -> None:
    line = json.dumps(row)
    print(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(line + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    archive, origin = find_archive()
    common = {
        "bench": "imdb_data",
        "device": "cpu",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "archive": archive.name,
        "archive_origin": origin,
        "archive_bytes": archive.stat().st_size,
    }
    with tempfile.TemporaryDirectory(prefix="bench-imdb-") as tmp:
        load_before = os.getloadavg()
        start = time.perf_counter()
        data = load_imdb(tmp, progress=False, verbose=False)
        seconds = time.perf_counter() - start
        size = cache_path(tmp).stat().st_size
        counts = {"train": len(data.train), "test": len(data.test), "unsup": len(data.unsup)}
        del data
        record(
            common
            | {
                "metric": "first_build_seconds",
                "value": round(seconds, 3),
                "cache_bytes": size,
                "counts": counts,
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
            },
            args.out,
        )
        for i in range(args.reloads):
            load_before = os.getloadavg()
            start = time.perf_counter()
            data = load_imdb(tmp, verbose=False)
            seconds = time.perf_counter() - start
            assert len(data.train) == counts["train"]
            del data
            record(
                common
                | {
                    "metric": "reload_seconds",
                    "value": round(seconds, 3),
                    "repeat": i,
                    "cache_bytes": size,
                    "loadavg_before": load_before,
                    "loadavg_after": os.getloadavg(),
                },
                args.out,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
