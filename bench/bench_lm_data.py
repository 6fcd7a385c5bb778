"""Lesson 06's character corpus: time to encode the 50,000 unlabelled reviews, and to reload.

Reads the IMDB reviews from the repository's parsed cache (``load_imdb``), then, in a fresh
temporary folder, times ``build_char_cache`` (clean, split, build the vocabulary, encode
65 million characters with one numpy lookup, write) and ``--reloads`` loads of the result.
Also times the same encoding done character by character in Python (``--python-chars``
characters of it, scaled), to show what vectorising buys. Appends one JSON line per
measurement to bench/results/lm_data.jsonl with the load average before and after.

    .venv/bin/python bench/bench_lm_data.py [--reloads 3]
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_imdb_data import record

from rnncourse.data import load_imdb
from rnncourse.data.chars import build_char_cache, char_cache_path, load_char_corpus

RESULTS = Path(__file__).resolve().parent / "results" / "lm_data.jsonl"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--python-chars", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    common = {
        "bench": "lm_data",
        "device": "cpu",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    texts = load_imdb(verbose=False, progress=False).unsup.texts
    with tempfile.TemporaryDirectory(prefix="bench-chars-") as tmp:
        target = char_cache_path(tmp)
        load_before = os.getloadavg()
        start = time.perf_counter()
        info = build_char_cache(texts, target)
        seconds = time.perf_counter() - start
        corpus = load_char_corpus(tmp, verbose=False)
        chars = len(corpus.train) + len(corpus.valid)
        record(
            common
            | {
                "metric": "encode_and_cache_seconds",
                "value": round(seconds, 3),
                "chars": chars,
                "chars_per_second": round(chars / seconds),
                "cache_bytes": target.stat().st_size,
                "vocab_size": len(corpus.vocab),
                "info": info,
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
            },
            args.out,
        )
        text = corpus.vocab.decode(corpus.train[: args.python_chars])
        stoi = corpus.vocab.stoi
        load_before = os.getloadavg()
        start = time.perf_counter()
        ids = torch.tensor([stoi.get(c, 0) for c in text])
        python_seconds = time.perf_counter() - start
        start = time.perf_counter()
        vectorised = corpus.vocab.encode(text)
        numpy_seconds = time.perf_counter() - start
        assert torch.equal(ids, vectorised)
        record(
            common
            | {
                "metric": "encode_chars_per_second",
                "value": round(len(text) / numpy_seconds),
                "python_loop_chars_per_second": round(len(text) / python_seconds),
                "speedup": round(python_seconds / numpy_seconds, 1),
                "chars": len(text),
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
            },
            args.out,
        )
        for i in range(args.reloads):
            load_before = os.getloadavg()
            start = time.perf_counter()
            load_char_corpus(tmp, verbose=False)
            record(
                common
                | {
                    "metric": "reload_seconds",
                    "value": round(time.perf_counter() - start, 3),
                    "repeat": i,
                    "loadavg_before": load_before,
                    "loadavg_after": os.getloadavg(),
                },
                args.out,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
