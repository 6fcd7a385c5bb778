"""The grader's own failures are never a student's zero: they are retried, then not graded.

Each test breaks one piece of the grading machinery with ``tests/faults/sitecustomize.py``
(put on the grading processes' PYTHONPATH) or with a limit, grades a small class of lesson 01
(without its training section) and checks what is written: right grades after a retry, or
nothing at all (no gradebook entry, no score in the CSVs, no feedback) and a run that says
which submissions to regrade.
"""

import csv
import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from rnncourse_grader import batch, grading, manifest, pipeline, sandbox
from rnncourse_grader.outcome import CellGrade, Event, GradeResult, GraderFault, Status, Verdict
from tests.test_grading_support import (
    LESSON,
    cell_scores,
    expected,
    reference_answers,
    submit,
    trimmed_course,
)

pytestmark = pytest.mark.notebook
REF = reference_answers()
FAULTS = Path(__file__).parent / "faults"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """One trimmed course; each test grades in a work folder of its own."""
    tmp = tmp_path_factory.mktemp("faults")
    return trimmed_course(tmp)


def _class(course, tmp: Path, fault=None, times=1, work=None, with_bob=False):
    """(root, env) with ada (the reference) submitted, and bob (a missing bias) if asked."""
    root, base_env, released = course
    env = {**base_env, "RNNCOURSE_WORK": str(work or tmp / "work")}
    if fault:
        counter = tmp / "fault"
        counter.mkdir(exist_ok=True)
        env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")])
        env["RNNCOURSE_TEST_FAULT"] = f"{fault}:{times}:{counter}"
    submit(root, env, released, "ada", REF)
    if with_bob:
        bias = REF["rnn_cell_forward"].replace(" + b_h)", ")")
        assert bias != REF["rnn_cell_forward"]
        submit(root, env, released, "bob", {**REF, "rnn_cell_forward": bias})
    return root, env


def _grade(root, env, workers=1, **limits):
    return batch.grade_class(
        root, env, workers=workers, salt="faults", progress=False, limit_overrides=limits
    )


def _nothing_written(root, env, run, students=("ada",)):
    assert not run.ok
    assert sorted(r.student for r in run.not_graded) == sorted(students)
    assert all(r.status is Status.GRADER for r in run.not_graded if r.lesson not in run.refused)
    scores = grading.scores(root, env)
    for student in students:
        assert (student, LESSON) not in scores  # no gradebook entry, so no zero
        assert not (pipeline.work_dir(root, env) / "feedback" / student).exists()
    rows = {r["student"]: r for r in csv.DictReader(run.by_notebook.open())}
    assert all(rows[s]["score"] == "" and rows[s]["status"] == "not graded" for s in students)
    cells = [r["student"] for r in csv.DictReader(run.by_cell.open())]
    assert not set(cells) & set(students)


BOB = expected(cell=1, forward=1, params=1)  # the layer and the loading use the cell


def _right_grades(root, env, run):
    assert run.ok, (run.summary, [(r.student, r.message) for r in run.not_graded])
    assert cell_scores(root, env, "ada") == expected()
    if any(r.student == "bob" for r in run.results):
        assert cell_scores(root, env, "bob") == BOB
    assert [c.full_marks() for c in run.canaries] == [True]


def test_kernels_listen_on_ipc_sockets_in_a_private_folder(tmp_path):
    """No TCP port is chosen before the kernel binds it: the cause of the start-up race."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    config = Config()
    pipeline.use_ipc(config, tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os")])
    client = NotebookClient(nb, config=config, kernel_name="python3")
    with client.setup_kernel():
        info = client.km.get_connection_info()
        sockets = sorted(p.name for p in tmp_path.iterdir())
    assert info["transport"] == "ipc" and info["ip"] == str(tmp_path.resolve() / "k")
    assert len(sockets) == 5 and all(s.startswith("k-") for s in sockets)


def test_a_kernel_that_fails_to_start_is_retried_and_graded_right(course, tmp_path):
    root, env = _class(course, tmp_path, "kernel_start", times=2, with_bob=True)
    run = _grade(root, env)
    _right_grades(root, env, run)
    assert run.retries == 2 and len(list((tmp_path / "fault").iterdir())) == 2
    assert max(r.attempts for r in run.results + run.canaries) >= 2


def test_a_kernel_that_never_starts_writes_nothing(course, tmp_path):
    root, env = _class(course, tmp_path, "kernel_start", times=999)
    run = _grade(root, env, workers=2)
    _nothing_written(root, env, run)
    canary = run.canaries[0]
    assert canary.attempts == batch.MAX_ATTEMPTS
    assert "the kernel did not start" in canary.message
    assert LESSON in run.refused and "NOT PUBLISHED" in run.summary


def test_a_worker_killed_mid_notebook_is_retried(course, tmp_path):
    root, env = _class(course, tmp_path, "worker_kill", times=1)
    run = _grade(root, env, workers=2)
    _right_grades(root, env, run)
    assert run.retries == 1


def test_a_kernel_killed_by_sigkill_is_retried_not_zeroed(course, tmp_path):
    """SIGKILL comes from outside (no limit of ours sends it): the machine's fault."""
    root, env = _class(course, tmp_path, "kernel_sigkill", times=1)
    run = _grade(root, env)
    _right_grades(root, env, run)
    assert run.retries == 1 and len(list((tmp_path / "fault").iterdir())) == 1


def test_a_canary_that_lost_points_to_the_integrity_pass_is_refused():
    """The override is a manual score of 0 over a full automatic score: it counts."""
    canary = GradeResult(0, batch.CANARY, LESSON, canary=True)
    canary.cells = [
        CellGrade("nb", "test_a", 2.0, auto_score=2.0),
        CellGrade("nb", "test_b", 3.0, auto_score=3.0, manual_score=0.0, overridden="differs"),
    ]
    assert not canary.full_marks()
    assert batch.canary_problem(canary).endswith("test_b: differs")
    canary.cells[1].manual_score = 3.0
    assert canary.full_marks() and batch.canary_problem(canary) is None


def test_an_integrity_runner_that_dies_is_not_a_zero(course, tmp_path):
    root, env = _class(course, tmp_path, "integrity_runner", times=999)
    run = _grade(root, env, workers=2)
    _nothing_written(root, env, run)
    assert "integrity runner ended early (exit status 3)" in run.canaries[0].message


def test_a_limit_the_reference_exceeds_publishes_nothing_and_keeps_old_grades(course, tmp_path):
    root, env = _class(course, tmp_path, with_bob=True)
    _right_grades(root, env, _grade(root, env, workers=2))
    feedback = pipeline.work_dir(root, env) / "feedback" / "ada" / LESSON / f"{LESSON}.html"
    page = feedback.read_text()
    run = _grade(root, env, workers=2, notebook_timeout=1)  # the reference cannot finish
    assert not run.ok and "reference notebook lost points" in run.refused[LESSON]
    assert "time limit" in run.refused[LESSON]
    assert cell_scores(root, env, "ada") == expected()  # the earlier grades stand, untouched
    assert cell_scores(root, env, "bob") == BOB
    assert feedback.read_text() == page


def test_a_lesson_whose_data_cannot_be_prepared_is_not_graded(course, tmp_path, monkeypatch):
    read = manifest.load

    def corrupt_archive(lesson, root=manifest.ROOT):
        broken = "raise SystemExit('the archive is corrupt')"
        return dataclasses.replace(read(lesson, root), prepare=broken)

    monkeypatch.setattr(manifest, "load", corrupt_archive)
    root, env = _class(course, tmp_path)
    run = _grade(root, env, workers=2)
    _nothing_written(root, env, run)
    assert "preparing its data failed: the archive is corrupt" in run.refused[LESSON]


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB file system for the work folder (root only: it is a tmpfs mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not sandbox.capabilities()["hide"]:
        pytest.skip("mounting a small file system needs root on Linux")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_in_the_work_folder_publishes_nothing(course, tmp_path, small_disk):
    root, env = _class(course, tmp_path, "fill_disk", times=1, work=small_disk / "work")
    env["RNNCOURSE_TEST_FAULT"] = f"fill_disk:1:{small_disk}"  # the workers fill the disk
    with pytest.raises(GraderFault, match="No space left on device"):
        _grade(root, env, workers=2)
    assert grading.scores(root, env) == {}
    assert not (small_disk / "work" / "feedback" / "ada").exists()


def test_course_grade_exits_non_zero_and_names_what_to_regrade(monkeypatch, capsys):
    not_graded = GradeResult(3, "cyd", LESSON).fail(Status.GRADER, "the grading worker died")
    run = batch.Run(
        results=[not_graded],
        canaries=[],
        refused={},
        csv=Path("grades.csv"),
        by_notebook=Path("by_notebook.csv"),
        by_cell=Path("by_cell.csv"),
        summary="",
        seconds=1.0,
        workers=1,
        tampered=[],
        retries=2,
    )
    monkeypatch.setattr(grading, "submitted", lambda: {LESSON: ["cyd"]})
    monkeypatch.setattr(batch, "grade_class", lambda **kwargs: run)
    assert grading.grade_all() == 1
    out = capsys.readouterr().out
    assert f"REGRADE: course grade --student cyd {LESSON}" in out and "not graded" in out

    def full_disk(**kwargs):
        raise GraderFault("publishing the grades failed: [Errno 28] No space left on device")

    monkeypatch.setattr(batch, "grade_class", full_disk)
    assert grading.grade_all() == 2
    assert "no new grades were published" in capsys.readouterr().out


def test_a_result_survives_its_trip_through_json():
    result = GradeResult(1, "ada", LESSON).fail(Status.STUDENT, "limits: kernel died")
    result.events = [Event("kernel_died", 4, "the kernel exited with status 3")]
    result.verdicts = [Verdict("rnn_forward", ("test_x",), "fail", "differs")]
    result.cells = [CellGrade("nb", "test_x", 2.0, auto_score=2.0)]
    back = GradeResult.from_json(result.to_json())
    assert back == result and back.status is Status.STUDENT
    assert back.events[0].note().startswith("cell 4: the kernel exited with status 3")
    assert not back.full_marks()  # a student outcome is never a clean reference
    assert GradeResult.from_json(back.fail(Status.GRADED, "").to_json()).full_marks()
