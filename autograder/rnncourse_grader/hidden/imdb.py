"""Hidden checks for lesson 05, and the grading of the submitted model on held-out reviews.

What the integrity pass cannot check outside the notebook yet: the model, the training
loop, evaluation, checkpoints and prediction (the data and pooling functions are
checked there, by ``integrity_imdb``). ``grade_imdb_checkpoint`` loads the student's
checkpoint with ``weights_only=True``, rebuilds the lesson's architecture from it with the
grader's own code, and measures accuracy on a fixed slice of the official test split.
"""

import contextlib
import io
import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnncourse.checks import CheckFailed, call_student, imdb
from rnncourse.data import sha256_file
from rnncourse.data.checkpoint import CheckpointError, read_checkpoint
from rnncourse_grader.guards import run_cases
from rnncourse_grader.integrity_imdb import reference_tokenize

PAD, UNK, PAD_ID, UNK_ID = imdb.PAD, imdb.UNK, imdb.PAD_ID, imdb.UNK_ID
THRESHOLD = 0.85
# 2,500 reviews: a model of the `gpu` configuration (11.3M parameters, reviews up to 800
# tokens, packed) took 21 s to evaluate on one CPU core at load average 3, and about 5 times
# as long (per review) at load 6: well inside nbgrader's 300 s per cell. One standard error of
# the accuracy is then about 0.6%, against a threshold of 85% and models at 87-91%.
HELDOUT_SIZE = 2500
HELDOUT_SEED = 20110619  # fixed forever: every submission is graded on the same reviews
MAX_EVAL_LEN = 2000  # the grader clips reviews to at most this many tokens


def _quietly(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- references
def reference_clip(ids: torch.Tensor, max_len: int) -> torch.Tensor:
    if len(ids) <= max_len:
        return ids
    return torch.cat([ids[: max_len // 2], ids[len(ids) - (max_len - max_len // 2) :]])


def _masked(H, lengths):
    return torch.arange(H.shape[1], device=H.device) < lengths.to(H.device)[:, None]  # (B, T)


class ReferenceSentimentRNN(nn.Module):
    """The lesson's architecture, written independently of any student's code."""

    def __init__(
        self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm", dropout=0.5,
        packed=False,
    ):  # fmt: skip
        super().__init__()
        self.packed = packed
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_class(
            embed_size,
            num_hiddens,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * num_hiddens, 2)

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))  # (B, T, e)
        if self.packed:
            seq = pack_padded_sequence(E, lengths.cpu(), batch_first=True, enforce_sorted=False)
            H, _ = self.rnn(seq)
            H, _ = pad_packed_sequence(H, batch_first=True, total_length=X.shape[1])
        else:
            H, _ = self.rnn(E)  # (B, T, 2h)
        mask = _masked(H, lengths)[:, :, None]  # (B, T, 1)
        mean = H.masked_fill(~mask, 0).sum(1) / lengths.to(H.device)[:, None].to(H.dtype)
        top = H.masked_fill(~mask, float("-inf")).amax(1)
        return self.fc(self.dropout(torch.cat([mean, top], dim=-1)))  # (B, 2)


# ----------------------------------------------------------------------------- components
def check_sentiment_rnn_hidden(SentimentRNN):
    configs = (
        dict(vocab_size=17, embed_size=5, num_hiddens=3, num_layers=3, cell="gru", dropout=0.1,
             packed=False),
        dict(vocab_size=9, embed_size=3, num_hiddens=6, num_layers=1, cell="lstm", dropout=0.0,
             packed=True),
    )  # fmt: skip
    try:
        _quietly(imdb.check_sentiment_rnn, SentimentRNN, configs, seed=51)
    except CheckFailed as err:
        raise CheckFailed(f"[hidden case] {err}") from None
    print("Hidden checks passed.")


def check_sentiment_rnn_ignores_padding_hidden(SentimentRNN):
    cases = [
        dict(config=(("vocab_size", 20), ("embed_size", 4), ("num_hiddens", 3), ("num_layers", 2),
                     ("cell", "lstm"), ("dropout", 0.2)), lengths=(1,), seed=61),
        dict(config=(("vocab_size", 20), ("embed_size", 4), ("num_hiddens", 3), ("num_layers", 1),
                     ("cell", "gru"), ("dropout", 0.0)), lengths=(1, 1, 8, 3, 8), seed=62),
    ]  # fmt: skip
    _quietly(run_cases, imdb.check_sentiment_rnn_ignores_padding, SentimentRNN, cases)
    print("Hidden checks passed.")


def check_train_one_epoch_hidden(train_one_epoch):
    cases = [dict(sizes=(4,), seed=71), dict(sizes=(1, 8, 3, 3, 2), seed=72)]
    _quietly(run_cases, imdb.check_train_one_epoch, train_one_epoch, cases)
    print("Hidden checks passed.")


def check_evaluate_hidden(evaluate):
    cases = [dict(sizes=(9,), seed=81), dict(sizes=(1, 5, 2, 6), seed=82)]
    _quietly(run_cases, imdb.check_evaluate, evaluate, cases)
    print("Hidden checks passed.")


def check_predict_hidden(predict):
    vocab = {PAD: 0, UNK: 1, "awful": 2, "great": 3, "plot": 4, ".": 5}
    model = imdb.KeywordModel(vocab["great"], vocab["awful"])
    label, prob = call_student(predict, "Great. GREAT plot", model, vocab, 50, name="predict")
    if label != "positive" or abs(float(prob) - 1 / (1 + torch.e**-4)) > 1e-6:
        raise CheckFailed("[hidden case] predict('Great. GREAT plot') should be positive, p=0.982.")
    label, prob = call_student(predict, "zzz, qqq awful.", model, vocab, 50, name="predict")
    if label != "negative" or abs(float(prob) - 1 / (1 + torch.e**-2)) > 1e-6:
        raise CheckFailed("[hidden case] predict('zzz, qqq awful.') should be negative, p=0.881.")
    print("Hidden checks passed.")


def check_save_checkpoint_hidden(save_checkpoint, SentimentRNN):
    cases = [dict(cell="lstm", num_layers=2, seed=91), dict(cell="gru", num_layers=1, seed=92)]
    _quietly(
        run_cases, imdb.check_save_checkpoint, save_checkpoint, cases, SentimentRNN=SentimentRNN
    )
    print("Hidden checks passed.")


# ----------------------------------------------------------------------------- the model
def _refuse_the_instructors_copy(path: Path) -> None:
    """At autograde, fail closed if the file is the instructor's own checkpoint.

    nbgrader copies every file of solutions/<id>/ over the student's files before grading
    (unless ``Autograde.exclude_overwriting`` lists it). A checkpoint left in
    solutions/05_imdb_sentiment/ by running the reference notebook there would replace every
    student's and pass them all; this turns that into a loud failure instead.
    """
    if os.environ.get("NBGRADER_EXECUTION") != "autograde":
        return
    from rnncourse_grader import pipeline

    instructors = pipeline.ROOT / "solutions" / "05_imdb_sentiment" / path.name
    if instructors.is_file() and sha256_file(instructors) == sha256_file(path):
        raise CheckFailed(
            f"{path.name} is the instructor's copy from {instructors}, not the student's: "
            "nbgrader overwrote the submission. Remove that file (and list it in "
            "Autograde.exclude_overwriting), then grade again."
        )


def _require_the_handed_in_file(path: Path) -> None:
    """Under ``course grade``, grade only the checkpoint the student handed in.

    The grader copies the files handed in beside the notebook into the kernel's folder and
    names their hashes in ``RNNCOURSE_HANDED_IN``. A checkpoint that is missing there, or
    differs from the one handed in, was made by the notebook's own run while being graded
    (the smoke configuration): it never counts.
    """
    from rnncourse_grader.sandbox import HANDED_IN_VAR

    raw = os.environ.get(HANDED_IN_VAR)
    if raw is None:  # not the course grader (nbgrader's own autograde, validate)
        return
    handed_in = json.loads(raw)
    if path.name not in handed_in:
        raise CheckFailed(
            f"no {path.name} was handed in with the notebook: hand in the checkpoint your "
            "training run saved (a model trained while the notebook is graded never counts)."
        )
    if not path.is_file() or sha256_file(path) != handed_in[path.name]:
        raise CheckFailed(
            f"{path.name} is not the file handed in with the notebook: it was replaced while "
            "the notebook was graded (only the checkpoint you hand in counts)."
        )


CONFIG_LIMITS = {
    "vocab_size": (2, 1_000_000),
    "embed_size": (1, 4096),
    "num_hiddens": (1, 4096),
    "num_layers": (1, 8),
}


def build_reference_model(checkpoint: dict, name: str = "the checkpoint") -> nn.Module:
    """The grader's model with the checkpoint's weights (CheckFailed with a reason if not)."""
    config = dict(checkpoint["model_config"])
    for key, (low, high) in CONFIG_LIMITS.items():
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise CheckFailed(
                f"{name}: model_config[{key!r}] = {value!r}; expected an int in {low}..{high}."
            )
    if config.get("cell") not in ("lstm", "gru"):
        raise CheckFailed(f"{name}: model_config['cell'] must be 'lstm' or 'gru'.")
    if len(checkpoint["vocab"]) != config["vocab_size"]:
        raise CheckFailed(
            f"{name}: the vocabulary has {len(checkpoint['vocab']):,} tokens but "
            f"model_config['vocab_size'] is {config['vocab_size']:,}."
        )
    known = {"vocab_size", "embed_size", "num_hiddens", "num_layers", "cell", "dropout", "packed"}
    model = ReferenceSentimentRNN(**{k: v for k, v in config.items() if k in known})
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[1:3]
        raise CheckFailed(
            f"{name}: the weights do not fit the lesson's layout (embedding, rnn, dropout, fc): "
            f"{' '.join(s.strip() for s in first)}"
        ) from None
    return model.float().eval()


def heldout_slice(num_reviews: int = HELDOUT_SIZE):
    """The fixed slice of the official test split that every submission is graded on."""
    from rnncourse.data import load_imdb

    test = load_imdb(verbose=False, progress=False).test
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(HELDOUT_SEED))
    return test.subset(order[:num_reviews])


@torch.inference_mode()
def checkpoint_accuracy(checkpoint: dict, texts, labels, *, batch_size=128) -> float:
    """Accuracy of a checkpoint on texts, with the reference pipeline (tokenize, encode, clip)."""
    model = build_reference_model(checkpoint)
    stoi = {token: i for i, token in enumerate(checkpoint["vocab"])}
    max_len = min(int(checkpoint["max_len"]), MAX_EVAL_LEN)
    ids = [
        reference_clip(
            torch.tensor([stoi.get(t, UNK_ID) for t in reference_tokenize(text)] or [UNK_ID]),
            max_len,
        )
        for text in texts
    ]
    order = torch.argsort(torch.tensor([len(x) for x in ids]))
    correct = 0
    for index in order.split(batch_size):
        seqs = [ids[i] for i in index.tolist()]
        lengths = torch.tensor([len(s) for s in seqs])
        X = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)
        correct += int((model(X, lengths).argmax(1) == labels[index]).sum())
    return correct / len(ids)


def grade_imdb_checkpoint(
    path, *, threshold: float = THRESHOLD, num_reviews: int = HELDOUT_SIZE
) -> None:
    """The submitted model must reach ``threshold`` accuracy on the held-out test slice.

    Prints the accuracy and returns nothing: a number left as a test cell's output would
    be read by nbgrader as partial credit.
    """
    _require_the_handed_in_file(Path(path))
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckFailed(str(err)) from None
    _refuse_the_instructors_copy(Path(path))
    data = heldout_slice(num_reviews)
    accuracy = checkpoint_accuracy(checkpoint, data.texts, data.labels)
    name = Path(path).name
    if accuracy >= threshold:
        print(
            f"{name}: {accuracy:.2%} on {num_reviews:,} held-out test reviews "
            f"(needed {threshold:.0%})."
        )
        return
    if accuracy < 0.3:
        hint = "far below chance: are the labels flipped somewhere (class 1 = positive)?"
    elif accuracy < 0.6:
        hint = "about chance: did the model train, and was it saved after training?"
    else:
        hint = "train longer or larger (the cpu or gpu configuration), then save again."
    raise CheckFailed(
        f"{name} reaches {accuracy:.2%} on {num_reviews:,} held-out test reviews; it needs "
        f"{threshold:.0%}: {hint}"
    )
