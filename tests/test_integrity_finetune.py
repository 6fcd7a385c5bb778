"""The integrity pass for lesson 07, without nbgrader: the reference and correct alternatives
pass, typical bugs behind no-op checks fail with a message that names them, malformed replies
are failures (never a grader crash), and transfer_encoder's two tests are judged apart."""

import importlib
import itertools
import json
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse import checks
from rnncourse.checks import CheckFailed
from rnncourse.classify import layer_groups
from rnncourse.lm import batchify
from rnncourse_grader import integrity, integrity_runner
from tests.course import lesson_functions, solution_cells
from tests.integrity_support import (
    NO_OP_CHECKS,
    as_answer,
    integrity_tests,
    passes_probe,
    probes_of,
    rejection,
    released,
    submission,
)

LESSON = "07_pretrain_finetune"
ANSWERS = ("no_test_leak", "lm_batches", "transfer_encoder", "freeze_until", "param_groups",
           "warmup_decay", "frozen_groups", "fine_tune_step")  # fmt: skip


# ----------------------------------------------------------------------------- alternatives
# Correct answers written otherwise than the reference; each must pass the notebook's check
# and every probe. They use what the notebook's setup cell imports (+ HELPERS).
def leak_loop(corpus_texts, test_texts):
    """A dict for lookups, the scan in one loop, the message built after it."""
    test, first, count = dict.fromkeys(test_texts), None, 0
    for i, text in enumerate(corpus_texts):
        if text in test:
            count += 1
            first = i if first is None else first
    if count:
        raise ValueError(f"found {count} test reviews in the corpus; first one: #{first}")


def leak_positions(corpus_texts, test_texts):
    """The positions by filter; a ValueError subclass."""

    class LeakError(ValueError):
        pass

    test = frozenset(test_texts)
    where = list(filter(lambda i: corpus_texts[i] in test, range(len(corpus_texts))))
    if where:
        raise LeakError(f"leak: first index {where[0]}, count {len(where)}")


def leak_intersection(corpus_texts, test_texts):
    """A set intersection first, the positions only when there is one."""
    if set(corpus_texts) & set(test_texts):
        test = set(test_texts)
        hits = [i for i, t in enumerate(corpus_texts) if t in test]
        raise ValueError(f"{len(hits)} leaked texts (first: {hits[0]})")
    return None


def batches_python(docs, eos_id, batch_size):
    """A list of ints, cut into rows by hand."""
    stream = []
    for doc in docs:
        stream += doc.tolist() + [eos_id]
    L = len(stream) // batch_size
    return torch.tensor(stream[: batch_size * L], dtype=torch.long).reshape(batch_size, L)


def batches_padded(docs, eos_id, batch_size):
    """Each document padded on the right with its <eos>."""
    return batchify(torch.cat([F.pad(doc, (0, 1), value=eos_id) for doc in docs]), batch_size)


def batches_filled(docs, eos_id, batch_size):
    """A tensor of <eos> with the documents written into it; rows by narrow and view."""
    stream = torch.full((sum(len(d) + 1 for d in docs),), eos_id, dtype=torch.long)
    at = 0
    for doc in docs:
        stream[at : at + len(doc)] = doc
        at += len(doc) + 1
    L = len(stream) // batch_size
    return stream.narrow(0, 0, batch_size * L).view(batch_size, L).clone()


def transfer_load_state_dict(lm, classifier):
    """Shapes compared as dicts first; then load_state_dict(strict=False), which copies."""

    def shapes(model):
        return {
            k: tuple(v.shape)
            for k, v in model.state_dict().items()
            if k.split(".")[0] in ("embedding", "rnn")
        }

    if shapes(lm) != shapes(classifier):
        raise ValueError(f"the encoders differ: {shapes(lm)} vs {shapes(classifier)}")
    encoder = {k: v for k, v in lm.state_dict().items() if k in shapes(classifier)}
    classifier.load_state_dict(encoder, strict=False)
    return sorted(encoder)


def transfer_parameters(lm, classifier):
    """named_parameters of both (the LM's tied fc is not an encoder name); copy_ per tensor."""
    source = {n: p for n, p in lm.named_parameters() if n.startswith(("embedding", "rnn"))}
    target = {n: p for n, p in classifier.named_parameters() if n.startswith(("embedding", "rnn"))}
    if source.keys() != target.keys():
        raise ValueError(f"names differ: {sorted(source.keys() ^ target.keys())[0]}")
    for name in source:
        if source[name].shape != target[name].shape:
            raise ValueError(f"{name} has another shape")
    with torch.no_grad():
        for name, p in target.items():
            p.copy_(source[name])
    return sorted(target)


def transfer_state_views(lm, classifier):
    """Writes through the classifier's state_dict (views of its parameters)."""
    mine, theirs = classifier.state_dict(), lm.state_dict()
    names = sorted(k for k in mine if not k.startswith("fc."))
    if names != sorted(k for k in theirs if not k.startswith("fc.")):
        raise ValueError("the encoders have different tensors")
    bad = [k for k in names if mine[k].shape != theirs[k].shape]
    if bad:
        raise ValueError(f"{bad[0]}: shapes differ")
    for k in names:
        mine[k].copy_(theirs[k])
    return names


def freeze_flags(model, k):
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad = i >= k
            if not p.requires_grad:
                p.grad = None


def freeze_all_then_some(model, k):
    model.requires_grad_(True)
    for group in layer_groups(model)[:k]:
        for p in group:
            p.requires_grad_(False)
            p.grad = None


def freeze_by_identity(model, k):
    frozen = {id(p) for p in itertools.chain(*layer_groups(model)[:k])}
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
        if id(p) in frozen:
            p.grad = None


def groups_power(model, base_lr, decay):
    groups = layer_groups(model)
    return [
        {"params": list(g), "lr": base_lr * decay ** -(len(groups) - 1 - i)}
        for i, g in enumerate(groups)
    ]


def groups_top_down(model, base_lr, decay):
    out, lr = [], base_lr
    for group in reversed(layer_groups(model)):
        out.append({"params": group, "lr": lr})
        lr /= decay
    return out[::-1]


def groups_named(model, base_lr, decay):
    """Extra keys AdamW keeps, rates as floats."""
    groups = layer_groups(model)
    return [
        {"params": g, "lr": float(base_lr / decay ** (len(groups) - 1 - i)), "name": f"g{i}"}
        for i, g in enumerate(groups)
    ]


def warmup_one_minus(u, total, warmup):
    if warmup and u < warmup:
        return (u + 1) / warmup
    return max(0.0, 1 - (u - warmup) / (total - warmup))


def warmup_numpy(u, total, warmup):
    """A numpy float, as np.clip returns it."""
    ramp = (u + 1) / warmup if u < warmup else (total - u) / (total - warmup)
    return np.clip(ramp, 0.0, 1.0)


def warmup_integers(u, total, warmup):
    if u < warmup:
        return (u + 1) / warmup
    return max(total - u, 0) / (total - warmup)


def frozen_if(u, num_groups, every):
    n = num_groups - 1 - u // every
    return n if n > 0 else 0


def frozen_loop(u, num_groups, every):
    frozen = num_groups - 1
    for _ in range(u // every):
        frozen = max(frozen - 1, 0)
    return frozen


def frozen_numpy(u, num_groups, every):
    """A numpy integer."""
    return np.clip(num_groups - 1 - np.floor_divide(u, every), 0, None)


def step_zero_not_none(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=False)
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # frozen ones have no gradient
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_clip_by_hand(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    model.zero_grad()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(norm) + 1e-6))
    for g in grads:
        g.mul_(scale)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def step_log_softmax(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    for p in model.parameters():
        p.grad = None
    loss = F.nll_loss(F.log_softmax(model(X, lengths), dim=-1), y)
    loss.backward()
    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_norm)
    optimizer.step()
    scheduler.step()
    return loss.detach().item()


CORPUS = {
    "no_test_leak": [leak_loop, leak_positions, leak_intersection],
    "lm_batches": [batches_python, batches_padded, batches_filled],
    "transfer_encoder": [transfer_load_state_dict, transfer_parameters, transfer_state_views],
    "freeze_until": [freeze_flags, freeze_all_then_some, freeze_by_identity],
    "param_groups": [groups_power, groups_top_down, groups_named],
    "warmup_decay": [warmup_one_minus, warmup_numpy, warmup_integers],
    "frozen_groups": [frozen_if, frozen_loop, frozen_numpy],
    "fine_tune_step": [step_zero_not_none, step_clip_by_hand, step_log_softmax],
}
HELPERS = "import itertools\nimport numpy as np\n"  # what the setup cell does not import
CHECKS = {  # answer -> the notebook's checks of it
    "no_test_leak": [checks.check_no_test_leak],
    "lm_batches": [checks.check_lm_batches],
    "transfer_encoder": [checks.check_transfer_encoder, checks.check_transfer_refuses_mismatches],
    "freeze_until": [checks.check_freeze_until],
    "param_groups": [checks.check_param_groups],
    "warmup_decay": [checks.check_warmup_decay],
    "frozen_groups": [checks.check_frozen_groups],
    "fine_tune_step": [checks.check_fine_tune_step],
}


def case_id(value) -> str:
    """A test id that is the same in every xdist worker: a function's name, not its address."""
    return getattr(value, "__name__", str(value))


@pytest.mark.parametrize(
    "function, answer", [(f, a) for f, alts in CORPUS.items() for a in alts], ids=case_id
)
def test_alternatives_pass_the_notebook_and_the_probes(function, answer):
    for check in CHECKS[function]:
        check(answer)
    passes_probe(LESSON, function, answer)


# ----------------------------------------------------------------------------- typical bugs
def leak_lowercased(corpus_texts, test_texts):  # "The plot" and "THE PLOT" are not the same
    test = {t.lower() for t in test_texts}
    hits = [i for i, t in enumerate(corpus_texts) if t.lower() in test]
    if hits:
        raise ValueError(f"{len(hits)} test reviews, the first at {hits[0]}")


def leak_never_raises(corpus_texts, test_texts):  # reports, does not refuse
    hits = [i for i, t in enumerate(corpus_texts) if t in set(test_texts)]
    return f"{len(hits)} leaks"


def leak_stripped(corpus_texts, test_texts):  # a space more is another text
    test = {t.strip() for t in test_texts}
    hits = [i for i, t in enumerate(corpus_texts) if t.strip() in test]
    if hits:
        raise ValueError(f"{len(hits)} test reviews, the first at {hits[0]}")


def leak_says_nothing(corpus_texts, test_texts):  # no count, no index
    if set(corpus_texts) & set(test_texts):
        raise ValueError("the corpus holds test reviews")


def batches_no_last_eos(docs, eos_id, batch_size):  # <eos> between documents only
    eos = torch.tensor([eos_id])
    pieces = [p for i, d in enumerate(docs) for p in ((eos, d) if i else (d,))]
    return batchify(torch.cat(pieces), batch_size)


def batches_skip_empty(docs, eos_id, batch_size):  # an empty review leaves no <eos>
    eos = torch.tensor([eos_id])
    pieces = [p for d in docs if len(d) for p in (d, eos)]
    return batchify(torch.cat(pieces or [eos[:0]]), batch_size)


def batches_eos_first(docs, eos_id, batch_size):  # <eos> before each document
    eos = torch.tensor([eos_id])
    return batchify(torch.cat([p for d in docs for p in (eos, d)]), batch_size)


def transfer_assigns_modules(lm, classifier):  # the classifier now trains the LM's tensors
    classifier.embedding, classifier.rnn = lm.embedding, lm.rnn
    return sorted(k for k in classifier.state_dict() if not k.startswith("fc."))


def transfer_resets_head(lm, classifier):  # a "fresh" head: not the classifier's own
    names = transfer_parameters(lm, classifier)
    classifier.fc.reset_parameters()
    return names


def transfer_half_then_refuse(lm, classifier):  # checks each name only when it gets there
    source, target = lm.state_dict(), classifier.state_dict()
    names = sorted(k for k in source.keys() | target.keys() if not k.startswith("fc."))
    with torch.no_grad():
        for name in names:
            if name not in source or name not in target or source[name].shape != target[name].shape:
                raise ValueError(f"{name} differs")
            target[name].copy_(source[name])
    return names


def transfer_embedding_only(lm, classifier):  # the LSTM stays random
    if lm.embedding.weight.shape != classifier.embedding.weight.shape:
        raise ValueError("vocabularies differ")
    if dict(lm.rnn.named_parameters()).keys() != dict(classifier.rnn.named_parameters()).keys():
        raise ValueError("the LSTMs differ")
    pairs = zip(lm.rnn.parameters(), classifier.rnn.parameters(), strict=True)
    if any(a.shape != b.shape for a, b in pairs):
        raise ValueError("the LSTMs differ")
    with torch.no_grad():
        classifier.embedding.weight.copy_(lm.embedding.weight)
    return sorted(k for k in classifier.state_dict() if not k.startswith("fc."))


def freeze_keeps_gradients(model, k):  # requires_grad only: AdamW moves them on momentum
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad_(i >= k)


def freeze_one_more(model, k):  # groups 0 .. k frozen
    for i, group in enumerate(layer_groups(model)):
        for p in group:
            p.requires_grad_(i > k)
            if i <= k:
                p.grad = None


def _forward_groups(model):  # groups by name, a reverse direction in no group
    groups = [list(model.embedding.parameters())]
    for j in range(model.rnn.num_layers):
        groups.append([p for n, p in model.rnn.named_parameters() if n.endswith(f"_l{j}")])
    return groups + [list(model.fc.parameters())]


def freeze_forward_only(model, k):
    for i, group in enumerate(_forward_groups(model)):
        for p in group:
            p.requires_grad_(i >= k)
            if i < k:
                p.grad = None


def groups_upside_down(model, base_lr, decay):  # the embedding gets base_lr
    return [{"params": g, "lr": base_lr / decay**i} for i, g in enumerate(layer_groups(model))]


def groups_one_for_all(model, base_lr, decay):
    return [{"params": list(model.parameters()), "lr": base_lr}]


def groups_forward_only(model, base_lr, decay):
    groups = _forward_groups(model)
    top = len(groups) - 1
    return [{"params": g, "lr": base_lr / decay ** (top - i)} for i, g in enumerate(groups)]


def warmup_from_one(u, total, warmup):  # the first update gets 0
    if u < warmup:
        return u / warmup
    return max(0.0, (total - u) / (total - warmup))


def warmup_ends_early(u, total, warmup):  # 0 at u = total - 1, negative at total
    if u < warmup:
        return (u + 1) / warmup
    return (total - 1 - u) / (total - 1 - warmup)


def warmup_no_guard(u, total, warmup):  # warmup = 0 divides by zero
    return min((u + 1) / warmup, (total - u) / (total - warmup))


def frozen_from_n(u, num_groups, every):  # the head frozen too at first
    return max(num_groups - u // every, 0)


def frozen_negative(u, num_groups, every):
    return num_groups - 1 - u // every


def step_no_scheduler(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def step_no_zero_grad(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_no_clipping(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_in_eval_mode(model, X, lengths, y, optimizer, scheduler, max_norm=1.0):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(X, lengths), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


WRONG = {  # answer -> [(bug, what the grader's message must say)]
    "no_test_leak": [
        (leak_lowercased, "raised ValueError .* near-copies.*character for character"),
        (leak_never_raises, "it accepted a corpus with one test review: raise ValueError"),
        (leak_stripped, "for a clean corpus with near-copies.*character for character"),
        (leak_says_nothing, "does not give the count and the first index"),
    ],
    "lm_batches": [
        (batches_no_last_eos, "the last document is followed by <eos> too"),
        (batches_skip_empty, r"lengths \[4, 0, 3, 2\]: every document, even an empty one, is"),
        (batches_eos_first, "<eos> goes after each document, not before"),
    ],
    "transfer_encoder": [
        (transfer_assigns_modules, "shares tensors with the language model"),
        (transfer_resets_head, r"the classifier's head changed \(fc\.weight\)"),
        (
            transfer_half_then_refuse,
            "refused a classifier with one LSTM layer more but had already",
        ),
        (transfer_embedding_only, r"classifier rnn\.\w+ is not the language model's"),
    ],
    "freeze_until": [
        (
            freeze_keeps_gradients,
            r"\(model, 1\): the embedding is frozen but keeps its old gradient",
        ),
        (freeze_one_more, r"\(model, 0\): the embedding \(group 0\) should be trainable"),
        (freeze_forward_only, r"bidirectional LSTM.*: LSTM layer 0 \(group 1\) should be"),
    ],
    "param_groups": [
        (groups_upside_down, r"group 0 \(the embedding\) has lr .*\(the head gets base_lr"),
        (groups_one_for_all, "1 groups for a 2-layer model; expected 4, one per layer group"),
        (groups_forward_only, r"bidirectional LSTM.*group 1 should hold .* LSTM layer 0"),
    ],
    "warmup_decay": [
        (
            warmup_from_one,
            r"warmup_decay\(0, 10, 3\) = 0.0; expected 0.3333 .*count updates from 0",
        ),
        (warmup_ends_early, r"warmup_decay\(4, 10, 3\) = 0.83.*; expected 0.8571 \(decay\)"),
        (warmup_no_guard, "total = 8, warmup = 0.*ZeroDivisionError"),
    ],
    "frozen_groups": [
        (frozen_from_n, r"frozen_groups\(0, 4, 5\) = 4.0; expected 3 \(the head trains from"),
        (frozen_negative, r"= -1.0; expected 0 \(never fewer than 0\)"),
    ],
    "fine_tune_step": [
        (step_no_scheduler, r"scheduler.step\(\) was never called"),
        (step_no_zero_grad, r"the old gradients were kept: call optimizer.zero_grad\(\)"),
        (step_no_clipping, "max_norm 0.001.*clip the norm of the gradients with clip_grad_norm_"),
        (step_in_eval_mode, r"the model ran in eval mode: call model.train\(\)"),
    ],
}
BEYOND_THE_NOTEBOOK = {freeze_forward_only, groups_forward_only}  # bidirectional models only


@pytest.mark.parametrize(
    "function, bug, why", [(f, b, w) for f, bugs in WRONG.items() for b, w in bugs], ids=case_id
)
def test_the_probes_reject_typical_bugs_with_why(function, bug, why):
    rejection(LESSON, function, bug, why)
    rejected = []
    for check in CHECKS[function]:
        try:
            check(bug)
            rejected.append(False)
        except CheckFailed:
            rejected.append(True)
    # the notebook's tests reject them too (never stricter), but for the bugs that only the
    # grader's bidirectional models show: right on the lesson's unidirectional ones
    assert any(rejected) != (bug in BEYOND_THE_NOTEBOOK), rejected


# one bug per answer through the whole pass, behind no-op checks; no other answer suffers
CHEATS = {
    function: (as_answer(bugs[0][0], function), why)
    for function, bugs, why in [
        ("no_test_leak", WRONG["no_test_leak"], "only a text equal to a test review"),
        ("lm_batches", WRONG["lm_batches"], "followed by <eos>"),
        ("transfer_encoder", WRONG["transfer_encoder"], "shares tensors"),
        ("freeze_until", WRONG["freeze_until"], "keeps its old gradient"),
        ("param_groups", WRONG["param_groups"], "the head gets base_lr"),
        ("warmup_decay", WRONG["warmup_decay"], "count updates from 0"),
        ("frozen_groups", WRONG["frozen_groups"], "the head trains from the first update"),
        ("fine_tune_step", WRONG["fine_tune_step"], "scheduler.step() was never called"),
    ]
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests(LESSON, CORPUS, HELPERS, CHEATS, None)


# ----------------------------------------------------------------------------- transfer_encoder
def test_transfer_encoder_has_one_probe_per_test_cell():
    """Copying carries its test and the outcome tests (they read the transferred model);
    refusing carries its own test only. Together: every test of transfer_encoder, once."""
    from rnncourse_grader import manifest

    probes = probes_of(LESSON, "transfer_encoder")
    assert [p.tests[0] for p in probes] == [
        "test_transfer_encoder_copies_exactly",
        "test_transfer_encoder_refuses_mismatches",
    ]
    tests = [t for p in probes for t in p.tests]
    assert sorted(tests) == sorted(manifest.load(LESSON).tests_of("transfer_encoder"))
    spec = integrity.lesson_spec(LESSON)
    assert len({p.key for p in spec.probes}) == len(spec.probes)
    assert {p.function for p in spec.probes} == set(ANSWERS)


def test_a_transfer_that_never_refuses_loses_the_refusal_test_only():
    """Behind no-op checks both transfer tests pass in the kernel; the grader takes back the
    refusal test's point only: the copy is right, and so are the outcome tests it carries."""
    never_refuses = (
        "def transfer_encoder(lm, classifier):\n"
        "    source, target = lm.state_dict(), classifier.state_dict()\n"
        "    names = sorted(k for k in target if k.startswith(('embedding.', 'rnn.'))\n"
        "                   and k in source and source[k].shape == target[k].shape)\n"
        "    with torch.no_grad():\n"
        "        for k in names:\n"
        "            target[k].copy_(source[k])\n"
        "    return names\n"
    )  # fmt: skip
    template = released(LESSON)
    answers = solution_cells(LESSON) | {"transfer_encoder": NO_OP_CHECKS + never_refuses}
    nb = submission(template, answers)
    passed = {t for p in integrity.lesson_spec(LESSON).probes for t in p.tests}
    with tempfile.TemporaryDirectory(prefix="integrity-") as home:
        policy = {"memory_mb": 3072, "tmp_base": home}
        report = integrity.run_pass(LESSON, nb, template, passed, seed=5, policy=policy)
    got = {v.tests[0]: (v.status, v.message) for v in report.verdicts}
    assert got["test_transfer_encoder_copies_exactly"] == ("pass", "")
    status, why = got["test_transfer_encoder_refuses_mismatches"]
    assert status == "fail" and "it accepted a classifier with" in why, why
    assert [v.function for v in report.failed] == ["transfer_encoder"]


# ----------------------------------------------------------------------------- malformed replies
def reference_replies(seed: int = 3):
    """(probe, its cases, the reference's outcomes through the runner's code and JSON)."""
    spec = integrity.lesson_spec(LESSON)
    module = importlib.import_module(spec.module)
    reference = lesson_functions(LESSON, *ANSWERS)
    rng = np.random.default_rng(seed)
    for probe in spec.probes:
        cases = probe.cases(rng)
        sent = json.loads(json.dumps([integrity.encode(c) for c in cases]))
        request = {"function": probe.function, "recipe": probe.recipe, "cases": sent}
        namespace = {probe.function: reference[probe.function]}
        reply = json.loads(json.dumps(integrity_runner.answer(module, namespace, request)))
        yield probe, cases, reply["outcomes"]


GARBAGE = [None, "x", 3, 2.5, True, [], [1, 2], {"a": 1}, torch.zeros(2, 3), [None] * 8]


def garbled(value) -> list:
    """Replies with one part replaced by garbage (a part may happen to be the honest one)."""
    if not isinstance(value, list):
        return []
    parts = [value[:i] + [g] + value[i + 1 :] for i in range(len(value)) for g in GARBAGE[:7]]
    return [*parts, value[:-1], [*value, None]]


def test_malformed_replies_fail_the_case_and_never_crash_the_grader():
    """Garbage fails every case; a part of a reply replaced (first two cases) never crashes."""
    for probe, cases, outcomes in reference_replies():
        assert integrity.judge(probe, cases, outcomes) is None, probe.key
        for n, (case, outcome) in enumerate(zip(cases, outcomes, strict=True)):
            value = integrity.decode_reply(outcome["value"])
            for i, bad in enumerate(GARBAGE + (garbled(value) if n < 2 else [])):
                reply = {"value": integrity_runner.encode(bad)}
                why = integrity.judge(probe, [case], [reply])  # raises if a compare crashed
                assert isinstance(why, str) or i >= len(GARBAGE), (probe.key, bad)
