"""Grades do not depend on how busy the machine is.

Six kinds of submission (lessons 01 and 02, cut after their first graded sections: the
reference, the stub and a bug each) are graded four times each (24 submissions) with four
workers on two cores while a CPU hog runs, and at the same time once by a serial run (one
worker): many kernels start at once and every one is slow. The serial run's reference is its
canary (the same notebook, graded in the same worker). Every copy must get exactly the
per-cell grades of its kind in the serial run, and nothing may be left not graded.
"""

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from rnncourse_grader import batch, pipeline
from tests.course import make_submission, solution_cells
from tests.test_grading_support import cell_scores, trimmed_course

pytestmark = pytest.mark.notebook
BPTT = "02_bptt"
CUTS = {"01_rnn_forward": "## 3.", BPTT: "## 2."}


def _bug(answers: dict, grade_id: str, old: str, new: str) -> dict:
    assert old in answers[grade_id], (grade_id, old)
    return {**answers, grade_id: answers[grade_id].replace(old, new)}


def kinds() -> dict[tuple[str, str], dict[str, str]]:
    """(lesson, kind) -> answer cells."""
    rnn = {k: v for k, v in solution_cells("01_rnn_forward").items() if k != "train_step"}
    section_1 = ("rnn_cell_backward", "numerical_gradient")  # the answers before "## 2."
    bptt = {k: v for k, v in solution_cells(BPTT).items() if k in section_1}
    return {
        ("01_rnn_forward", "ref"): rnn,
        ("01_rnn_forward", "stub"): {},
        ("01_rnn_forward", "nobias"): _bug(rnn, "rnn_cell_forward", " + b_h)", ")"),
        (BPTT, "ref"): bptt,
        (BPTT, "stub"): {},
        (BPTT, "notanh"): _bug(bptt, "rnn_cell_backward", "dh_next * (1 - h_t**2)", "dh_next"),
    }


def _submit(root, env, copies: int, but=()) -> dict[tuple[str, str], tuple[str, str]]:
    """Write ``copies`` submissions of every kind not in ``but``; return (student, lesson) ->
    its (lesson, kind)."""
    work = pipeline.work_dir(root, env)
    placed = {}
    for (lesson, kind), answers in kinds().items():
        released = root / "lessons" / lesson / f"{lesson}.ipynb"
        for copy in range(copies if kind not in but else 0):
            student = f"{kind}-{copy}"
            make_submission(
                released, answers, work / "submitted" / student / lesson / f"{lesson}.ipynb"
            )
            placed[(student, lesson)] = (lesson, kind)
    return placed


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stress")
    root, env, _ = trimmed_course(tmp, CUTS)
    quiet = {**env, "RNNCOURSE_WORK": str(tmp / "serial")}
    busy = {**env, "RNNCOURSE_WORK": str(tmp / "busy")}
    for run_env in (quiet, busy):  # the released lessons' gradebook: no assignment to generate
        work = pipeline.work_dir(root, run_env)
        work.mkdir(parents=True)
        shutil.copyfile(pipeline.work_dir(root, env) / "gradebook.db", work / "gradebook.db")
    serial_kinds = _submit(root, quiet, copies=1, but=("ref",))
    busy_kinds = _submit(root, busy, copies=4)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:  # the serial run is one more load on the busy run, and vice versa: both must hold
        with ThreadPoolExecutor(1) as pool:
            later = pool.submit(batch.grade_class, root, quiet, workers=1, salt="s", progress=False)
            stressed = batch.grade_class(root, busy, workers=4, salt="s", progress=False)
            serial = later.result()
    finally:
        hog.kill()
        hog.wait()
    want = {serial_kinds[key]: cell_scores(root, quiet, *key) for key in serial_kinds}
    for canary in serial.canaries:
        want[(canary.lesson, "ref")] = {c.grade_id: c.score for c in canary.cells}
    got = {key: cell_scores(root, busy, *key) for key in busy_kinds}
    return serial, stressed, want, got, busy_kinds


def test_the_serial_grades_are_what_each_kind_deserves(runs):
    serial, _, want, _, _ = runs
    assert serial.ok and len(serial.results) == 4 and len(serial.canaries) == 2
    for lesson in CUTS:
        ref, stub = want[(lesson, "ref")], want[(lesson, "stub")]
        assert all(v > 0 for v in ref.values()) and not any(stub.values())
        for (other, kind), scores in want.items():
            if other == lesson and kind not in ("ref", "stub"):
                assert any(scores[g] < ref[g] for g in ref), (kind, scores)  # the bug costs


def test_four_workers_on_a_busy_machine_give_exactly_the_serial_grades(runs):
    _, stressed, want, got, busy_kinds = runs
    assert stressed.workers == 4 and len(stressed.results) == 24
    assert stressed.ok, [(r.student, r.lesson, r.message) for r in stressed.not_graded]
    for key, kind in busy_kinds.items():
        assert got[key] == want[kind], (key, kind)
    assert all(c.full_marks() for c in stressed.canaries) and len(stressed.canaries) == 2
