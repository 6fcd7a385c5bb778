"""Lesson 05's checks: the reference passes every one, each typical bug fails with its hint,
and the grading of a submitted checkpoint fails an untrained, missing, malformed or pickled
one with a clear message. (That it passes a trained one is shown by tests/test_lessons.py:
the reference notebook trains a small model under nbgrader and its hidden test grades it.)"""

import ast
import contextlib
import os
import re
from pathlib import Path
from types import SimpleNamespace

import jupytext
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    CheckFailed,
    check_bucket_batches,
    check_build_vocab,
    check_checkpoint_file,
    check_collate,
    check_encode,
    check_evaluate,
    check_masked_max,
    check_masked_mean,
    check_predict,
    check_save_checkpoint,
    check_sentiment_rnn,
    check_sentiment_rnn_ignores_padding,
    check_tokenize,
    check_train_one_epoch,
    check_vocab_from_training_data,
)
from rnncourse.checks import imdb as lesson_checks
from rnncourse.data.imdb import MIRROR
from rnncourse_grader import integrity, integrity_imdb, integrity_imdb_model
from rnncourse_grader.hidden import imdb as graded
from tests.course import ROOT
from tests.integrity_support import passes_probe, rejection

LESSON = "05_imdb_sentiment"


def definitions(lesson_id: str = LESSON) -> dict:
    """The solution's setup cell, answer cells and cells that only define things, executed.

    Leaves out the cells that load data or train, so that tests get the reference functions
    in a second.
    """
    nb = jupytext.read(ROOT / "solutions" / lesson_id / f"{lesson_id}.py", fmt="py:percent")
    namespace: dict = {"__name__": f"reference_{lesson_id}"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        body = ast.parse(cell.source).body
        only_definitions = body and all(
            isinstance(node, ast.FunctionDef | ast.ClassDef)
            or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict))
            for node in body
        )
        if meta.get("grade_id") == "setup" or meta.get("solution") or only_definitions:
            with contextlib.redirect_stdout(None):
                exec(
                    compile(cell.source, f"<{lesson_id}:{meta.get('grade_id', 'cell')}>", "exec"),
                    namespace,
                )
    return namespace


@pytest.fixture(scope="module")
def ref():
    return definitions()


def fails(check, *args, match=None, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- the reference
def test_reference_passes_every_visible_and_hidden_check(ref):
    check_tokenize(ref["tokenize"])
    check_build_vocab(ref["build_vocab"])
    check_encode(ref["encode"])
    check_collate(ref["collate"])
    check_bucket_batches(ref["bucket_batches"])
    check_masked_mean(ref["masked_mean"])
    check_masked_max(ref["masked_max"])
    check_sentiment_rnn(ref["SentimentRNN"])
    check_sentiment_rnn_ignores_padding(ref["SentimentRNN"])
    check_train_one_epoch(ref["train_one_epoch"])
    check_evaluate(ref["evaluate"])
    check_predict(ref["predict"])
    check_save_checkpoint(ref["save_checkpoint"], ref["SentimentRNN"])
    for probe in integrity.lesson_spec(LESSON).probes:
        passes_probe(LESSON, probe.function, ref[probe.function], **helpers_of(ref))


def helpers_of(ref) -> dict:
    """What the lesson's answers call besides themselves (predict: tokenize, encode, clip)."""
    return {name: ref[name] for name in ("tokenize", "encode", "clip", "collate")}


def test_the_grader_reference_agrees_with_the_lesson(ref):
    """The grader rebuilds checkpoints with its own code: it must compute what the lesson does."""
    for text, *_ in lesson_checks.TOKENIZE_CASES:
        assert integrity_imdb.reference_tokenize(text) == ref["tokenize"](text)
    config = dict(vocab_size=40, embed_size=5, num_hiddens=4, num_layers=2, cell="lstm",
                  dropout=0.2, packed=True)  # fmt: skip
    torch.manual_seed(0)
    theirs = ref["SentimentRNN"](**config).eval()
    ours = integrity_imdb_model.ReferenceSentimentRNN(**config).eval()
    ours.load_state_dict(theirs.state_dict())
    X = torch.randint(2, 40, (3, 9))
    lengths = torch.tensor([9, 4, 1])
    assert torch.allclose(ours(X, lengths), theirs(X, lengths))


@pytest.mark.parametrize(
    "check",
    [check_tokenize, check_build_vocab, check_encode, check_collate, check_bucket_batches,
     check_masked_mean, check_masked_max, check_evaluate, check_predict],
)  # fmt: skip
def test_stub_fails_with_a_clear_message(check):
    fails(check, not_implemented, match="not implemented yet")


# ----------------------------------------------------------------------------- text
def _tokenizer(pattern, *, lower=True, br=True):
    def tokenize(text):
        text = text.lower() if lower else text
        text = text.replace("<br />", " ") if br else text
        return re.findall(pattern, text)

    return tokenize


TOKENIZE_BUGS = {
    "split on spaces": (lambda t: t.lower().replace("<br />", " ").split(), "split punctuation"),
    "no lowercase": (_tokenizer(r"\w+(?:'\w+)*|[^\w\s]", lower=False), "lowercase"),
    "br kept": (_tokenizer(r"\w+(?:'\w+)*|[^\w\s]", br=False), "<br />"),
    "br deleted, gluing the words": (
        lambda t: re.findall(r"\w+(?:'\w+)*|[^\w\s]", t.lower().replace("<br />", "")),
        "not nothing",
    ),
    "br replaced before lowercasing": (
        lambda t: re.findall(r"\w+(?:'\w+)*|[^\w\s]", t.replace("<br />", " ").lower()),
        "lowercase first",
    ),
    "apostrophe splits words": (_tokenizer(r"\w+|[^\w\s]"), "apostrophe between word"),
    "punctuation runs glued": (_tokenizer(r"\w+(?:'\w+)*|[^\w\s]+"), "token of its own"),
    "ascii letters only": (_tokenizer(r"[a-z0-9_]+(?:'[a-z0-9_]+)*|[^\w\s]"), "Unicode"),
    "apostrophes anywhere": (_tokenizer(r"[\w']+|[^\w\s]"), "start or end of a word"),
    "returns a tuple": (lambda t: tuple(t.split()), "list of str"),
}


@pytest.mark.parametrize("bug", TOKENIZE_BUGS)
def test_tokenize_check_catches(bug):
    fn, hint = TOKENIZE_BUGS[bug]
    fails(check_tokenize, fn, match=re.escape(hint))


@pytest.mark.parametrize("bug", TOKENIZE_BUGS)
def test_the_graders_tokenize_cases_fail_every_bug(bug):
    rejection(LESSON, "tokenize", TOKENIZE_BUGS[bug][0], "tokenize")


def _vocab_bug(order=None, min_ok=lambda n, m: n >= m, size=lambda m: m - 2, specials=(0, 1)):
    from collections import Counter

    def build_vocab(token_lists, min_freq=1, max_size=None):
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = sorted((t for t, n in counts.items() if min_ok(n, min_freq)),
                      key=order or (lambda t: (-counts[t], t)))  # fmt: skip
        if max_size is not None:
            kept = kept[: size(max_size)]
        return {"<pad>": specials[0], "<unk>": specials[1]} | {t: i + 2 for i, t in enumerate(kept)}

    return build_vocab


VOCAB_BUGS = {
    "ties not alphabetical": (_vocab_bug(order=lambda t: 0), "alphabetical"),
    "min_freq strict": (_vocab_bug(min_ok=lambda n, m: n > m), "min_freq"),
    "max_size without specials": (_vocab_bug(size=lambda m: m), "<pad> and <unk> included"),
    "specials swapped": (_vocab_bug(specials=(1, 0)), "<pad> must have id 0"),
    "returns a list": (lambda lists, min_freq=1, max_size=None: ["<pad>", "<unk>"], "dict"),
}


@pytest.mark.parametrize("bug", VOCAB_BUGS)
def test_build_vocab_check_catches(bug):
    fn, hint = VOCAB_BUGS[bug]
    fails(check_build_vocab, fn, match=re.escape(hint))


def test_vocab_built_on_test_data_is_caught(ref):
    build = ref["build_vocab"]
    train = [["good", "film"], ["bad", "film"], ["good"]]
    test = [["awful", "plot"], ["good", "plot"]]
    check_vocab_from_training_data(build(train), build, train, test, min_freq=1, max_size=None)
    fails(
        check_vocab_from_training_data,
        build(train + test),
        build,
        train,
        test,
        min_freq=1,
        max_size=None,
        match="2 of them occur in the test reviews",
    )
    fails(  # right data, wrong settings
        check_vocab_from_training_data,
        build(train, min_freq=2),
        build,
        train,
        test,
        min_freq=1,
        max_size=None,
        match="configured min_freq",
    )


ENCODE_BUGS = {
    "unknown as pad": (
        lambda tokens, vocab: torch.tensor([vocab.get(t, 0) for t in tokens], dtype=torch.long),
        "<unk>",
    ),
    "float ids": (
        lambda tokens, vocab: torch.tensor([vocab.get(t, 1) for t in tokens]).float(),
        "int64",
    ),
    "a list": (lambda tokens, vocab: [vocab.get(t, 1) for t in tokens], "torch.Tensor"),
}


@pytest.mark.parametrize("bug", ENCODE_BUGS)
def test_encode_check_catches(bug):
    fn, hint = ENCODE_BUGS[bug]
    fails(check_encode, fn, match=re.escape(hint))


# ----------------------------------------------------------------------------- batches
def _collate_bug(ref, transform):
    def collate(batch):
        return transform(*ref["collate"](batch))

    return collate


def test_collate_check_catches(ref):
    fails(check_collate, _collate_bug(ref, lambda X, L, y: (X, L, 1 - y)), match="flipped")
    fails(check_collate, _collate_bug(ref, lambda X, L, y: (X.T, L, y)), match="batch first")
    fails(
        check_collate,
        _collate_bug(ref, lambda X, L, y: (X.masked_fill(X == 0, -1), L, y)),
        match="PAD_ID = 0",
    )
    fails(check_collate, _collate_bug(ref, lambda X, L, y: (X, L.int(), y)), match="int64")

    def left_padded(batch):
        X, L, y = ref["collate"](batch)
        return torch.stack([x.roll(int(X.shape[1] - n)) for x, n in zip(X, L, strict=True)]), L, y

    fails(check_collate, left_padded, match="start with example b")


def test_bucket_batches_check_catches(ref):
    def random_batches(lengths, batch_size, generator=None, pool_batches=50):
        return list(torch.randperm(len(lengths), generator=generator).split(batch_size))

    def sorted_everything(lengths, batch_size, generator=None, pool_batches=50):
        return list(torch.argsort(lengths).split(batch_size))

    def no_first_shuffle(lengths, batch_size, generator=None, pool_batches=50):
        batches = []
        for pool in torch.arange(len(lengths)).split(batch_size * pool_batches):
            batches += list(pool[torch.argsort(lengths[pool], stable=True)].split(batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def global_rng(lengths, batch_size, generator=None, pool_batches=50):
        return ref["bucket_batches"](lengths, batch_size, None, pool_batches)

    def drops_last(lengths, batch_size, generator=None, pool_batches=50):
        return ref["bucket_batches"](lengths, batch_size, generator, pool_batches)[:-1]

    fails(check_bucket_batches, random_batches, match="sort each pool by length")
    fails(check_bucket_batches, sorted_everything, match="shuffle the order of the batches")
    fails(check_bucket_batches, no_first_shuffle, match="shuffle all indices first")
    fails(check_bucket_batches, global_rng, match="use `generator`")
    fails(check_bucket_batches, drops_last, match="exactly once")
    # the grader's cases apply the same rules outside the notebook, on other sizes
    for bug, match in [
        (random_batches, "sort each pool by length"),
        (sorted_everything, "shuffle the order of the batches"),
        (no_first_shuffle, "shuffle all indices first"),
        (global_rng, "use `generator`"),
        (drops_last, "exactly once"),
    ]:
        rejection(LESSON, "bucket_batches", bug, match)


# ----------------------------------------------------------------------------- pooling
def test_pooling_that_counts_padding_is_caught():
    fails(check_masked_mean, lambda H, L: H.mean(1), match="padding counts")

    def divides_by_T(H, lengths):
        mask = (torch.arange(H.shape[1]) < lengths[:, None])[:, :, None]
        return (H * mask).sum(1) / H.shape[1]

    def sums_padding(H, lengths):
        return H.sum(1) / lengths[:, None]

    fails(check_masked_mean, divides_by_T, match="divide by each length")
    fails(check_masked_mean, sums_padding, match="zero them with the mask")
    fails(check_masked_max, lambda H, L: H.amax(1), match="sees the padded steps")

    def max_times_mask(H, lengths):
        mask = (torch.arange(H.shape[1]) < lengths[:, None])[:, :, None]
        return (H * mask).amax(1)

    fails(check_masked_max, max_times_mask, match="-inf")


def test_pooling_checks_catch_lengths_left_on_the_cpu():
    """train_one_epoch keeps lengths on the CPU: pooling that does not move them works on a
    CPU and crashes on a GPU. The checks find it with states on the meta device."""

    def mean_on_lengths_device(H, lengths):
        mask = torch.arange(H.shape[1]) < lengths[:, None]  # on the lengths' device
        return (H * mask[:, :, None]).sum(1) / lengths[:, None].to(H.dtype)

    def max_on_lengths_device(H, lengths):
        mask = torch.arange(H.shape[1]) < lengths[:, None]
        return H.masked_fill(~mask[:, :, None], float("-inf")).amax(1)

    fails(check_masked_mean, mean_on_lengths_device, match=r"lengths\.to\(H_all\.device\)")
    fails(check_masked_max, max_on_lengths_device, match=r"lengths\.to\(H_all\.device\)")


def test_the_graders_pooling_cases_catch_float32_and_gradient_bugs(ref):
    def always_double(H, lengths):
        return ref["masked_mean"](H.double(), lengths)

    check_masked_mean(always_double)  # float64 inputs: the visible check cannot tell
    rejection(LESSON, "masked_mean", always_double, "float32: the pooled states have dtype|dtype")

    def grads_padding(H, lengths):  # right values, but the padded states get gradient
        return ref["masked_mean"](H, lengths) + (H.sum(1) - H.sum(1).detach())

    check_masked_mean(grads_padding)
    rejection(LESSON, "masked_mean", grads_padding, "the padded states get a gradient")


# ----------------------------------------------------------------------------- the model
def _model_variant(ref, **changes):
    """The reference SentimentRNN with one thing changed (a typical bug)."""
    base = ref["SentimentRNN"]
    masked_mean, masked_max = ref["masked_mean"], ref["masked_max"]

    class Variant(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if changes.get("unidirectional"):
                rnn = self.rnn
                self.rnn = type(rnn)(rnn.input_size, rnn.hidden_size, batch_first=True)
            if changes.get("no_padding_idx"):
                self.embedding.padding_idx = None
            if changes.get("renamed"):
                self.classifier = self.fc
                del self.fc

        def forward(self, X, lengths):
            if not changes.get("pooling"):
                return super().forward(X, lengths)
            E = self.embedding(X)
            if self.packed and changes.get("pooling") != "unpacked":
                seq = nn.utils.rnn.pack_padded_sequence(
                    E, lengths, batch_first=True, enforce_sorted=False
                )
                H = nn.utils.rnn.pad_packed_sequence(self.rnn(seq)[0], batch_first=True)[0]
            else:
                H, _ = self.rnn(E)
            if changes["pooling"] == "plain":
                feats = [H.mean(1), H.amax(1)]
            elif changes["pooling"] == "swapped":
                feats = [masked_max(H, lengths), masked_mean(H, lengths)]
            else:
                feats = [masked_mean(H, lengths), masked_max(H, lengths)]
            return self.fc(torch.cat(feats, -1))

    return Variant


def test_model_layout_bugs_are_caught(ref):
    fails(check_sentiment_rnn, _model_variant(ref, unidirectional=True), match="bidirectional")
    fails(check_sentiment_rnn, _model_variant(ref, no_padding_idx=True), match="padding_idx")
    fails(check_sentiment_rnn, _model_variant(ref, pooling="swapped"), match=r"\[mean; max\]")
    fails(check_sentiment_rnn, _model_variant(ref, renamed=True), match="model.fc must be")


def test_model_that_reads_padding_is_caught(ref):
    fails(
        check_sentiment_rnn_ignores_padding,
        _model_variant(ref, pooling="plain"),
        match="padding must change nothing",
    )
    fails(  # ignores packed=True: the backward direction starts in the padding
        check_sentiment_rnn_ignores_padding,
        _model_variant(ref, pooling="unpacked"),
        match="padding must change nothing",
    )


# ----------------------------------------------------------------------------- training
def _train_variant(ref, *, train_mode=True, zero_grad=True, clip=True, scaler=True,
                   autocast=True, weighted=True, enabled=None):  # fmt: skip
    def train_one_epoch(model, batches, optimizer, scaler_, max_norm=1.0):
        device = next(model.parameters()).device
        if train_mode:
            model.train()
        total, count, losses = 0.0, 0, []
        for X, lengths, y in batches:
            if zero_grad:
                optimizer.zero_grad()
            on = device.type == "cuda" if enabled is None else enabled
            ctx = (
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)
                if autocast
                else contextlib.nullcontext()
            )
            with ctx:
                loss = F.cross_entropy(model(X, lengths), y)
            if scaler:
                scaler_.scale(loss).backward()
                scaler_.unscale_(optimizer)
            else:
                loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            if scaler:
                scaler_.step(optimizer)
                scaler_.update()
            else:
                optimizer.step()
            total, count = total + loss.item() * len(y), count + len(y)
            losses.append(loss.item())
        return total / count if weighted else sum(losses) / len(losses)

    return train_one_epoch


@pytest.mark.parametrize(
    "bug, hint",
    [
        (dict(train_mode=False), r"model\.train\(\)"),
        (dict(zero_grad=False), "zero_grad"),
        (dict(clip=False), "not clipped"),
        (dict(scaler=False), "GradScaler"),
        (dict(enabled=True), "enabled on the CPU"),
        (dict(weighted=False), "weight each batch's loss by its size"),
    ],
    ids=["no model.train()", "no zero_grad", "no clipping", "no scaler", "autocast on cpu",
         "unweighted mean"],
)  # fmt: skip
def test_train_one_epoch_check_catches(ref, bug, hint):
    check_train_one_epoch(_train_variant(ref))  # the variant without a bug passes
    fails(check_train_one_epoch, _train_variant(ref, **bug), match=hint)


def test_train_one_epoch_without_autocast_on_the_cpu_gets_full_marks(ref):
    """Autocast only on CUDA (an `if` around it) computes on the CPU what autocast off does."""
    check_train_one_epoch(_train_variant(ref, autocast=False))


def _evaluate_variant(*, eval_mode=True, no_grad=True, flipped=False, per_batch=False):
    def evaluate(model, batches):
        if eval_mode:
            model.eval()
        ctx = torch.no_grad() if no_grad else contextlib.nullcontext()
        correct, total, accs = 0, 0, []
        with ctx:
            for X, lengths, y in batches:
                pred = model(X, lengths).argmax(1)
                target = 1 - y if flipped else y
                correct += int((pred == target).sum())
                total += len(y)
                accs.append(float((pred == target).float().mean()))
        return sum(accs) / len(accs) if per_batch else correct / total

    return evaluate


@pytest.mark.parametrize(
    "bug, hint",
    [
        (dict(eval_mode=False), r"model\.eval\(\)"),
        (dict(no_grad=False), "no_grad"),
        (dict(flipped=True), "labels are flipped"),
        (dict(per_batch=True), "mean of the batch accuracies"),
    ],
    ids=["no model.eval()", "no no_grad", "labels flipped", "mean of batch accuracies"],
)
def test_evaluate_check_catches(bug, hint):
    check_evaluate(_evaluate_variant())
    fails(check_evaluate, _evaluate_variant(**bug), match=hint)


def _predict_variant(ref, *, eval_mode=True, flipped=False, p_positive=False, clip=True):
    tokenize, encode, clip_ids = ref["tokenize"], ref["encode"], ref["clip"]

    def predict(text, model, vocab, max_len):
        ids = encode(tokenize(text), vocab)
        ids = clip_ids(ids, max_len) if clip else ids
        if eval_mode:
            model.eval()
        with torch.no_grad():
            probs = model(ids[None], torch.tensor([len(ids)])).softmax(-1)[0]
        k = int(probs.argmax())
        label = ("positive", "negative")[k] if flipped else ("negative", "positive")[k]
        return label, float(probs[1] if p_positive else probs[k])

    return predict


@pytest.mark.parametrize(
    "bug, hint",
    [
        (dict(eval_mode=False), r"model\.eval\(\)"),
        (dict(flipped=True), "Class 1 is positive"),
        (dict(p_positive=True), "probability of the label you return"),
        (dict(clip=False), "clip"),
    ],
    ids=["no model.eval()", "labels flipped", "P(positive) returned", "no clipping"],
)
def test_predict_check_catches(ref, bug, hint):
    check_predict(_predict_variant(ref))
    fails(check_predict, _predict_variant(ref, **bug), match=hint)


# ----------------------------------------------------------------------------- checkpoints
def _save_variant(*, pickled=False, direct=False, insertion_order=False, gpu_tensors=False):
    def save_checkpoint(path, model, vocab, model_config, max_len):
        path = Path(path)
        checkpoint = {
            "state_dict": model.state_dict(),
            "vocab": list(vocab) if insertion_order else sorted(vocab, key=vocab.get),
            "model_config": dict(model_config),
            "max_len": int(max_len),
        }
        if pickled:  # a module object (its class must be importable to be pickled at all)
            checkpoint["model"] = model.fc
        if direct:
            torch.save(checkpoint, path)
            return
        tmp = path.with_name(path.name + ".tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)

    return save_checkpoint


@pytest.mark.parametrize(
    "bug, hint",
    [
        (dict(pickled=True), "weights_only=True"),
        (dict(direct=True), "os.replace"),
        (dict(insertion_order=True), "insertion order"),
    ],
    ids=["pickles the model", "not atomic", "vocab in dict order"],
)
def test_save_checkpoint_check_catches(ref, bug, hint):
    check_save_checkpoint(_save_variant(), ref["SentimentRNN"])
    fails(check_save_checkpoint, _save_variant(**bug), ref["SentimentRNN"], match=hint)


def _checkpoint(ref, path, *, config=None, vocab_size=20, **extra):
    config = config or dict(vocab_size=vocab_size, embed_size=4, num_hiddens=3, num_layers=1,
                            cell="gru", dropout=0.0, packed=False)  # fmt: skip
    torch.manual_seed(0)
    model = ref["SentimentRNN"](**config)
    vocab = {"<pad>": 0, "<unk>": 1} | {f"t{i}": i + 2 for i in range(config["vocab_size"] - 2)}
    ref["save_checkpoint"](path, model, vocab, config, 50)
    if extra:
        checkpoint = torch.load(path, weights_only=True) | extra
        torch.save(checkpoint, path)
    return model


def test_checkpoint_file_check_reports_missing_pickled_and_malformed_files(ref, tmp_path):
    SentimentRNN = ref["SentimentRNN"]
    fails(check_checkpoint_file, tmp_path / "none.pt", SentimentRNN, match="No checkpoint at")
    torch.save(nn.Linear(2, 2), tmp_path / "pickled.pt")
    fails(check_checkpoint_file, tmp_path / "pickled.pt", SentimentRNN, match="refuses to run")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 not really")
    fails(check_checkpoint_file, tmp_path / "cut.pt", SentimentRNN, match="not a readable")
    torch.save({"state_dict": {}}, tmp_path / "partial.pt")
    fails(check_checkpoint_file, tmp_path / "partial.pt", SentimentRNN, match="lacks max_len")
    _checkpoint(ref, tmp_path / "ok.pt", model_config={"vocab_size": 20, "bogus": 1})
    fails(check_checkpoint_file, tmp_path / "ok.pt", SentimentRNN, match="constructor arguments")
    _checkpoint(ref, tmp_path / "good.pt")
    check_checkpoint_file(tmp_path / "good.pt", SentimentRNN)


# ----------------------------------------------------------------------------- model quality
needs_data = pytest.mark.skipif(
    not MIRROR.is_file() and not os.environ.get("RNNCOURSE_IMDB_ARCHIVE"),
    reason=f"needs the IMDB reviews: no mirror at {MIRROR} and $RNNCOURSE_IMDB_ARCHIVE unset",
)


def test_grading_gives_a_clear_message_for_a_missing_or_pickled_checkpoint(tmp_path):
    fails(graded.grade_imdb_checkpoint, tmp_path / "imdb_model.pt", match="No checkpoint at")
    torch.save({"anything": nn.Linear(1, 1)}, tmp_path / "evil.pt")
    fails(graded.grade_imdb_checkpoint, tmp_path / "evil.pt", match="refuses to run")


def test_grading_rejects_weights_that_do_not_fit_the_layout(ref, tmp_path):
    _checkpoint(ref, tmp_path / "a.pt")
    checkpoint = torch.load(tmp_path / "a.pt", weights_only=True)
    checkpoint["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "b.pt")
    fails(graded.grade_imdb_checkpoint, tmp_path / "b.pt", match="do not fit the lesson's layout")
    checkpoint = torch.load(tmp_path / "a.pt", weights_only=True)
    checkpoint["model_config"]["cell"] = "transformer"
    torch.save(checkpoint, tmp_path / "c.pt")
    fails(graded.grade_imdb_checkpoint, tmp_path / "c.pt", match="'lstm' or 'gru'")


@needs_data
def test_grading_fails_an_untrained_checkpoint(ref, tmp_path):
    _checkpoint(ref, tmp_path / "untrained.pt", vocab_size=1000)
    fails(
        graded.grade_imdb_checkpoint,
        tmp_path / "untrained.pt",
        num_reviews=1000,
        match=r"reaches \d+\.\d+% on 1,000 held-out test reviews; it needs 85%",
    )


@pytest.mark.parametrize(
    "accuracy, hint",
    [(0.12, "labels flipped"), (0.51, "about chance"), (0.80, "train longer")],
)
def test_grading_says_why_a_checkpoint_falls_short(ref, tmp_path, monkeypatch, accuracy, hint):
    """The trained case runs in tests/test_lessons.py: the reference notebook trains the
    `nbgrader` configuration and its hidden test grades that checkpoint (87% measured)."""
    _checkpoint(ref, tmp_path / "imdb_model.pt")
    monkeypatch.setattr(graded, "heldout_slice", lambda n: SimpleNamespace(texts=[], labels=[]))
    monkeypatch.setattr(graded, "checkpoint_accuracy", lambda *args, **kw: accuracy)
    fails(graded.grade_imdb_checkpoint, tmp_path / "imdb_model.pt", match=hint)
    monkeypatch.setattr(graded, "checkpoint_accuracy", lambda *args, **kw: 0.86)
    assert graded.grade_imdb_checkpoint(tmp_path / "imdb_model.pt") is None  # passes, silently


def test_the_course_grader_grades_only_the_checkpoint_handed_in(ref, tmp_path, monkeypatch):
    """Under ``course grade`` the sandbox names the files handed in (with their hashes): a
    checkpoint missing there, or different from it, was made while grading and never counts."""
    import json

    from rnncourse.data._files import sha256_file
    from rnncourse_grader.sandbox import HANDED_IN_VAR

    path = tmp_path / "imdb_model.pt"
    _checkpoint(ref, path)
    monkeypatch.setattr(graded, "heldout_slice", lambda n: SimpleNamespace(texts=[], labels=[]))
    monkeypatch.setattr(graded, "checkpoint_accuracy", lambda *args, **kw: 0.9)
    monkeypatch.setenv(HANDED_IN_VAR, json.dumps({}))  # nothing was handed in
    fails(graded.grade_imdb_checkpoint, path, match="no imdb_model.pt was handed in")
    monkeypatch.setenv(HANDED_IN_VAR, json.dumps({path.name: "0" * 64}))  # replaced since
    fails(graded.grade_imdb_checkpoint, path, match="not the file handed in")
    monkeypatch.setenv(HANDED_IN_VAR, json.dumps({path.name: sha256_file(path)}))
    assert graded.grade_imdb_checkpoint(path) is None
    monkeypatch.delenv(HANDED_IN_VAR)  # nbgrader's own autograde or validate: the file counts
    assert graded.grade_imdb_checkpoint(path) is None


def test_under_autograde_the_lesson_never_saves_over_the_checkpoint(monkeypatch):
    """The lesson's save cell writes elsewhere while autograded, whatever was handed in."""
    source = (ROOT / "solutions" / LESSON / f"{LESSON}.py").read_text()
    assert "if under_autograde() or (under_nbgrader() and CHECKPOINT_PATH.exists()):" in source
    from rnncourse.device import under_autograde

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert under_autograde()
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert not under_autograde()


def test_autograde_refuses_the_instructors_own_checkpoint(ref, tmp_path, monkeypatch):
    """nbgrader copies solutions/<id>/ files over submissions: that copy must never pass."""
    from rnncourse_grader import pipeline

    lesson = tmp_path / "solutions" / LESSON
    lesson.mkdir(parents=True)
    _checkpoint(ref, lesson / "imdb_model.pt")
    submitted = tmp_path / "imdb_model.pt"
    submitted.write_bytes((lesson / "imdb_model.pt").read_bytes())
    monkeypatch.setattr(pipeline, "ROOT", tmp_path)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    fails(graded.grade_imdb_checkpoint, submitted, match="instructor's copy")


# ----------------------------------------------------------------------------- figures
def test_lesson_figures_draw_what_they_say():
    import matplotlib.pyplot as plt

    from rnncourse.plots import LiveCurves, plot_bars, plot_batch_padding, plot_confusion_matrix

    ax = plot_confusion_matrix(torch.tensor([[40, 10], [5, 45]]), ("negative", "positive"))
    assert [t.get_text() for t in ax.texts] == ["40\n80.0%", "10\n20.0%", "5\n10.0%", "45\n90.0%"]
    ax = plot_batch_padding([[3, 1], [2, 2]], title="random")
    assert ax.get_title() == "random (20% padding)"  # 10 places drawn, 2 of them padding
    ax = plot_bars({"a": 1200.0, "b": 300.0})
    assert [t.get_text() for t in ax.texts] == ["1,200", "300"]
    live = LiveCurves({"loss": ["train"], "accuracy": ["train", "validation"]}, display=False)
    live.update({"loss/train": 0.7, "accuracy/train": 0.6, "accuracy/validation": 0.55})
    live.update({"loss/train": 0.5, "accuracy/train": 0.7, "accuracy/validation": 0.65})
    assert live.history["accuracy/validation"] == [0.55, 0.65]
    assert len(live.axes[1].lines) == 2
    with pytest.raises(KeyError, match="unknown curve"):
        live.update({"loss/valid": 1.0})
    plt.close("all")
