"""The integrity pass for lesson 01, without nbgrader: honest code passes, cheats fail, with why."""

import json

import nbformat
import pytest

from rnncourse_grader import integrity
from rnncourse_grader.outcome import GraderFault
from tests import integrity_support as support
from tests.course import ROOT, solution_cells

LESSON = "01_rnn_forward"
RELEASED = ROOT / "lessons" / LESSON / f"{LESSON}.ipynb"
REF = solution_cells(LESSON)
ALL_TESTS = {t for p in integrity.lesson_spec(LESSON).probes for t in p.tests}


@pytest.fixture(scope="module")
def template():
    return nbformat.read(RELEASED, as_version=4)


def notebook(template, answers, added=()):
    return support.submission(template, answers, added)


def verdicts(template, answers, passed=ALL_TESTS, added=()):
    return support.verdicts(LESSON, template, answers, added=added, passed=passed, seed=7)


def test_the_reference_and_honest_variants_pass(template):
    honest = {
        **REF,
        # a helper in a cell the student added (its loop is not run, its function is)
        "rnn_cell_forward": "def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):\n"
        "    return my_tanh(x_t @ W_xh + h_prev @ W_hh + b_h)\n",
        # gradients set to None, a clipping that never acts, float(): still the same step
        "train_step": "def train_step(model, optimizer, X, Y, mask):\n"
        "    optimizer.zero_grad(set_to_none=True)\n"
        "    loss = sequence_loss(model(X), Y, mask)\n    loss.backward()\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1e6)\n"
        "    optimizer.step()\n    return float(loss)\n",
    }
    added = [
        "import torch\n\ndef my_tanh(z):\n    return torch.tanh(z)\n\n"
        "for _ in range(10**9):\n    pass\n"
    ]
    assert verdicts(template, REF) == {f: ("pass", "") for f in verdicts(template, REF)}
    got = verdicts(template, honest, added=added)
    assert all(status == "pass" for status, _ in got.values()), got


CHEATS = {
    "rnn_cell_forward": (
        "def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):\n"
        "    return torch.zeros_like(h_prev)\n",
        "h_t: largest difference",
    ),
    "rnn_forward": (
        "def rnn_forward(X, h0, W_xh, W_hh, b_h):\n"
        "    B, T, _ = X.shape\n"
        "    h = h0 if h0 is not None else X.new_zeros(B, W_hh.shape[0])\n"
        "    params = [W_xh.T.contiguous(), W_hh.T.contiguous(), b_h, torch.zeros_like(b_h)]\n"
        "    out, h_n = torch.ops.aten.rnn_tanh(\n"
        "        X, h[None], params, True, 1, 0.0, False, False, True\n    )\n"
        "    return out, h_n[0]\n",
        "calls PyTorch's built-in RNN",
    ),
    "rnn_params_from_torch": (
        REF["rnn_params_from_torch"].replace("rnn.bias_ih_l0 + rnn.bias_hh_l0", "rnn.bias_ih_l0"),
        "rnn_forward's output with your parameters: largest difference",
    ),
    "rnn_num_params": (
        "def rnn_num_params(D, H, O):\n    return float(D * H + H * H + 2 * H + H * O + O)\n",
        "expected an int",
    ),
    "sequence_loss": (
        REF["sequence_loss"].replace(
            "return (per_step * weights).sum()", "return (per_step * weights).sum().detach()"
        ),
        "does not require grad",
    ),
    "train_step": (
        "def train_step(model, optimizer, X, Y, mask):\n"
        "    return 0.0  # the training test's check was patched in the kernel\n",
        "one train_step called optimizer.step() 0 times",
    ),
}


def test_each_cheat_fails_with_what_is_wrong(template):
    got = verdicts(template, {**REF, **{f: src for f, (src, _) in CHEATS.items()}})
    for function, (_, message) in CHEATS.items():
        status, why = got[function]
        assert status == "fail" and message in why, (function, why)


def test_only_functions_that_passed_in_the_kernel_are_checked(template):
    got = verdicts(template, {}, passed={"test_rnn_num_params_matches_torch"})
    assert got.pop("rnn_num_params")[0] == "fail"  # the stub, checked because "it passed"
    assert {status for status, _ in got.values()} == {"not checked"}


def test_a_runner_that_dies_before_answering_is_the_graders_failure(template):
    """No verdict is made up for functions the runner never answered: the submission is
    retried by the batch, then not graded (see test_grading_faults)."""
    with pytest.raises(GraderFault, match=r"ended early \(exit status 3\) before it checked"):
        verdicts(template, {**REF, "rnn_num_params": "import os\nos._exit(3)\n"})


def test_a_runner_that_dies_after_answering_everything_keeps_its_verdicts(template):
    """Dying after the last answer (e.g. at exit) loses nothing: every verdict came back."""
    passed = {"test_rnn_cell_forward_matches_torch"}
    got = verdicts(template, {**REF, "sequence_loss": "import os\nos._exit(3)\n"}, passed)
    assert got["rnn_cell_forward"] == ("pass", "")


def test_expected_values_never_reach_the_students_process(template, monkeypatch):
    sent = []

    def spy(request, policy, timeout):
        sent.append(json.dumps(request))
        return [], "not run"

    monkeypatch.setattr(integrity, "_spawn", spy)
    with pytest.raises(GraderFault):  # the spy answers nothing
        integrity.run_pass(LESSON, notebook(template, REF), template, ALL_TESTS, seed=3, policy={})
    import numpy as np

    spec = integrity.lesson_spec(LESSON)
    rng = np.random.default_rng(3)
    for probe in spec.probes:
        for case in probe.cases(rng):
            want = probe.expected(case)
            tensors = want if isinstance(want, tuple) else (want,)
            for t in tensors:
                if hasattr(t, "numpy"):
                    blob = integrity.encode(t.detach().numpy())["__array__"]
                    assert blob not in sent[0]


def test_replies_are_plain_data():
    assert isinstance(integrity.decode_reply({"__type__": "Evil"}), integrity.Opaque)
    assert isinstance(
        integrity.decode_reply({"__array__": "AAAA", "dtype": "object", "shape": [1]}),
        integrity.Opaque,
    )
    garbled = {"__array__": "AAAA", "dtype": "float64", "shape": [100]}
    assert repr(integrity.decode_reply(garbled)) == "a garbled array"
