"""Lesson 07's checks: the reference passes every one, each typical bug fails with its hint,
and a correct answer written in another style passes too."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse.checks import (
    CheckFailed,
    check_fine_tune_step,
    check_finetuned_checkpoint_file,
    check_finetuned_keeps_the_encoder,
    check_freeze_until,
    check_frozen_groups,
    check_lm_batches,
    check_no_test_leak,
    check_param_groups,
    check_transfer_encoder,
    check_transfer_refuses_mismatches,
    check_warmup_decay,
)
from rnncourse.checks.finetune import encoder_similarity
from rnncourse.classify import SentimentRNN, layer_groups
from rnncourse.data import IMDBSplit
from rnncourse.lm import RecurrentLM, batchify
from rnncourse.text import EOS, PAD, UNK, build_vocab, itos, tokenize
from tests.course import lesson_functions

LESSON = "07_pretrain_finetune"
GRADED = (
    "no_test_leak",
    "lm_batches",
    "transfer_encoder",
    "freeze_until",
    "param_groups",
    "warmup_decay",
    "frozen_groups",
    "fine_tune_step",
)


@pytest.fixture(scope="module")
def ref():
    return lesson_functions(LESSON, *GRADED)


def fails(check, *args, match=None):
    with pytest.raises(CheckFailed, match=match):
        check(*args)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


CHECKS = {
    "no_test_leak": [check_no_test_leak],
    "lm_batches": [check_lm_batches],
    "transfer_encoder": [check_transfer_encoder, check_transfer_refuses_mismatches],
    "freeze_until": [check_freeze_until],
    "param_groups": [check_param_groups],
    "warmup_decay": [check_warmup_decay],
    "frozen_groups": [check_frozen_groups],
    "fine_tune_step": [check_fine_tune_step],
}


def test_reference_passes_every_check(ref):
    for name, checks in CHECKS.items():
        for check in checks:
            check(ref[name])


@pytest.mark.parametrize("name", list(CHECKS))
def test_a_stub_fails_with_the_not_implemented_hint(name):
    for check in CHECKS[name]:
        fails(check, not_implemented, match="not implemented yet")


# ----------------------------------------------------------------------------- no_test_leak
def leak_never_raises(corpus_texts, test_texts):
    return [t for t in corpus_texts if t in set(test_texts)]


def leak_lowercase(corpus_texts, test_texts):
    test = {t.lower() for t in test_texts}
    bad = [i for i, t in enumerate(corpus_texts) if t.lower() in test]
    if bad:
        raise ValueError(f"{len(bad)} test reviews, first at {bad[0]}")


def leak_assert(corpus_texts, test_texts):
    bad = [i for i, t in enumerate(corpus_texts) if t in set(test_texts)]
    assert not bad, f"{len(bad)} test reviews, first at {bad[0]}"


def leak_vague(corpus_texts, test_texts):
    if set(corpus_texts) & set(test_texts):
        raise ValueError("the corpus holds test reviews")


def leak_other_style(corpus_texts, test_texts):
    """Correct: a generator, and a subclass of ValueError."""

    class Leak(ValueError):
        pass

    test = frozenset(test_texts)
    hits = [n for n, text in enumerate(corpus_texts) if text in test]
    if len(hits) > 0:
        raise Leak(f"found {len(hits)} leaked reviews; index {hits[0]} is the first")


@pytest.mark.parametrize(
    "bug, match",
    [
        (leak_never_raises, "accepted a corpus with one test review"),
        (leak_lowercase, "character for character"),
        (leak_assert, "expected a ValueError"),
        (leak_vague, "does not give the count and the first index"),
    ],
)
def test_no_test_leak_bugs_fail(bug, match):
    fails(check_no_test_leak, bug, match=match)


def test_no_test_leak_other_style_passes():
    check_no_test_leak(leak_other_style)


# ----------------------------------------------------------------------------- lm_batches
def batches_no_final_eos(docs, eos_id, batch_size):
    pieces = []
    for i, doc in enumerate(docs):
        pieces += [doc] + ([torch.tensor([eos_id])] if i < len(docs) - 1 else [])
    return batchify(torch.cat(pieces), batch_size)


def batches_eos_first(docs, eos_id, batch_size):
    stream = torch.cat([p for d in docs for p in (torch.tensor([eos_id]), d)])
    return batchify(stream, batch_size)


def batches_skip_empty(docs, eos_id, batch_size):
    stream = torch.cat([p for d in docs if len(d) for p in (d, torch.tensor([eos_id]))])
    return batchify(stream, batch_size)


def batches_columns(docs, eos_id, batch_size):
    stream = torch.cat([p for d in docs for p in (d, torch.tensor([eos_id]))])
    L = len(stream) // batch_size
    return stream[: batch_size * L].view(L, batch_size).T


def batches_float(docs, eos_id, batch_size):
    stream = torch.cat([p for d in docs for p in (d.float(), torch.tensor([float(eos_id)]))])
    return batchify(stream, batch_size)


def batches_other_style(docs, eos_id, batch_size):
    """Correct: a Python list, then one tensor."""
    flat = []
    for doc in docs:
        flat.extend(doc.tolist())
        flat.append(eos_id)
    n = len(flat) // batch_size
    return torch.tensor(flat[: n * batch_size]).reshape(batch_size, n)


@pytest.mark.parametrize(
    "bug, match",
    [
        (batches_no_final_eos, "the last document is followed by <eos> too"),
        (batches_eos_first, "goes after each document"),
        (batches_skip_empty, "even an empty one"),
        (batches_columns, "runs down the columns"),
        (batches_float, "dtype"),
    ],
)
def test_lm_batches_bugs_fail(bug, match):
    fails(check_lm_batches, bug, match=match)


def test_lm_batches_other_style_passes():
    check_lm_batches(batches_other_style)


# ----------------------------------------------------------------------------- transfer_encoder
def encoder_names(model):
    return sorted(k for k in model.state_dict() if k.startswith(("embedding.", "rnn.")))


def transfer_shares(lm, classifier):
    classifier.embedding, classifier.rnn = lm.embedding, lm.rnn
    return encoder_names(classifier)


def transfer_whole_state(lm, classifier):
    classifier.load_state_dict(lm.state_dict(), strict=False)  # fc too, when shapes fit
    return encoder_names(classifier)


def transfer_reinit_head(lm, classifier):
    with torch.no_grad():
        for name, t in classifier.state_dict().items():
            if name in encoder_names(classifier):
                t.copy_(lm.state_dict()[name])
    classifier.fc.reset_parameters()
    return encoder_names(classifier)


def transfer_embedding_only(lm, classifier):
    with torch.no_grad():
        classifier.embedding.weight.copy_(lm.embedding.weight)
    return ["embedding.weight"]


def transfer_no_checks(lm, classifier):
    """Copies name by name and fails half-way on a mismatch (a RuntimeError from copy_)."""
    source = lm.state_dict()
    with torch.no_grad():
        for name, t in classifier.state_dict().items():
            if name.startswith(("embedding.", "rnn.")):
                t.copy_(source[name])
    return encoder_names(classifier)


def transfer_copy_then_check(lm, classifier):
    source = lm.state_dict()
    with torch.no_grad():
        for name, t in sorted(classifier.state_dict().items()):
            if name.startswith(("embedding.", "rnn.")):
                if name not in source or source[name].shape != t.shape:
                    raise ValueError(f"{name} differs")
                t.copy_(source[name])
    extra = set(encoder_names(lm)) - set(encoder_names(classifier))
    if extra:
        raise ValueError(f"{sorted(extra)[0]} missing from the classifier")
    return encoder_names(classifier)


def transfer_other_style(lm, classifier):
    """Correct: load_state_dict of the encoder entries, strict about them."""
    src = {k: v for k, v in lm.state_dict().items() if k.startswith(("embedding", "rnn"))}
    dst = {k for k in classifier.state_dict() if k.startswith(("embedding", "rnn"))}
    if set(src) != dst or any(src[k].shape != classifier.state_dict()[k].shape for k in dst):
        raise ValueError("the encoders differ")
    classifier.load_state_dict({k: v.clone() for k, v in src.items()}, strict=False)
    return sorted(dst)


@pytest.mark.parametrize(
    "bug, match",
    [
        (transfer_shares, "shares tensors"),
        (transfer_reinit_head, "head changed"),
        (transfer_embedding_only, "rnn.* is not the language model's|is not the language"),
    ],
)
def test_transfer_encoder_bugs_fail_the_copy_check(bug, match):
    fails(check_transfer_encoder, bug, match=match)


@pytest.mark.parametrize(
    "bug, match",
    [
        (transfer_no_checks, "expected a ValueError|accepted"),
        (transfer_copy_then_check, "had already changed the classifier"),
        (transfer_whole_state, "expected a ValueError"),
    ],
)
def test_transfer_encoder_bugs_fail_the_refusal_check(bug, match):
    fails(check_transfer_refuses_mismatches, bug, match=match)


def test_transfer_encoder_other_style_passes():
    check_transfer_encoder(transfer_other_style)
    check_transfer_refuses_mismatches(transfer_other_style)


# ----------------------------------------------------------------------------- freeze_until
def freeze_keeps_grad(model, k):
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad_(i >= k)


def freeze_one_more(model, k):
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad_(i > k)
            if i <= k:
                p.grad = None


def freeze_never_unfreezes(model, k):
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            if i < k:
                p.requires_grad_(False)
                p.grad = None


def freeze_other_style(model, k):
    """Correct: by module, reverse order."""
    groups = layer_groups(model)
    for i in reversed(range(len(groups))):
        for p in groups[i]:
            p.requires_grad = not i < k
            if not p.requires_grad:
                p.grad = None


@pytest.mark.parametrize(
    "bug, match",
    [
        (freeze_keeps_grad, "keeps its old gradient"),
        (freeze_one_more, "should be frozen|should be trainable"),
        (freeze_never_unfreezes, "should be trainable"),
    ],
)
def test_freeze_until_bugs_fail(bug, match):
    fails(check_freeze_until, bug, match=match)


def test_freeze_until_other_style_passes():
    check_freeze_until(freeze_other_style)


# ----------------------------------------------------------------------------- param_groups
def groups_upside_down(model, base_lr, decay):
    return [{"params": g, "lr": base_lr / decay**i} for i, g in enumerate(layer_groups(model))]


def groups_one(model, base_lr, decay):
    return [{"params": list(model.parameters()), "lr": base_lr}]


def groups_multiplied(model, base_lr, decay):
    groups = layer_groups(model)
    return [
        {"params": g, "lr": base_lr * decay ** (len(groups) - 1 - i)} for i, g in enumerate(groups)
    ]


def groups_other_style(model, base_lr, decay):
    """Correct: built top down, then reversed; a tuple of params."""
    out, lr = [], base_lr
    for group in reversed(layer_groups(model)):
        out.append({"params": tuple(group), "lr": lr})
        lr /= decay
    return out[::-1]


@pytest.mark.parametrize(
    "bug, match",
    [
        (groups_upside_down, "the head gets base_lr"),
        (groups_one, "one per layer group"),
        (groups_multiplied, "expected base_lr / decay"),
    ],
)
def test_param_groups_bugs_fail(bug, match):
    fails(check_param_groups, bug, match=match)


def test_param_groups_other_style_passes():
    check_param_groups(groups_other_style)


# ----------------------------------------------------------------------------- schedules
def warmup_from_one(u, total, warmup):
    return u / warmup if u < warmup else max(0.0, (total - u) / (total - warmup))


def warmup_negative(u, total, warmup):
    return (u + 1) / warmup if u < warmup else (total - u) / (total - warmup + 1e-12) - (u == total)


def warmup_no_decay(u, total, warmup):
    return (u + 1) / warmup if u < warmup else 1.0


def warmup_other_style(u, total, warmup):
    """Correct: numpy interpolation."""
    import numpy as np

    if warmup == 0:
        return max(0.0, 1 - u / total)
    return float(np.interp(u, [-1, warmup - 1, warmup, total], [0, 1, 1, 0]))


@pytest.mark.parametrize(
    "bug, match",
    [
        (warmup_from_one, "count updates from 0"),
        (warmup_negative, "0, not negative"),
        (warmup_no_decay, r"\(decay\)"),
    ],
)
def test_warmup_decay_bugs_fail(bug, match):
    fails(check_warmup_decay, bug, match=match)


def test_warmup_decay_other_style_passes():
    check_warmup_decay(warmup_other_style)


def frozen_all(u, num_groups, every):
    return max(num_groups - u // every, 0)


def frozen_negative(u, num_groups, every):
    return num_groups - 1 - u // every


def frozen_other_style(u, num_groups, every):
    """Correct: a loop."""
    k = num_groups - 1
    for _ in range(u // every):
        k = k - 1 if k else 0
    return k


@pytest.mark.parametrize(
    "bug, match",
    [(frozen_all, "head trains from the first update"), (frozen_negative, "never fewer")],
)
def test_frozen_groups_bugs_fail(bug, match):
    fails(check_frozen_groups, bug, match=match)


def test_frozen_groups_other_style_passes():
    check_frozen_groups(frozen_other_style)


# ----------------------------------------------------------------------------- fine_tune_step
def step(model, X, lengths, y, optimizer, scheduler, max_norm=1.0, *, train=True, zero=True,
         clip=True, schedule=True, scheduler_first=False, item=True):  # fmt: skip
    if train:
        model.train()
    if zero:
        optimizer.zero_grad()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_norm)
    if scheduler_first:
        scheduler.step()
    optimizer.step()
    if schedule and not scheduler_first:
        scheduler.step()
    return loss.item() if item else loss


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"train": False}, "eval mode"),
        ({"zero": False}, "old gradients were kept"),
        ({"clip": False}, "clip the norm"),
        ({"schedule": False}, "never called"),
        ({"scheduler_first": True}, "before optimizer.step"),
        ({"item": False}, "as a float"),
    ],
)
def test_fine_tune_step_bugs_fail(flags, match):
    fails(check_fine_tune_step, lambda *a: step(*a, **flags), match=match)


# float(loss) is a correct way to return the loss; torch warns about it, the grade must not care.
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")
def test_fine_tune_step_clipping_all_parameters_passes():
    """Clipping over every parameter is the same: frozen ones have no gradient."""

    def clip_all(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
        model.train()
        optimizer.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(X, lengths), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        scheduler.step()
        return float(loss)

    check_fine_tune_step(clip_all)


# ----------------------------------------------------------------------------- the outcomes
@pytest.fixture
def reviews():
    """Reviews whose label is "has the word great", both classes interleaved."""
    texts = [f"a {'great' if i % 2 else 'dull'} film number {i}" for i in range(40)]
    labels = torch.tensor([i % 2 for i in range(40)])
    n = len(texts)
    split = IMDBSplit(texts, labels, labels * 9 + 1, torch.arange(n), torch.full((n,), -1))
    vocab = build_vocab([tokenize(t) for t in texts], specials=(PAD, UNK, EOS))
    return split, vocab


class KeywordRNN(SentimentRNN):
    """A classifier with the encoder's tensors of a SentimentRNN that calls a review positive
    iff it holds the word "great" (or, untrained, always negative)."""

    def __init__(self, vocab, learned: bool):
        super().__init__(len(vocab), 8, 8, dropout=0.0, bidirectional=False)
        self.great, self.learned = vocab["great"], learned

    def forward(self, X, lengths):
        has = (X == self.great).any(1).float() if self.learned else torch.zeros(len(X))
        return torch.stack([1 - has, has], 1)


def lm_and_classifier(vocab, *, transfer=True, learn=True, seed=0):
    """A language model and a classifier whose encoder was (or was not) copied from it."""
    torch.manual_seed(seed)
    lm = RecurrentLM(len(vocab), 8, 8, tie_weights=True)
    model = KeywordRNN(vocab, learn)
    if transfer:
        encoder = {k: v for k, v in lm.state_dict().items() if not k.startswith("fc")}
        model.load_state_dict(encoder, strict=False)
    return lm, model


def save_lm(path: Path, lm, vocab):
    state = {k: v for k, v in lm.state_dict().items()}
    torch.save({"state_dict": state, "vocab": itos(vocab), "model_config": {}}, path)
    return path


def test_kept_encoder_passes_for_a_transferred_trained_model(tmp_path, reviews):
    split, vocab = reviews
    lm, model = lm_and_classifier(vocab)
    check_finetuned_keeps_the_encoder(
        model, vocab, save_lm(tmp_path / "lm.pt", lm, vocab), split, 20
    )


def test_kept_encoder_fails_an_untransferred_model(tmp_path, reviews):
    split, vocab = reviews
    lm, model = lm_and_classifier(vocab, transfer=False)
    path = save_lm(tmp_path / "lm.pt", lm, vocab)
    fails(
        check_finetuned_keeps_the_encoder,
        model,
        vocab,
        path,
        split,
        20,
        match="transfer_encoder called",
    )


def test_kept_encoder_fails_an_untrained_model(tmp_path, reviews):
    split, vocab = reviews
    lm, model = lm_and_classifier(vocab, learn=False)
    path = save_lm(tmp_path / "lm.pt", lm, vocab)
    fails(
        check_finetuned_keeps_the_encoder, model, vocab, path, split, 20, match="did fine_tune_step"
    )


def test_kept_encoder_refuses_a_rebuilt_vocabulary(tmp_path, reviews):
    split, vocab = reviews
    lm, model = lm_and_classifier(vocab)
    path = save_lm(tmp_path / "lm.pt", lm, vocab)
    rebuilt = dict(reversed(list(vocab.items())))  # the same words, other ids
    rebuilt = {
        w: i
        for i, w in enumerate([PAD, UNK, EOS] + [w for w in rebuilt if w not in (PAD, UNK, EOS)])
    }
    fails(
        check_finetuned_keeps_the_encoder,
        model,
        rebuilt,
        path,
        split,
        20,
        match="reuse the pre-training",
    )


def test_kept_encoder_reports_a_missing_tensor(tmp_path, reviews):
    split, vocab = reviews
    lm, model = lm_and_classifier(vocab)
    wide = SentimentRNN(len(vocab), 8, 12, dropout=0.0, bidirectional=False)
    path = save_lm(tmp_path / "lm.pt", lm, vocab)
    fails(
        check_finetuned_keeps_the_encoder,
        wide,
        vocab,
        path,
        split,
        20,
        match="of the language model's shape",
    )


def test_encoder_similarity_is_near_zero_for_independent_weights():
    a = SentimentRNN(50, 16, 16, bidirectional=False).state_dict()
    b = RecurrentLM(50, 16, 16).state_dict()
    missing, similarity = encoder_similarity(a, b)
    assert missing == [] and abs(similarity) < 0.2


def classifier_checkpoint(path: Path, **change):
    config = dict(vocab_size=7, embed_size=4, num_hiddens=4, num_layers=1, cell="lstm",
                  dropout=0.0, bidirectional=False) | change  # fmt: skip
    model = SentimentRNN(**config)
    torch.save({"state_dict": model.state_dict(), "vocab": [PAD, UNK] + [str(i) for i in range(5)],
                "model_config": config, "max_len": 50}, path)  # fmt: skip
    return path


def test_checkpoint_file_check(tmp_path):
    check_finetuned_checkpoint_file(classifier_checkpoint(tmp_path / "ok.pt"))
    fails(
        check_finetuned_checkpoint_file, tmp_path / "missing.pt", match="no such|not found|missing"
    )
    bi = classifier_checkpoint(tmp_path / "bi.pt", bidirectional=True)
    fails(check_finetuned_checkpoint_file, bi, match="bidirectional")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": SentimentRNN(7, 4, 4, bidirectional=False)}, pickled)
    fails(check_finetuned_checkpoint_file, pickled, match="weights_only=True")
