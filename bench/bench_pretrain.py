"""Lesson 07: does pre-training help? The fine-tuned classifier against the same model from
scratch, with the same labels and budget, on a fixed slice of the test set.

Runs the lesson's own code (the reference solution's functions and CONFIGS, loaded from
solutions/07_pretrain_finetune/07_pretrain_finetune.py): the corpus guard and builder, the
word vocabulary, ``lm_batches`` and lesson 06's ``fit_lm`` for ``lm_seconds`` (or
``lm_updates``) of pre-training, then for every number of labels and seed one fine-tuned
run (the lesson's ``classifier``: its seed, ``transfer_encoder``; the full recipe) and one
control run (``recipe=False``), each scored on the configuration's test slice. One language
model serves every seed (its own seed is fixed: --lm-seed). Appends one JSON line per run
of this script to bench/results/pretrain.jsonl with the configuration, device, torch
version, the LM's curve, every accuracy, the end-to-end seconds of one seed (tokenizing +
pre-training + one fine-tuned and one control run) and the load average before and after
(other processes may share the machine).

Examples:
    # two CPU cores, the lesson's cpu configuration, three seeds at 2,500 and 500 labels
    .venv/bin/python bench/bench_pretrain.py --config cpu --labels 2500 500 --seeds 3
    # one H100: the reference configuration on the full test set
    .venv/bin/python bench/bench_pretrain.py --config gpu --device cuda --labels 22500 2500
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_imdb_train import append_result, lesson_definitions

from rnncourse.classify import evaluate
from rnncourse.data import load_imdb, train_valid_split
from rnncourse.lm import RecurrentLM, fit_lm, stream_windows
from rnncourse.text import EOS, PAD, UNK, Batches, build_vocab, encode, encode_reviews, tokenize

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pretrain.jsonl"
LESSON = "07_pretrain_finetune"


def pretrain(lesson, imdb, config, device, seed):
    """(vocab, language model, facts) after the configuration's pre-training budget."""
    start = time.perf_counter()
    train_texts, valid_texts = lesson["lm_corpus"](imdb)
    train_tokens = [tokenize(t) for t in train_texts[: config["lm_reviews"]]]
    vocab = build_vocab(train_tokens, 3, config["max_vocab"], specials=(PAD, UNK, EOS))
    lm_batches, eos = lesson["lm_batches"], vocab[EOS]
    rows = lm_batches([encode(t, vocab) for t in train_tokens], eos, config["lm_batch_size"])
    valid = lm_batches([encode(tokenize(t), vocab) for t in valid_texts], eos, 32)
    tokenized = time.perf_counter() - start
    torch.manual_seed(seed)
    lm_config = dict(vocab_size=len(vocab), embed_size=config["embed_size"],
                     num_hiddens=config["embed_size"], num_layers=config["num_layers"],
                     cell="lstm", dropout=config["lm_dropout"], tie_weights=True,
                     cutoffs=config["cutoffs"])  # fmt: skip
    lm = RecurrentLM(**lm_config).to(device)
    curve = fit_lm(
        lm, rows, stream_windows(valid[:, :2001], 100), lr=config["lm_lr"],
        num_steps=config["num_steps"], max_norm=1.0, seconds=config["lm_seconds"],
        max_updates=config["lm_updates"],
    )  # fmt: skip
    seconds, updates, nll = curve[-1]
    facts = {
        "vocab_size": len(vocab),
        "lm_train_tokens": rows.numel(),
        "lm_tokens_per_s": round(updates * config["lm_batch_size"] * config["num_steps"] / seconds),
        "lm_valid_perplexity": round(math.exp(nll), 2),
        "lm_curve": [(round(s, 1), u, round(math.exp(n), 2)) for s, u, n in curve],
        "tokenize_seconds": round(tokenized, 1),
        "pretrain_seconds": round(time.perf_counter() - start - tokenized, 1),
    }
    return vocab, lm, facts


def classify(lesson, imdb, config, vocab, lm, device, labels, seeds):
    """Test accuracy of the fine-tuned and the control classifier for every (labels, seed)."""
    train, valid = train_valid_split(imdb.train, valid_fraction=0.1, seed=0)
    test = imdb.test
    if config["test_reviews"]:
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
        test = test.subset(order[: config["test_reviews"]])
    max_len = config["max_len"]
    train_ids = encode_reviews(train.texts, vocab, max_len, start=EOS)

    def sorted_batches(split):
        ids = encode_reviews(split.texts, vocab, max_len, start=EOS)
        return Batches(ids, split.labels, 256, shuffle=False)

    valid_batches, test_batches = sorted_batches(valid), sorted_batches(test)
    clf_config = dict(vocab_size=len(vocab), embed_size=config["embed_size"],
                      num_hiddens=config["embed_size"], num_layers=config["num_layers"],
                      cell="lstm", dropout=config["dropout"], bidirectional=False)  # fmt: skip
    # The lesson's classifier() (its seed, not the LM's; transfer_encoder) reads these globals.
    lesson["CLF_CONFIG"], lesson["DEVICE"] = clf_config, device
    runs = []
    for num_labels in labels:
        for seed in range(seeds):
            generator = torch.Generator().manual_seed(seed)
            index = torch.randperm(len(train_ids), generator=generator)[:num_labels]
            ids, y = [train_ids[i] for i in index], train.labels[index]
            for pretrained in (True, False):
                start = time.perf_counter()
                model = lesson["classifier"](lm.cpu() if pretrained else None, seed)
                recipe = lesson["RECIPE"] if pretrained else False
                curve = lesson["fit_classifier"](
                    model, ids, y, valid_batches, config, seed=seed, recipe=recipe
                )
                runs.append({
                    "labels": num_labels, "seed": seed, "pretrained": pretrained,
                    "valid_accuracy": round(curve[-1][1], 4),
                    "test_accuracy": round(evaluate(model, test_batches), 4),
                    "seconds": round(time.perf_counter() - start, 1),
                })  # fmt: skip
                print(json.dumps(runs[-1]), flush=True)
    return runs, len(test)


def summary(runs: list[dict]) -> dict:
    """Per number of labels: mean, min and max test accuracy of both, and the mean gap."""
    out = {}
    for n in sorted({r["labels"] for r in runs}):
        acc = {p: [r["test_accuracy"] for r in runs if r["labels"] == n and r["pretrained"] is p]
               for p in (True, False)}  # fmt: skip
        gaps = [a - b for a, b in zip(acc[True], acc[False], strict=True)]
        out[str(n)] = {
            "pretrained_mean": round(statistics.mean(acc[True]), 4),
            "pretrained_range": [min(acc[True]), max(acc[True])],
            "scratch_mean": round(statistics.mean(acc[False]), 4),
            "scratch_range": [min(acc[False]), max(acc[False])],
            "gap_mean_points": round(100 * statistics.mean(gaps), 2),
            "gap_range_points": [round(100 * min(gaps), 2), round(100 * max(gaps), 2)],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu", help="a key of the lesson's CONFIGS")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--labels", type=int, nargs="+", default=[2500])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lm-seed", type=int, default=0)
    parser.add_argument("--override", default="{}", help="JSON changes to the configuration")
    args = parser.parse_args()
    lesson = lesson_definitions(LESSON)
    config = lesson["CONFIGS"][args.config] | json.loads(args.override)
    device = torch.device(args.device)
    load_before = os.getloadavg()
    start = time.perf_counter()
    imdb = load_imdb(verbose=False, progress=False)
    vocab, lm, facts = pretrain(lesson, imdb, config, device, args.lm_seed)
    print(json.dumps({k: v for k, v in facts.items() if k != "lm_curve"}), flush=True)
    runs, test_size = classify(lesson, imdb, config, vocab, lm, device, args.labels, args.seeds)
    one_seed = (
        facts["tokenize_seconds"]
        + facts["pretrain_seconds"]
        + sum(r["seconds"] for r in runs if r["seed"] == 0 and r["labels"] == args.labels[0])
    )
    result = {
        "metric": "test accuracy, pre-trained + fine-tuned vs from scratch",
        "config_name": args.config, "config": config, "labels": args.labels,
        "seeds": args.seeds, "lm_seed": args.lm_seed, "test_reviews": test_size,
        **facts, "runs": runs, "summary": summary(runs),
        "end_to_end_one_seed_seconds": round(one_seed, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }  # fmt: skip
    append_result(result, device, RESULTS)
    print(json.dumps(result["summary"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
