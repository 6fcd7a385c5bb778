"""Integrity probes for lesson 05's model, training loop, evaluation and checkpoints.

``SentimentRNN`` is built in the sandboxed runner from a configuration made here, given
weights made here, and run on padded batches made here; its logits are compared with the
grader's own ``ReferenceSentimentRNN`` carrying the same weights. The training loop,
evaluation and the checkpoint writer run in the runner on the lesson's recording probe
objects (``rnncourse.checks.imdb``: ``run_training``, ``run_evaluation``, ``run_save``),
and what they recorded comes back as plain data and is judged here by the same rule
functions the notebook's tests use (``training_problem``, ``evaluation_problem``,
``save_problem``), on batches and seeds the kernel never saw.

What only the runner can observe (the model's training flag, whether autograd was on, the
file left after a failed save) is as trustworthy as that process; the gradients, losses
and saved tensors are checked against values computed here.
"""

import string

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnncourse.checks.imdb import (
    PAD,
    PAD_ID,
    UNK,
    BagModel,
    EvaluationRun,
    SaveRun,
    TrainingRun,
    evaluation_problem,
    expected_parameter_names,
    run_evaluation,
    run_save,
    run_training,
    save_problem,
    training_batches,
    training_problem,
)
from rnncourse_grader.integrity import (
    Method,
    as_tensor,
    compare_tensor,
    describe,
    fields_of,
    record_from,
    swapped,
)


# ----------------------------------------------------------------------------- the reference
def _masked(H, lengths):
    return torch.arange(H.shape[1], device=H.device) < lengths.to(H.device)[:, None]  # (B, T)


def reference_masked_mean(H, lengths):
    """(B, T, H), (B,) -> the mean over each sequence's real steps, (B, H)."""
    mask = _masked(H, lengths)[:, :, None]
    return H.masked_fill(~mask, 0).sum(1) / lengths.to(H.device)[:, None].to(H.dtype)


def reference_masked_max(H, lengths):
    """(B, T, H), (B,) -> the elementwise max over each sequence's real steps, (B, H)."""
    return H.masked_fill(~_masked(H, lengths)[:, :, None], float("-inf")).amax(1)


class ReferenceSentimentRNN(nn.Module):
    """The lesson's architecture, written independently of any student's code."""

    def __init__(
        self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm", dropout=0.5,
        packed=False, bidirectional=True,
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
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear((4 if bidirectional else 2) * num_hiddens, 2)  # [mean; max] pooled

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))  # (B, T, e)
        if self.packed:
            seq = pack_padded_sequence(E, lengths.cpu(), batch_first=True, enforce_sorted=False)
            H, _ = self.rnn(seq)
            H, _ = pad_packed_sequence(H, batch_first=True, total_length=X.shape[1])
        else:
            H, _ = self.rnn(E)  # (B, T, H), H = 2h if bidirectional
        pooled = [reference_masked_mean(H, lengths), reference_masked_max(H, lengths)]
        return self.fc(self.dropout(torch.cat(pooled, dim=-1)))  # (B, 2)


# ----------------------------------------------------------------------------- student side
def model_logits(ns, function, case):
    """The student's model with the grader's weights: its parameter names and eval logits.
    The reference pooling is swapped in: a bug in the student's own costs its tests only."""
    pooling = swapped(ns, "masked_mean", reference_masked_mean)
    with pooling, swapped(ns, "masked_max", reference_masked_max):
        return _names_and_logits(ns[function], case)


def _names_and_logits(SentimentRNN, case):
    model = SentimentRNN(**case["config"])
    names = sorted(model.state_dict())
    if set(names) != set(case["state"]):
        return [names, None]
    model = model.double()
    model.load_state_dict(case["state"])
    model.eval()
    with torch.no_grad():
        return [names, model(case["X"], case["lengths"])]


def _batches(case):
    return [tuple(batch) for batch in case["batches"]]


def train_epoch(ns, function, case):
    run = run_training(ns[function], _batches(case), case["max_norm"], case["seed"])
    return fields_of(run)


def evaluate_run(ns, function, case):
    return fields_of(run_evaluation(ns[function], _batches(case), case["seed"]))


def save_run(ns, function, case):
    model = BagModel(seed=case["seed"])
    args = case["vocab"], case["config"], case["max_len"]
    return fields_of(run_save(ns[function], model, *args))


# ----------------------------------------------------------------------------- the model
MODEL_CONFIGS = [  # (config, lengths of the batch, extra padding columns)
    (dict(vocab_size=17, embed_size=5, num_hiddens=3, num_layers=3, cell="gru", dropout=0.1,
          packed=False), (5, 2, 7), 0),
    (dict(vocab_size=9, embed_size=3, num_hiddens=6, num_layers=1, cell="lstm", dropout=0.0,
          packed=True), (1, 4, 4, 2), 0),
    (dict(vocab_size=20, embed_size=4, num_hiddens=3, num_layers=2, cell="lstm", dropout=0.2,
          packed=True), (1,), 3),
    (dict(vocab_size=20, embed_size=4, num_hiddens=3, num_layers=1, cell="gru", dropout=0.0,
          packed=True), (1, 1, 8, 3, 8), 2),
]  # fmt: skip


def model_cases(rng):
    cases = []
    for config, lengths, extra in MODEL_CONFIGS:
        with torch.random.fork_rng():  # the grader's own global generator is left as it was
            torch.manual_seed(int(rng.integers(2**31)))
            state = ReferenceSentimentRNN(**config).double().state_dict()
        lengths = np.array(lengths, dtype=np.int64)
        X = rng.integers(2, config["vocab_size"], size=(len(lengths), lengths.max() + extra))
        X[np.arange(X.shape[1])[None, :] >= lengths[:, None]] = PAD_ID
        label = f"{config}, lengths {tuple(int(n) for n in lengths)}, {extra} extra padding"
        cases.append({
            "label": label,
            "config": config,
            "state": {k: v.numpy() for k, v in state.items()},
            "X": X.astype(np.int64),
            "lengths": lengths,
        })  # fmt: skip
    return cases


def model_expected(case):
    model = ReferenceSentimentRNN(**case["config"]).double()
    model.load_state_dict(as_tensor(case["state"]))
    with torch.no_grad():
        return model.eval()(as_tensor(case["X"]), as_tensor(case["lengths"]))


def model_compare(got, want, case):
    if not isinstance(got, list) or len(got) != 2:
        return f"SentimentRNN gave {describe(got)}"
    names, logits = got
    config = case["config"]
    layout = expected_parameter_names(config["cell"], config["num_layers"])
    if not isinstance(names, list) or set(names) != layout:
        found = set(names) if isinstance(names, list) else set()
        missing, extra = sorted(layout - found)[:3], sorted(found - layout)[:3]
        return (
            f"the parameters do not follow the lesson's layout (embedding, rnn, fc): "
            f"missing {missing}, unexpected {extra}"
        )
    problem = compare_tensor("the logits", logits, want, rtol=1e-7, atol=1e-9)
    if problem and bool(config["packed"]):
        return f"{problem} (with packed=True the padding must not change a review's logits)"
    return problem


# ----------------------------------------------------------------------------- training
TRAINING_SIZES = [(4,), (1, 8, 3, 3, 2), (5, 3, 6, 2)]


def _batch_arrays(sizes, seed):
    return [[t.numpy() for t in batch] for batch in training_batches(sizes, seed=seed)]


def training_cases(rng):
    """Every batch layout with and without clipping (max_norm 1e6 never clips, 0.05 always)."""
    drawn = [tuple(int(n) for n in rng.integers(1, 9, size=int(rng.integers(2, 5))))]
    cases = []
    for sizes in TRAINING_SIZES + drawn:
        for max_norm in (1e6, 0.05):
            seed = int(rng.integers(2**31))
            label = f"batch sizes {sizes}, max_norm {max_norm:g}"
            batches = _batch_arrays(sizes, seed)
            cases.append({"label": label, "batches": batches, "max_norm": max_norm, "seed": seed})
    return cases


def _case_batches(case):
    return [tuple(as_tensor(t) for t in batch) for batch in case["batches"]]


def _bag_shapes_problem(params: list) -> str | None:
    """The recorded parameters are the probe model's, or the reply cannot be judged."""
    shapes = [tuple(p.shape) for p in BagModel().parameters()]
    for step in params:
        if not isinstance(step, list) or [tuple(getattr(p, "shape", ())) for p in step] != shapes:
            return "the optimizer's parameters are not the model's (were they replaced?)"
    return None


def training_compare(got, want, case):
    run = record_from(TrainingRun, got)
    if run is None or not isinstance(run.params, list) or not isinstance(run.grads, list):
        return f"train_one_epoch's run came back as {describe(got)}"
    problem = _bag_shapes_problem(run.params)
    if problem:
        return problem
    return training_problem(run, _case_batches(case), case["max_norm"], case["seed"])


def evaluation_cases(rng):
    drawn = [tuple(int(n) for n in rng.integers(1, 9, size=int(rng.integers(1, 5))))]
    cases = []
    for sizes in [(9,), (1, 5, 2, 6), *drawn]:
        seed = int(rng.integers(2**31))
        label = f"batch sizes {sizes}"
        cases.append({"label": label, "batches": _batch_arrays(sizes, seed + 1), "seed": seed})
    return cases


def evaluation_compare(got, want, case):
    run = record_from(EvaluationRun, got)
    if run is None or not isinstance(run.modes, list) or not isinstance(run.grad_modes, list):
        return f"evaluate's run came back as {describe(got)}"
    return evaluation_problem(run, _case_batches(case), case["seed"])


# ----------------------------------------------------------------------------- checkpoints
def save_cases(rng):
    """Vocabularies whose dict order is not their id order, and configurations as given."""
    cases = []
    for size, max_len in [(12, 77), (30, 1), (5, 4000)]:
        tokens = [PAD, UNK] + [f"{string.ascii_lowercase[i % 26]}{i}" for i in range(size - 2)]
        vocab = {tokens[i]: i for i in rng.permutation(size).tolist()}
        config = {
            "vocab_size": size,
            "embed_size": int(rng.integers(1, 9)),
            "num_hiddens": int(rng.integers(1, 9)),
            "num_layers": int(rng.integers(1, 3)),
            "cell": str(rng.choice(["lstm", "gru"])),
            "dropout": 0.25,
            "packed": bool(rng.integers(2)),
        }
        seed = int(rng.integers(2**31))
        label = f"a vocabulary of {size}, max_len {max_len}"
        cases.append(
            {"label": label, "vocab": vocab, "config": config, "max_len": max_len, "seed": seed}
        )
    return cases


CHECKPOINT_KEYS = {"state_dict", "vocab", "model_config", "max_len"}  # read_checkpoint's


def save_compare(got, want, case):
    run = record_from(SaveRun, got)
    if run is None or not (run.checkpoint is None or isinstance(run.checkpoint, dict)):
        return f"save_checkpoint's run came back as {describe(got)}"
    if run.checkpoint is not None and not CHECKPOINT_KEYS <= set(run.checkpoint):
        return f"the checkpoint came back as {describe(run.checkpoint)}"
    state = BagModel(seed=case["seed"]).state_dict()
    return save_problem(run, state, case["vocab"], case["config"], case["max_len"])


def _none(case):
    return None  # judged by the lesson's rules on the recorded run, not against one value


MODEL_PROBES = {
    "SentimentRNN": Method("model_logits", model_cases, model_expected, model_compare),
    "train_one_epoch": Method("train_epoch", training_cases, _none, training_compare),
    "evaluate": Method("evaluate_run", evaluation_cases, _none, evaluation_compare),
    "save_checkpoint": Method("save_run", save_cases, _none, save_compare),
}
