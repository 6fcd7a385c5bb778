"""Lesson 05: correct answers in the styles students write get full marks, visible and hidden.

Each graded function has at least three alternatives to the reference solution. A false
failure here means a check that rejects a right answer for how it is written.
"""

import contextlib
import os
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from rnncourse.checks import (
    check_bucket_batches,
    check_build_vocab,
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
)
from rnncourse.data import CLASS_NAMES
from tests.course import by_name, lesson_functions
from tests.integrity_support import passes_probe

LESSON = "05_imdb_sentiment"

PAD, UNK, PAD_ID, UNK_ID = "<pad>", "<unk>", 0, 1
clip = lesson_functions("05_imdb_sentiment", "clip")["clip"]


# ----------------------------------------------------------------------------- tokenize
WORD = r"\w+(?:'\w+)*"


def tokenize_sub_then_findall(text):
    text = re.sub(r"<br />", " ", text.lower())
    return re.findall(rf"{WORD}|[^\w\s]", text)


def tokenize_finditer(text):
    """One compiled pattern, matches collected from finditer."""
    pattern = re.compile(rf"(?P<word>{WORD})|(?P<other>[^\w\s])")
    return [m.group() for m in pattern.finditer(text.lower().replace("<br />", " "))]


def tokenize_split_words(text):
    """Whitespace split first, then each chunk cut into words and punctuation."""
    tokens = []
    for chunk in text.lower().replace("<br />", " ").split():
        tokens += re.findall(rf"{WORD}|\W", chunk)
    return tokens


TOKENIZERS = [tokenize_sub_then_findall, tokenize_finditer, tokenize_split_words]


# ----------------------------------------------------------------------------- build_vocab
def vocab_most_common(token_lists, min_freq=1, max_size=None):
    counts = Counter()
    for tokens in token_lists:
        counts.update(t for t in tokens if t not in (PAD, UNK))
    ranked = sorted(counts.most_common(), key=lambda kv: (-kv[1], kv[0]))
    vocab = {PAD: PAD_ID, UNK: UNK_ID}
    for token, n in ranked:
        if n < min_freq or (max_size is not None and len(vocab) >= max_size):
            break
        vocab[token] = len(vocab)
    return vocab


def vocab_defaultdict(token_lists, min_freq=1, max_size=None):
    counts = defaultdict(int)
    for tokens in token_lists:
        for token in tokens:
            counts[token] += 1
    kept = [t for t in sorted(counts, key=lambda t: (-counts[t], t)) if counts[t] >= min_freq]
    kept = [t for t in kept if t not in (PAD, UNK)]
    limit = None if max_size is None else max(max_size - 2, 0)
    return dict([(PAD, 0), (UNK, 1)] + [(t, i) for i, t in enumerate(kept[:limit], start=2)])


def vocab_two_sorts(token_lists, min_freq=1, max_size=None):
    """Sorted by token, then stably by count (the classic two-pass sort)."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    for special in (PAD, UNK):
        counts.pop(special, None)
    kept = sorted(t for t in counts if counts[t] >= min_freq)
    kept.sort(key=counts.__getitem__, reverse=True)
    if max_size is not None:
        del kept[max(max_size - 2, 0) :]
    vocab = {PAD: PAD_ID, UNK: UNK_ID}
    vocab.update(zip(kept, range(2, 2 + len(kept)), strict=True))
    return vocab


VOCABS = [vocab_most_common, vocab_defaultdict, vocab_two_sorts]


# ----------------------------------------------------------------------------- encode
def encode_index_or_unk(tokens, vocab):
    return torch.tensor([vocab[t] if t in vocab else vocab[UNK] for t in tokens], dtype=torch.int64)


def encode_preallocated(tokens, vocab):
    ids = torch.full((len(tokens),), vocab[UNK], dtype=torch.long)
    for i, token in enumerate(tokens):
        ids[i] = vocab.get(token, vocab[UNK])
    return ids


def encode_as_tensor(tokens, vocab):
    return torch.as_tensor(list(map(lambda t: vocab.get(t, UNK_ID), tokens)), dtype=torch.long)


ENCODERS = [encode_index_or_unk, encode_preallocated, encode_as_tensor]


# ----------------------------------------------------------------------------- collate
def collate_pad_sequence(batch):
    seqs = [ids for ids, _ in batch]
    X = pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)
    lengths = torch.tensor(list(map(len, seqs)))
    return X, lengths, torch.tensor([label for _, label in batch])


def collate_f_pad(batch):
    T = max(len(ids) for ids, _ in batch)
    X = torch.stack([F.pad(ids, (0, T - len(ids)), value=PAD_ID) for ids, _ in batch])
    lengths = torch.as_tensor([ids.numel() for ids, _ in batch], dtype=torch.long)
    return X, lengths, torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)


def collate_zeros(batch):
    """PAD_ID is 0, so zeros are padding; rows filled one by one."""
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    X = torch.zeros(len(batch), int(lengths.max().item()), dtype=torch.long)
    y = torch.empty(len(batch), dtype=torch.long)
    for b, (ids, label) in enumerate(batch):
        X[b, : len(ids)] = ids
        y[b] = label
    return X, lengths, y


COLLATES = [collate_pad_sequence, collate_f_pad, collate_zeros]


# ----------------------------------------------------------------------------- bucket_batches
def buckets_sort_values(lengths, batch_size, generator=None, pool_batches=50):
    perm = torch.randperm(lengths.numel(), generator=generator)
    pools = perm.split(batch_size * pool_batches)
    batches = []
    for pool in pools:
        _, order = torch.sort(lengths[pool], stable=True)
        batches += list(pool[order].split(batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def buckets_index_math(lengths, batch_size, generator=None, pool_batches=50):
    """Pools and batches cut by index arithmetic instead of split."""
    n = len(lengths)
    perm = torch.randperm(n, generator=generator)
    pool_size = batch_size * pool_batches
    batches = []
    for start in range(0, n, pool_size):
        pool = perm[start : start + pool_size]
        pool = pool[torch.argsort(lengths[pool], stable=True)]
        batches.extend(pool[i : i + batch_size] for i in range(0, len(pool), batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def buckets_python_sort(lengths, batch_size, generator=None, pool_batches=50):
    """Python's sorted (stable) on the pool's indices."""
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    pool_size = batch_size * pool_batches
    batches = []
    for start in range(0, len(perm), pool_size):
        pool = sorted(perm[start : start + pool_size], key=lambda i: int(lengths[i]))
        for i in range(0, len(pool), batch_size):
            batches.append(torch.tensor(pool[i : i + batch_size], dtype=torch.long))
    shuffled = torch.randperm(len(batches), generator=generator)
    return [batches[int(i)] for i in shuffled]


BUCKETS = [buckets_sort_values, buckets_index_math, buckets_python_sort]


# ----------------------------------------------------------------------------- masked pooling
def _mask(H, lengths):
    return torch.arange(H.shape[1], device=H.device)[None, :] < lengths.to(H.device)[:, None]


def mean_by_loop(H, lengths):
    return torch.stack([H[b, : int(n)].mean(0) for b, n in enumerate(lengths)])


def mean_einsum(H, lengths):
    m = _mask(H, lengths).to(H.dtype)
    return torch.einsum("btd,bt->bd", H, m) / m.sum(1, keepdim=True)


def mean_where(H, lengths):
    keep = _mask(H, lengths).unsqueeze(-1)
    total = torch.where(keep, H, torch.zeros((), dtype=H.dtype, device=H.device)).sum(1)
    return total / lengths.to(H.device, H.dtype).unsqueeze(1)


MEANS = [mean_by_loop, mean_einsum, mean_where]


def max_by_loop(H, lengths):
    return torch.stack([H[b, : int(n)].max(dim=0).values for b, n in enumerate(lengths)])


def max_where_min(H, lengths):
    """The padded places set to the dtype's lowest value instead of -inf."""
    low = torch.finfo(H.dtype).min
    return torch.where(_mask(H, lengths)[..., None], H, torch.full_like(H, low)).max(dim=1).values


def max_masked_fill_amax(H, lengths):
    return H.masked_fill(~_mask(H, lengths).unsqueeze(2), -float("inf")).amax(1)


MAXES = [max_by_loop, max_where_min, max_masked_fill_amax]


# ----------------------------------------------------------------------------- SentimentRNN
class SentimentPlain(nn.Module):
    """F.dropout instead of a module call, pooling with mean_einsum and max_where_min."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell="lstm",
                 dropout=0.5, packed=False):  # fmt: skip
        super().__init__()
        self.packed, self.p = packed, dropout
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = kind(embed_size, num_hiddens, num_layers, batch_first=True, bidirectional=True,
                        dropout=dropout if num_layers > 1 else 0)  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * num_hiddens, 2)

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))
        if self.packed:
            packed = pack_padded_sequence(E, lengths.cpu(), batch_first=True, enforce_sorted=False)
            H = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=X.size(1))[
                0
            ]
        else:
            H = self.rnn(E)[0]
        pooled = torch.cat((mean_einsum(H, lengths), max_where_min(H, lengths)), dim=1)
        return self.fc(self.dropout(pooled))


class SentimentSortedPacking(SentimentPlain):
    """Sorts the batch by length itself (enforce_sorted=True), then puts the rows back."""

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))
        if self.packed:
            order = torch.argsort(lengths.cpu(), descending=True)
            packed = pack_padded_sequence(
                E[order.to(E.device)], lengths.cpu()[order], batch_first=True
            )
            H_sorted, _ = pad_packed_sequence(
                self.rnn(packed)[0], batch_first=True, total_length=X.shape[1]
            )
            H = torch.empty_like(H_sorted)
            H[order.to(E.device)] = H_sorted
        else:
            H, _ = self.rnn(E)
        pooled = torch.cat([mean_where(H, lengths), max_masked_fill_amax(H, lengths)], -1)
        return self.fc(self.dropout(pooled))


class SentimentSequentialPooling(SentimentPlain):
    """The pooling written inline, per sequence."""

    def forward(self, X, lengths):
        E = self.dropout(self.embedding(X))
        if self.packed:
            packed = pack_padded_sequence(E, lengths.cpu(), batch_first=True, enforce_sorted=False)
            H, _ = pad_packed_sequence(
                self.rnn(packed)[0], batch_first=True, total_length=X.shape[1]
            )
        else:
            H, _ = self.rnn(E)
        rows = [
            torch.cat([H[b, :n].mean(0), H[b, :n].amax(0)]) for b, n in enumerate(lengths.tolist())
        ]
        return self.fc(self.dropout(torch.stack(rows)))


MODELS = [SentimentPlain, SentimentSortedPacking, SentimentSequentialPooling]


# ----------------------------------------------------------------------------- train_one_epoch
def epoch_summed_loss(model, batches, optimizer, scaler, max_norm=1.0):
    """reduction="sum" per batch, divided by the number of examples at the end."""
    device = next(model.parameters()).device
    model.train()
    total, n = 0.0, 0
    for X, lengths, y in batches:
        optimizer.zero_grad()
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(X.to(device), lengths)
        loss_sum = F.cross_entropy(logits.float(), y.to(device), reduction="sum")
        scaler.scale(loss_sum / len(y)).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
        total, n = total + loss_sum.item(), n + len(y)
    return total / n


def epoch_autocast_only_on_cuda(model, batches, optimizer, scaler, max_norm=1.0):
    """An `if` around autocast: on the CPU there is none at all."""
    device = next(model.parameters()).device
    model.train()
    losses, sizes = [], []
    for X, lengths, y in batches:
        model.zero_grad(set_to_none=True)
        ctx = (
            torch.autocast("cuda", dtype=torch.float16)
            if device.type == "cuda"
            else contextlib.nullcontext()
        )
        with ctx:
            loss = F.cross_entropy(model(X.to(device), lengths).float(), y.to(device))
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm=max_norm)
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
        sizes.append(len(y))
    return sum(loss * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes)


def epoch_tensor_sums(model, batches, optimizer, scaler, max_norm=1.0):
    """The running total kept as a tensor, converted once at the end."""
    device = next(model.parameters()).device
    model.train(True)
    total, count = torch.zeros(()), 0
    for X, lengths, y in batches:
        optimizer.zero_grad(set_to_none=False)
        with torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"
        ):
            logits = model(X.to(device), lengths.to(device))
            loss = F.cross_entropy(logits.float(), y.to(device))
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
        total += loss.detach().cpu() * y.numel()
        count += y.numel()
    return (total / count).item()


EPOCHS = [epoch_summed_loss, epoch_autocast_only_on_cuda, epoch_tensor_sums]


# ----------------------------------------------------------------------------- evaluate
def evaluate_inference_mode(model, batches):
    model.eval()
    right = total = 0
    with torch.inference_mode():
        for X, lengths, y in batches:
            right += int((model(X, lengths).argmax(-1) == y).sum())
            total += y.numel()
    return right / total


def evaluate_collect_then_compare(model, batches):
    """Every prediction collected, then one comparison."""
    model.train(False)
    preds, labels = [], []
    with torch.no_grad():
        for X, lengths, y in batches:
            preds.append(model(X, lengths).argmax(dim=1))
            labels.append(y)
    return (torch.cat(preds) == torch.cat(labels)).float().mean().item()


def evaluate_softmax_threshold(model, batches):
    """P(positive) > 1/2 is the same decision as the argmax of two logits."""
    model.eval()
    correct, n = 0.0, 0
    for X, lengths, y in batches:
        with torch.no_grad():
            p = model(X, lengths).softmax(-1)[:, 1]
        correct += ((p > 0.5).long() == y).sum().item()
        n += len(y)
    return correct / n


EVALUATES = [evaluate_inference_mode, evaluate_collect_then_compare, evaluate_softmax_threshold]


# ----------------------------------------------------------------------------- save_checkpoint
def _checkpoint(model, vocab, model_config, max_len):
    return {
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "vocab": [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])],
        "model_config": model_config,
        "max_len": max_len,
    }


def save_named_temporary(path, model, vocab, model_config, max_len):
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        torch.save(_checkpoint(model, vocab, model_config, max_len), f)
    os.replace(f.name, path)


def save_path_replace(path, model, vocab, model_config, max_len):
    tmp = Path(str(path) + ".partial")
    torch.save(_checkpoint(model, vocab, dict(model_config), int(max_len)), tmp)
    tmp.replace(path)


def save_mkstemp(path, model, vocab, model_config, max_len):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(_checkpoint(model, vocab, model_config, max_len), f)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


SAVES = [save_named_temporary, save_path_replace, save_mkstemp]


# ----------------------------------------------------------------------------- predict
def predict_softmax_max(text, model, vocab, max_len):
    ids = clip(encode_preallocated(tokenize_finditer(text), vocab), max_len)
    model.eval()
    with torch.no_grad():
        probs = F.softmax(model(ids.unsqueeze(0), torch.tensor([ids.numel()])), dim=1)[0]
    p, k = probs.max(dim=0)
    return CLASS_NAMES[int(k)], p.item()


def predict_sigmoid_of_difference(text, model, vocab, max_len):
    """With two classes, softmax's P(positive) is sigmoid(logit_1 - logit_0)."""
    ids = clip(encode_index_or_unk(tokenize_sub_then_findall(text), vocab), max_len)
    model.eval()
    with torch.no_grad():
        logits = model(ids[None], torch.tensor([len(ids)]))[0].double()
    p_pos = torch.sigmoid(logits[1] - logits[0]).item()
    return ("positive", p_pos) if p_pos > 0.5 else ("negative", 1 - p_pos)


def predict_through_collate(text, model, vocab, max_len):
    """A batch of one made by collate, as in training."""
    ids = clip(encode_as_tensor(tokenize_split_words(text), vocab), max_len)
    X, lengths, _ = collate_zeros([(ids, 0)])
    model.eval()
    with torch.no_grad():
        probs = model(X, lengths).softmax(-1).squeeze(0)
    k = int(torch.argmax(probs))
    return CLASS_NAMES[k], float(probs[k])


PREDICTS = [predict_softmax_max, predict_sigmoid_of_difference, predict_through_collate]


# ----------------------------------------------------------------------------- the proofs
@pytest.mark.parametrize("answer", TOKENIZERS, ids=by_name)
def test_tokenize_alternatives_pass(answer):
    check_tokenize(answer)
    passes_probe(LESSON, "tokenize", answer)


@pytest.mark.parametrize("answer", VOCABS, ids=by_name)
def test_build_vocab_alternatives_pass(answer):
    check_build_vocab(answer)
    passes_probe(LESSON, "build_vocab", answer)


@pytest.mark.parametrize("answer", ENCODERS, ids=by_name)
def test_encode_alternatives_pass(answer):
    check_encode(answer)
    passes_probe(LESSON, "encode", answer)


@pytest.mark.parametrize("answer", COLLATES, ids=by_name)
def test_collate_alternatives_pass(answer):
    check_collate(answer)
    passes_probe(LESSON, "collate", answer)


@pytest.mark.parametrize("answer", BUCKETS, ids=by_name)
def test_bucket_batches_alternatives_pass(answer):
    check_bucket_batches(answer)
    passes_probe(LESSON, "bucket_batches", answer)


@pytest.mark.parametrize("answer", MEANS, ids=by_name)
def test_masked_mean_alternatives_pass(answer):
    check_masked_mean(answer)
    passes_probe(LESSON, "masked_mean", answer)


@pytest.mark.parametrize("answer", MAXES, ids=by_name)
def test_masked_max_alternatives_pass(answer):
    check_masked_max(answer)
    passes_probe(LESSON, "masked_max", answer)


@pytest.mark.parametrize("answer", MODELS, ids=by_name)
def test_sentiment_rnn_alternatives_pass(answer):
    check_sentiment_rnn(answer)
    check_sentiment_rnn_ignores_padding(answer)
    passes_probe(LESSON, "SentimentRNN", answer)


@pytest.mark.parametrize("answer", EPOCHS, ids=by_name)
def test_train_one_epoch_alternatives_pass(answer):
    check_train_one_epoch(answer)
    passes_probe(LESSON, "train_one_epoch", answer)


@pytest.mark.parametrize("answer", EVALUATES, ids=by_name)
def test_evaluate_alternatives_pass(answer):
    check_evaluate(answer)
    passes_probe(LESSON, "evaluate", answer)


@pytest.mark.parametrize("answer", SAVES, ids=by_name)
def test_save_checkpoint_alternatives_pass(answer):
    check_save_checkpoint(answer, SentimentPlain)
    passes_probe(LESSON, "save_checkpoint", answer)


@pytest.mark.parametrize("answer", PREDICTS, ids=by_name)
def test_predict_alternatives_pass(answer):
    check_predict(answer)
    passes_probe(LESSON, "predict", answer)
