"""The integrity pass for lesson 06, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

import dataclasses
import math
import tempfile
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse_grader import integrity
from tests import test_alternatives_lm as alt
from tests.course import solution_cells
from tests.integrity_support import (
    NO_OP_CHECKS,
    integrity_tests,
    rejection,
    released,
    submission,
)

LESSON = "06_language_model"

CORPUS = {
    "ngram_log_probs": alt.NGRAMS,
    "batchify": alt.BATCHIFIES,
    "stream_windows": alt.WINDOWS,
    "detach_state": alt.DETACHES,
    "CharLM": alt.CHAR_LMS,
    "evaluate_lm": alt.EVALUATES,
    "train_window": alt.TRAIN_WINDOWS,
    "sample": alt.SAMPLES,
}
# The alternatives call nothing of each other's (the train_window ones call the notebook's
# detach_state, which the probe replaces by the reference): only what the setup cell lacks.
HELPERS = "from collections import Counter\n"

CHEATS = {
    "ngram_log_probs": (  # N(h) + k: the smoothing forgets that V characters share it
        "def ngram_log_probs(train_ids, eval_ids, order, k, vocab_size):\n"
        "    from collections import Counter\n"
        "    t, e = train_ids.tolist(), eval_ids.tolist()\n"
        "    grams = Counter(tuple(t[i:i + order]) for i in range(len(t) - order + 1))\n"
        "    ctx = Counter(g[:-1] for g in grams.elements())\n"
        "    out = [math.log((grams[tuple(e[i - order + 1:i + 1])] + k)\n"
        "                    / (ctx[tuple(e[i - order + 1:i])] + k))\n"
        "           for i in range(order - 1, len(e))]\n"
        "    return torch.tensor(out, dtype=torch.float64)\n",
        "the log-probabilities: largest difference",
    ),
    "batchify": (  # the stream dealt out down the columns
        "def batchify(ids, batch_size):\n"
        "    L = len(ids) // batch_size\n"
        "    return ids[: batch_size * L].view(L, batch_size).T\n",
        "the ids run down the columns",
    ),
    "stream_windows": (  # full windows only: the short last one is dropped
        "def stream_windows(rows, num_steps):\n"
        "    L = rows.shape[1]\n"
        "    return [(rows[:, i:i + num_steps], rows[:, i + 1:i + 1 + num_steps])\n"
        "            for i in range(0, L - num_steps, num_steps)]\n",
        "are never a target (keep the shorter last window)",
    ),
    "detach_state": (  # a GRU's state is cut, an LSTM's tuple is handed back as it came
        "def detach_state(state):\n"
        "    return state.detach() if isinstance(state, torch.Tensor) else state\n",
        "the tensor still has a graph",
    ),
    "CharLM": (  # the given state never reaches the rnn
        "class CharLM(nn.Module):\n"
        "    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell='lstm',\n"
        "                 dropout=0.0, tie_weights=False):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(vocab_size, embed_size)\n"
        "        kind = {'rnn': nn.RNN, 'gru': nn.GRU, 'lstm': nn.LSTM}[cell]\n"
        "        self.rnn = kind(embed_size, num_hiddens, num_layers, batch_first=True)\n"
        "        self.dropout = nn.Dropout(dropout)\n"
        "        self.fc = nn.Linear(num_hiddens, vocab_size)\n"
        "        if tie_weights:\n"
        "            if embed_size != num_hiddens:\n"
        "                raise ValueError('e != h')\n"
        "            self.fc.weight = self.embedding.weight\n"
        "    def forward(self, X, state=None):\n"
        "        H, state = self.rnn(self.embedding(X))\n"
        "        return self.fc(H), state\n",
        "reading the text in two calls, the state carried, gives other logits",
    ),
    "evaluate_lm": (  # the mean of the window means: a short last window counts in full
        "def evaluate_lm(model, windows):\n"
        "    model.eval()\n"
        "    state, means = None, []\n"
        "    with torch.no_grad():\n"
        "        for X, Y in windows:\n"
        "            logits, state = model(X, state)\n"
        "            means.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),\n"
        "                                         Y.reshape(-1)).item())\n"
        "    nll = sum(means) / len(means)\n"
        "    return nll / math.log(2), math.exp(nll)\n",
        "not a mean of window means",
    ),
    "train_window": (  # the reference's step without clipping
        "def train_window(model, X, Y, state, optimizer, max_norm=1.0):\n"
        "    optimizer.zero_grad()\n"
        "    logits, state = model(X, state)\n"
        "    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    return loss.item(), detach_state(state)\n",
        "the gradient was not clipped",
    ),
    "sample": (  # draws from the global random state, not the generator
        "def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):\n"
        "    model.eval()\n"
        "    out = []\n"
        "    with torch.no_grad():\n"
        "        logits, state = model(prompt_ids[None], None)\n"
        "        for _ in range(num_chars):\n"
        "            z = logits[0, -1] / temperature\n"
        "            if top_k is not None:\n"
        "                z = z.masked_fill(z < torch.topk(z, top_k).values[-1], -math.inf)\n"
        "            next_id = torch.multinomial(z.softmax(-1), 1)\n"
        "            out.append(int(next_id))\n"
        "            logits, state = model(next_id[None], state)\n"
        "    return out\n",
        "the same seeded generator gave two different texts",
    ),
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("06_language_model", CORPUS, HELPERS, CHEATS, None)


# ----------------------------------------------------------------------------- beyond the cheats
def detach_tuples_only(state):  # a list [h, c] is not a tensor
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()


def train_window_squeezed_state(model, X, Y, state, optimizer, max_norm=1.0):
    optimizer.zero_grad()
    logits, state = model(X, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), state.detach().squeeze(0)  # (B, H): the GRU cannot take it back


def ngram_float32_codes(train_ids, eval_ids, order, k, vocab_size):
    """The n-grams as float32 numbers: exact on small vocabularies, merged past 2**24."""

    def codes(ids):
        n = len(ids) - order + 1
        out = torch.zeros(max(n, 0))
        for j in range(order if n > 0 else 0):
            out = out * vocab_size + ids[j : j + n].float()
        return out.tolist()

    grams = Counter(codes(train_ids))
    contexts = Counter()
    for code, n in grams.items():
        contexts[code // vocab_size] += n
    out = [math.log((grams[c] + k) / (contexts[c // vocab_size] + k * vocab_size))
           for c in codes(eval_ids)]  # fmt: skip
    return torch.tensor(out, dtype=torch.float64)


class CharLMFloat32Logits(alt.CharLMIfElse):
    def forward(self, X, state=None):
        logits, state = super().forward(X, state)
        return logits.float(), state


WRONG = {  # what the notebook's test also rejects (ngram: on the lesson's own sizes), and why
    "detach_state": (detach_tuples_only, "a list \\[h, c\\].*'list' object has no attribute"),
    "train_window": (train_window_squeezed_state, "not the model's state after this window"),
    "ngram_log_probs": (ngram_float32_codes, "V = 97, order 6.*largest difference"),
    "CharLM": (CharLMFloat32Logits, "the logits came back as torch.float32; expected float64"),
}


@pytest.mark.parametrize("function", list(WRONG))
def test_the_probes_reject_more_wrong_answers_with_why(function):
    answer, why = WRONG[function]
    others = {"detach_state": alt.detach_recursive} if function == "train_window" else {}
    rejection("06_language_model", function, answer, why, **others)


# ----------------------------------------------------------------------------- one probe a test
TEMPERATURE_ON_PROBABILITIES = (
    "def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):\n"
    "    model.eval()\n"
    "    out = []\n"
    "    with torch.no_grad():\n"
    "        logits, state = model(prompt_ids[None], None)\n"
    "        for _ in range(num_chars):\n"
    "            probs = torch.softmax(logits[0, -1].double(), -1) / temperature\n"
    "            next_id = torch.multinomial(probs / probs.sum(), 1, generator=generator)\n"
    "            out.append(int(next_id))\n"
    "            logits, state = model(next_id[None], state)\n"
    "    return out\n"
)


def test_sample_has_one_probe_per_test_cell():
    spec = integrity.lesson_spec(LESSON)
    probes = [p for p in spec.probes if p.function == "sample"]
    assert [p.tests for p in probes] == [
        ("test_sample_is_seeded_and_primed",),
        ("test_sample_temperature_and_top_k",),
    ]
    assert len({p.key for p in spec.probes}) == len(spec.probes)


def test_a_wrong_temperature_fails_only_the_temperature_probe():
    """Behind no-op checks both sampling tests pass in the kernel; the grader takes back the
    temperature test's points only: priming and seeding are right."""
    template = released(LESSON)
    answers = solution_cells(LESSON) | {"sample": NO_OP_CHECKS + TEMPERATURE_ON_PROBABILITIES}
    nb = submission(template, answers)
    passed = {t for p in integrity.lesson_spec(LESSON).probes for t in p.tests}
    with tempfile.TemporaryDirectory(prefix="integrity-") as home:
        policy = {"memory_mb": 3072, "tmp_base": home}
        report = integrity.run_pass(LESSON, nb, template, passed, seed=3, policy=policy)
    sampled = {v.tests: (v.status, v.message) for v in report.verdicts if v.function == "sample"}
    assert sampled[("test_sample_is_seeded_and_primed",)] == ("pass", "")
    status, why = sampled[("test_sample_temperature_and_top_k",)]
    assert status == "fail" and "temperature" in why, why


def test_a_method_may_judge_only_tests_of_its_answer(monkeypatch):
    from rnncourse_grader import integrity_lm

    wrong = integrity.Method("call", lambda rng: [], lambda case: None, lambda *a: None)
    wrong = dataclasses.replace(wrong, tests=("test_batchify_rows_follow_the_stream",))
    monkeypatch.setitem(integrity_lm.PROBES, "sample", (wrong,))
    with pytest.raises(ValueError, match="sample's probe judges"):
        integrity.lesson_spec(LESSON)


def _forgets_the_prompt(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):
    """A sampler that primes on the prompt's last id only (greedy: SumLMs are sure)."""
    out, (logits, state) = [], model(prompt_ids[-1:][None], None)
    for _ in range(num_chars):
        out.append(int(logits[0, -1].argmax()))
        logits, state = model(torch.tensor([[out[-1]]]), state)
    return out


@pytest.mark.parametrize("seed", range(200))
def test_every_draw_of_the_priming_cases_catches_a_sampler_that_forgets_the_prompt(seed):
    """Whatever the grading run's seed: a prompt whose other ids sum to 0 mod V would give
    the same text from its last id alone (regression: such draws let this sampler pass)."""
    from rnncourse_grader import integrity_lm

    rng = np.random.default_rng(seed)
    cases = integrity_lm.priming_cases(rng)
    ns = {"sample": _forgets_the_prompt}
    problems = [
        integrity_lm.sample_compare(integrity_lm.sample_run(ns, "sample", case), None, case)
        for case in cases
    ]
    assert any(p and "last prompt id alone" in p for p in problems), (cases, problems)
