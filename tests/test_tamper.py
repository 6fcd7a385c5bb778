"""Adversarial submissions: each tries one trick and must get exactly the score it deserves.

One class of submissions, graded in one run with two workers (the run must go on through all
of them). Each trick is applied to lesson 01 (without its training section, see
test_grading_support) by a student whose other answers are the reference, so the expected
score is full marks minus the tests that the cheated or broken exercise deserves to lose.
"""

import base64
import csv
import pickle
import time

import nbformat
import pytest

from rnncourse_grader import batch, grading, pipeline, sandbox
from rnncourse_grader.outcome import Status
from tests.test_grading_support import (
    FULL,
    LESSON,
    cell_scores,
    edit,
    expected,
    reference_answers,
    submit,
    trimmed_course,
)

pytestmark = pytest.mark.notebook
REF = reference_answers()
STUB_COUNT = "def rnn_num_params(input_size, num_hiddens, num_outputs):\n    return 0\n"
WRONG_LOSS = "def sequence_loss(logits, targets, mask):\n    return logits.sum() * 0 + 1.0\n"
CELL_VIA_TORCH = """
def rnn_cell_forward(x_t, h_prev, W_xh, W_hh, b_h):
    cell = torch.nn.RNNCell(W_xh.shape[0], W_xh.shape[1]).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(W_xh.T)
        cell.weight_hh.copy_(W_hh.T)
        cell.bias_ih.copy_(b_h)
        cell.bias_hh.zero_()
    return cell(x_t, h_prev)
"""


class _Patch:
    """Unpickling it runs code: the pickled-checkpoint trick."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _without(grade_id):
    def change(nb):
        nb.cells.remove(_cell(nb, grade_id))

    return change


def _test_cell_edited(nb):
    _cell(nb, "test_rnn_num_params_matches_torch").source = "pass"


def _test_cell_made_answer(nb):
    cell = _cell(nb, "test_rnn_num_params_matches_torch")
    cell.metadata.nbgrader.update(solution=True, grade=False, locked=False)
    cell.source = "pass"


def _duplicated_test_cell(nb):
    cell = _cell(nb, "test_rnn_num_params_matches_torch")
    copy = nbformat.from_dict(dict(cell))
    copy.source = "pass"
    copy["id"] = "duplicate"
    nb.cells.insert(nb.cells.index(cell) + 1, copy)


def _foreign_kernel(nb):
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "Evil", "language": "python"}


TRICKS = {
    "honest": dict(answers=REF, expect=expected()),
    "edited_test_cell": dict(
        answers={**REF, "rnn_num_params": STUB_COUNT},
        change=_test_cell_edited,
        expect=expected(count=1),
    ),
    "deleted_test_cell": dict(
        answers={**REF, "rnn_num_params": STUB_COUNT},
        change=_without("test_rnn_num_params_matches_torch"),
        expect=expected(count=1),
    ),
    "test_cell_turned_into_answer_cell": dict(
        answers={**REF, "rnn_num_params": STUB_COUNT},
        change=_test_cell_made_answer,
        expect=expected(count=1),
    ),
    "duplicate_grade_id": dict(
        answers={**REF, "rnn_num_params": STUB_COUNT},
        change=_duplicated_test_cell,
        expect=expected(count=1),
    ),
    "patched_torch_numpy_comparisons": dict(
        answers={
            **REF,
            "sequence_loss": "import numpy, torch, torch.testing\n"
            "torch.isclose = lambda *a, **k: torch.ones((), dtype=torch.bool)\n"
            "torch.testing.assert_close = lambda *a, **k: None\n"
            "numpy.allclose = lambda *a, **k: True\n" + WRONG_LOSS,
        },
        expect=expected(loss=1),
        integrity=["sequence_loss"],
    ),
    "builtin_comparison_always_equal": dict(
        answers={
            **REF,
            "rnn_num_params": "class _Eq(int):\n"
            "    def __eq__(self, other):\n        return True\n\n"
            "    def __ne__(self, other):\n        return False\n\n"
            "    __hash__ = int.__hash__\n\n\n"
            "def rnn_num_params(input_size, num_hiddens, num_outputs):\n    return _Eq(0)\n",
        },
        expect=expected(count=1),
        integrity=["rnn_num_params"],
    ),
    "patched_check_module": dict(
        answers={
            **REF,
            "rnn_forward": "import rnncourse.checks.rnn as _r\n"
            "_r.matches = lambda *a, **k: True\n\n\n"
            "def rnn_forward(X, h0, W_xh, W_hh, b_h):\n"
            "    B, T, _ = X.shape\n"
            "    return X.new_zeros(B, T, W_hh.shape[0]), X.new_zeros(B, W_hh.shape[0])\n",
        },
        expect=expected(forward=1, params=1),  # params is checked through rnn_forward
        integrity=["rnn_forward", "rnn_params_from_torch"],
    ),
    "fake_grader_in_sys_modules": dict(
        answers={
            **REF,
            "rnn_cell_forward": "import sys, types\nimport torch\n"
            "import rnncourse_grader.hidden as _real\n"
            "_fake = types.ModuleType('rnncourse_grader.hidden')\n"
            "_fake.__dict__.update({k: v for k, v in vars(_real).items() if k[:2] != '__'})\n"
            "_fake.check_rnn_cell_forward_hidden = lambda fn: print('Hidden checks passed.')\n"
            "sys.modules['rnncourse_grader.hidden'] = _fake\n" + CELL_VIA_TORCH,
        },
        # the cell calls nn.RNNCell (cheat); rnn_forward, which calls the cell, then fails the
        # grader's cases honestly: both are checked outside the notebook
        expect=expected(cell=1, forward=1),
        integrity=["rnn_cell_forward", "rnn_forward"],
    ),
    "fake_grader_on_sys_path": dict(
        answers={
            **REF,
            "rnn_cell_forward": "import importlib, os, sys\nimport torch\n"
            "os.makedirs('rnncourse_grader/hidden', exist_ok=True)\n"
            "open('rnncourse_grader/__init__.py', 'w').close()\n"
            "with open('rnncourse_grader/hidden/__init__.py', 'w') as f:\n"
            "    f.write('def __getattr__(name):\\n    return lambda *a: None\\n')\n"
            "sys.path.insert(0, os.getcwd())\nimportlib.invalidate_caches()\n" + CELL_VIA_TORCH,
        },
        expect=expected(cell=1, forward=1),  # the integrity pass caught nn.RNNCell
    ),
    "calls_builtin_rnn_through_a_captured_reference": dict(
        answers={
            **REF,
            "rnn_forward": "_rnn_tanh = torch._VF.rnn_tanh  # captured before any guard\n\n\n"
            "def rnn_forward(X, h0, W_xh, W_hh, b_h):\n"
            "    B, T, _ = X.shape\n"
            "    h = h0 if h0 is not None else X.new_zeros(B, W_hh.shape[0])\n"
            "    params = [W_xh.T.contiguous(), W_hh.T.contiguous(), b_h, torch.zeros_like(b_h)]\n"
            "    out, h_n = _rnn_tanh(X, h[None], params, True, 1, 0.0, False, False, True)\n"
            "    return out, h_n[0]\n",
        },
        expect=expected(forward=1),
        integrity=["rnn_forward"],
    ),
    "sys_exit": dict(
        answers={**REF, "rnn_num_params": "import sys\nsys.exit('bye')\n" + REF["rnn_num_params"]},
        expect=expected(count=1),
    ),
    "os_exit_kills_the_kernel": dict(
        answers={**REF, "rnn_num_params": "import os\nos._exit(3)\n"},
        expect=expected(count=1, loss=1),  # the cells after the kernel died are not run
        event="kernel_died",
    ),
    "infinite_loop": dict(
        answers={
            **REF,
            "rnn_num_params": "def rnn_num_params(D, H, O):\n    while True:\n        pass\n",
        },
        expect=expected(count=1),
        event="cell_timeout",
    ),
    "hang_that_swallows_interrupts": dict(
        answers={
            **REF,
            "rnn_num_params": "def rnn_num_params(D, H, O):\n    while True:\n        try:\n"
            "            while True:\n                pass\n"
            "        except KeyboardInterrupt:\n            pass\n",
        },
        expect=expected(count=1, loss=1),
        event="kernel_hung",
    ),
    "memory_bomb": dict(
        answers={
            **REF,
            "rnn_num_params": "def rnn_num_params(D, H, O):\n    hoard = []\n    while True:\n"
            "        hoard.append(bytearray(50_000_000))\n",
        },
        expect=expected(count=1),
    ),
    "prints_megabytes": dict(
        answers={
            **REF,
            "rnn_num_params": "def rnn_num_params(D, H, O):\n"
            "    print(('x' * 999 + '\\n') * 8000)\n"
            "    return D * H + H * H + 2 * H + H * O + O\n",
        },
        expect=expected(),
        event="output_capped",
    ),
    "displayed_number_as_partial_credit": dict(
        answers={
            **REF,
            "rnn_num_params": "import sys\n\n\ndef rnn_num_params(D, H, O):\n"
            "    sys.displayhook(1)  # nbgrader reads a shown number as the score\n    return 0\n",
        },
        expect=expected(count=1),
    ),
    "invalid_json": dict(
        raw="{ this is not json",
        expect=expected(cell=1, forward=1, params=1, count=1, loss=1),
        status="student",
    ),
    "old_nbformat_3": dict(answers=REF, version=3, expect=expected()),
    "foreign_kernel_name": dict(answers=REF, change=_foreign_kernel, expect=expected()),
    "pickled_checkpoint_beside_the_notebook": dict(
        answers={
            **REF,
            "sequence_loss": "_state = torch.load('ckpt.pt', weights_only=False)\n" + WRONG_LOSS,
        },
        checkpoint=True,
        expect=expected(loss=1),
    ),
    "pickled_checkpoint_inside_the_notebook": dict(
        answers={
            **REF,
            "sequence_loss": "import base64, pickle\n"
            "pickle.loads(base64.b64decode('{payload}'))\n" + WRONG_LOSS,
        },
        inline_pickle=True,
        expect=expected(loss=1),
        integrity=["sequence_loss"],
    ),
    "background_process_outlives_the_kernel": dict(
        answers={
            **REF,
            "rnn_num_params": "import subprocess, sys\n"
            "_code = 'import time\\nwhile True:\\n'\n"
            '_code += \'    open(%r, "w").write("alive")\\n    time.sleep(0.3)\\n\'\n'
            "_child = [sys.executable, '-c', _code % {marker!r}]\n"
            "subprocess.Popen(_child, start_new_session=True)\n\n\n" + REF["rnn_num_params"],
        },
        expect=expected(),
        marker=True,
    ),
    "reads_the_instructors_solution": dict(
        answers={
            **REF,
            "rnn_num_params": "import pathlib\n"
            "_answers = pathlib.Path({solution!r}).read_text()\n\n\n" + REF["rnn_num_params"],
        },
        expect=expected(count=1) if sandbox.capabilities()["hide"] else expected(),
    ),
    "kills_the_grading_worker": dict(
        answers={**REF, "rnn_num_params": "import os, signal\nos.kill(os.getppid(), 9)\n"},
        # as root the kernel can kill its worker: a worker that dies is the grader's failure,
        # retried, then not graded (no zero: a person looks); as another user the kill is
        # refused, and only its exercise is lost
        expect=None,
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tamper")
    root, env, released = trimmed_course(tmp)
    markers = tmp / "markers"
    markers.mkdir()
    for name, trick in TRICKS.items():
        student = name.replace("_", "-")
        answers = dict(trick.get("answers", {}))
        for key, source in answers.items():
            if trick.get("inline_pickle"):
                code = (
                    "import torch\ntorch.isclose = lambda *a, **k: torch.ones((), dtype=torch.bool)"
                )
                payload = base64.b64encode(pickle.dumps(_Patch(code))).decode()
                source = source.replace("{payload}", payload)
            if trick.get("marker"):
                source = source.replace("{marker!r}", repr(str(markers / student)))
            source = source.replace(
                "{solution!r}",
                repr(str(pipeline.ROOT / "solutions" / LESSON / f"{LESSON}.py")),
            )
            answers[key] = source
        path = submit(root, env, released, student, answers)
        if "raw" in trick:
            path.write_text(trick["raw"])
        if trick.get("change"):
            edit(path, trick["change"])
        if trick.get("version") == 3:
            nb3 = nbformat.convert(nbformat.read(path, as_version=4), 3)
            path.write_text(nbformat.writes(nb3, version=3))
        if trick.get("checkpoint"):
            code = f"open({str(markers / student)!r}, 'w').write('unpickled')"
            (path.parent / "ckpt.pt").write_bytes(pickle.dumps(_Patch(code)))
    run = batch.grade_class(
        root=root,
        env=env,
        workers=2,
        limit_overrides=dict(cell_timeout=12, notebook_timeout=240, memory_mb=2048),
        salt="tamper-suite",
        progress=False,
    )
    results = {r.student.replace("-", "_"): r for r in run.results}
    return root, env, run, results, markers


def _status(trick: dict) -> Status:
    """A limit acting (or an unreadable file) is the student's own failure; else graded."""
    return Status(trick.get("status", "student" if "event" in trick else "graded"))


@pytest.mark.parametrize("name", [n for n, t in TRICKS.items() if t["expect"] is not None])
def test_each_trick_gets_exactly_the_score_it_deserves(graded, name):
    root, env, run, results, _ = graded
    trick, result = TRICKS[name], results[name]
    why = (result.status, result.message, result.events)
    assert result.status is _status(trick), why
    assert cell_scores(root, env, name.replace("_", "-")) == trick["expect"], why
    for event in [trick["event"]] if "event" in trick else []:
        assert event in {e.kind for e in result.events}
    if trick.get("integrity"):
        assert set(result.integrity_failures()) == set(trick["integrity"])
        assert result.flagged


def test_the_run_goes_on_and_the_honest_student_keeps_full_marks(graded):
    root, env, run, results, _ = graded
    assert len(run.results) == len(TRICKS)
    assert sum(cell_scores(root, env, "honest").values()) == FULL
    assert not results["honest"].flagged
    assert not run.tampered and not run.refused
    assert [c.full_marks() for c in run.canaries] == [True]


def test_a_student_who_kills_the_worker_is_not_graded_and_gets_no_zero(graded):
    root, env, run, results, _ = graded
    result = results["kills_the_grading_worker"]
    if result.status is Status.GRADER:  # root kernel: the worker died every time
        assert "worker died" in result.message and result.attempts == batch.MAX_ATTEMPTS
        assert [r.student for r in run.not_graded] == ["kills-the-grading-worker"]
        assert ("kills-the-grading-worker", LESSON) not in grading.scores(root, env)
        rows = {r["student"]: r for r in csv.DictReader(run.by_notebook.open())}
        assert rows["kills-the-grading-worker"]["score"] == ""
        assert rows["kills-the-grading-worker"]["status"] == "not graded"
        assert "NOT GRADED (1)" in run.summary and "worker died" in run.summary
    else:  # unprivileged kernel: the kill was refused
        assert cell_scores(root, env, "kills-the-grading-worker") == expected(count=1)


def test_student_files_are_never_unpickled_and_leftover_processes_are_killed(graded):
    _, _, _, results, markers = graded
    assert not (markers / "pickled-checkpoint-beside-the-notebook").exists()
    heartbeat = markers / "background-process-outlives-the-kernel"
    assert heartbeat.exists()  # it ran, writing every 0.3 s ...
    before = heartbeat.stat().st_mtime_ns
    time.sleep(1.0)
    assert heartbeat.stat().st_mtime_ns == before  # ... and was killed with its notebook
    assert results["background_process_outlives_the_kernel"].stray_processes_killed >= 1


def test_feedback_says_what_happened(graded):
    root, env, _, _, _ = graded
    feedback = pipeline.work_dir(root, env) / "feedback"

    def page(student):
        return (feedback / student / LESSON / f"{LESSON}.html").read_text()

    assert "the kernel exited with status 3" in page("os-exit-kills-the-kernel")
    assert "did not stop when interrupted" in page("hang-that-swallows-interrupts")
    assert "output over the size cap was dropped" in page("prints-megabytes")
    assert "invalid JSON" in page("invalid-json")
    assert "integrity check of rnn_forward" in page("patched-check-module")
    assert "was edited: the original was restored" in page("edited-test-cell")
    assert "was missing: the original was put back" in page("deleted-test-cell")
    assert len(page("prints-megabytes")) < 4_000_000
    assert not (feedback / "kills-the-grading-worker").exists()  # nothing for a not graded one
