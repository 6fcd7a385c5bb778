"""Importing a class's submissions and reading each one defensively (no kernels: fast)."""

import copy
import json
import zipfile

import nbformat
import pytest

from rnncourse_grader import importing, sanitize
from tests.course import ROOT

LESSONS = ["01_rnn_forward", "02_bptt"]
RELEASED = ROOT / "lessons" / "01_rnn_forward" / "01_rnn_forward.ipynb"


def _nb(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RELEASED.read_text())
    return path


@pytest.mark.parametrize(
    "rel, placed",
    [
        ("ada/01_rnn_forward/01_rnn_forward.ipynb", ("ada", "01_rnn_forward")),
        ("export/submitted/ada/02_bptt/02_bptt.ipynb", ("ada", "02_bptt")),
        ("bob/01_rnn_forward.ipynb", ("bob", "01_rnn_forward")),
        ("cyd_01_rnn_forward.ipynb", ("cyd", "01_rnn_forward")),
        ("doe.jane@uni.edu_02_bptt-1.ipynb", ("doe.jane@uni.edu", "02_bptt")),
        ("Jane Doe_01_rnn_forward (2).ipynb", ("Jane_Doe", "01_rnn_forward")),
    ],
)
def test_each_common_layout_is_placed(rel, placed):
    from pathlib import PurePosixPath

    assert importing.classify(PurePosixPath(rel), LESSONS) == placed


@pytest.mark.parametrize(
    "rel, reason",
    [
        ("01_rnn_forward.ipynb", "no student name"),
        ("ada/homework.ipynb", "not named after a lesson"),
        ("___01_rnn_forward.ipynb", "cannot be used as a student id"),
    ],
)
def test_what_cannot_be_placed_says_why(rel, reason):
    from pathlib import PurePosixPath

    assert reason in importing.classify(PurePosixPath(rel), LESSONS)


def test_a_zip_export_is_imported_and_everything_else_is_reported(tmp_path):
    src = tmp_path / "src"
    _nb(src / "ada_01_rnn_forward.ipynb")
    _nb(src / "bob" / "01_rnn_forward" / "01_rnn_forward.ipynb")
    old = _nb(src / "cyd_01_rnn_forward.ipynb")
    new = _nb(src / "cyd_01_rnn_forward-1.ipynb")
    (src / "notes.pdf").write_bytes(b"%PDF")
    _nb(src / "dan_homework.ipynb")
    _nb(src / "__MACOSX" / "ada_01_rnn_forward.ipynb")  # archive junk: ignored silently
    import os

    os.utime(old, (1_000_000_000, 1_000_000_000))
    os.utime(new, (2_000_000_000, 2_000_000_000))
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
        zf.writestr("../escape_01_rnn_forward.ipynb", "{}")
    report = importing.scan(archive, LESSONS, scratch=tmp_path / "x")
    assert [(p.student, p.lesson) for p in report.placed] == [
        ("ada", "01_rnn_forward"),
        ("bob", "01_rnn_forward"),
        ("cyd", "01_rnn_forward"),
    ]
    text = "\n".join(report.problems)
    assert "notes.pdf: not a notebook" in text
    assert "dan_homework.ipynb: 'dan_homework.ipynb' is not named after a lesson" in text
    assert "second submission of cyd/01_rnn_forward; kept the newer cyd_01_rnn_forward-1" in text
    assert "unsafe path" in text and not (tmp_path / "escape_01_rnn_forward.ipynb").exists()
    assert "MACOSX" not in text

    work = tmp_path / "work"
    (work / "submitted" / "ada" / "01_rnn_forward").mkdir(parents=True)
    (work / "submitted" / "ada" / "01_rnn_forward" / "stale.txt").write_text("old")
    importing.install(report, work)
    ada = work / "submitted" / "ada" / "01_rnn_forward"
    assert sorted(p.name for p in ada.iterdir()) == ["01_rnn_forward.ipynb"]  # replaced


# ----------------------------------------------------------------------------- sanitize
@pytest.fixture(scope="module")
def template():
    return nbformat.read(RELEASED, as_version=4)


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_unreadable_files_say_why(tmp_path):
    bad = tmp_path / "bad.ipynb"
    for content, reason in [
        ("{ not json", "invalid JSON"),
        ('{"cells": []}', "no nbformat version"),
        ('{"nbformat": 9, "nbformat_minor": 0, "cells": []}', "nbformat 9 is not supported"),
        (b"\xff\xfe", "not UTF-8"),
    ]:
        (bad.write_bytes if isinstance(content, bytes) else bad.write_text)(content)
        with pytest.raises(sanitize.Unreadable, match=reason):
            sanitize.read_submission(bad)


def test_old_nbformat_is_converted(tmp_path, template):
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(nbformat.convert(copy.deepcopy(template), 3), version=3))
    nb, notes = sanitize.read_submission(path)
    clean, _ = sanitize.sanitize(nb, template)
    assert _ids(clean) == _ids(template) and "old nbformat 3" in notes[0]


def test_graded_cells_are_restored_from_the_release(template):
    nb = copy.deepcopy(template)
    test = next(
        c
        for c in nb.cells
        if _ids(nbformat.v4.new_notebook(cells=[c]))[0] == "test_rnn_num_params_matches_torch"
    )
    test.source = "pass"  # edited test
    answer = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "rnn_forward"
    )
    answer.source = "def rnn_forward(*a):\n    return 1\n"
    answer.metadata.nbgrader["points"] = 100  # answer made into a test
    answer.metadata.nbgrader["grade"] = True
    nb.cells.remove(
        next(
            c
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id") == "test_sequence_loss_masks_padding"
        )
    )
    extra = nbformat.v4.new_code_cell(
        "x = 1", metadata={"nbgrader": {"grade": True, "grade_id": "mine", "points": 50}}
    )
    nb.cells.insert(3, extra)
    dup = nbformat.from_dict(json.loads(json.dumps(test)))
    dup["id"] = "dup"
    nb.cells.insert(nb.cells.index(test), dup)  # an earlier copy of the test cell
    nb.metadata["kernelspec"]["name"] = "evil"

    clean, notes = sanitize.sanitize(nb, template)
    graded = [g for g in _ids(clean) if g]
    assert graded == [g for g in _ids(template) if g]  # same graded cells, same order, once each
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in clean.cells if "nbgrader" in c.metadata}
    released = {
        c.metadata["nbgrader"]["grade_id"]: c for c in template.cells if "nbgrader" in c.metadata
    }
    for gid, cell in by_id.items():
        assert cell.metadata.nbgrader == released[gid].metadata.nbgrader
        if gid != "rnn_forward" and released[gid].metadata.nbgrader.get("locked"):
            assert cell.source == released[gid].source
    assert by_id["rnn_forward"].source == "def rnn_forward(*a):\n    return 1\n"
    assert clean.metadata["kernelspec"]["name"] == template.metadata["kernelspec"]["name"]
    text = "\n".join(notes)
    for fragment in [
        "'test_rnn_num_params_matches_torch' was edited",
        "'test_rnn_num_params_matches_torch' appears 2 times",
        "'rnn_forward' had changed metadata",
        "'test_sequence_loss_masks_padding' was missing",
        "'mine' is not part of the lesson",
        "kernel 'evil' replaced",
    ]:
        assert fragment in text
    nbformat.validate(clean)


def test_cells_that_lost_their_grading_metadata_are_recognised(template):
    """A notebook saved by an editor that drops cell metadata (nbgrader #424, #1398) keeps its
    answers: locked cells are known by their source, answer cells by the name they define.
    Without this every graded cell was "missing", put back as a stub, and graded zero."""
    nb = copy.deepcopy(template)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            gid = meta["grade_id"]
            cell.source = f"import math\n\n\ndef {gid}(*args):\n    return math.pi  # mine\n"
            answers[gid] = cell.source
        for key in ("nbgrader", "editable", "deletable"):
            cell.metadata.pop(key, None)
    later = nbformat.v4.new_code_cell("print(rnn_forward)")  # uses a name; defines none
    nb.cells.append(later)

    clean, notes = sanitize.sanitize(nb, template)
    assert _ids(clean) == _ids(template) + [None]  # every graded cell in its place, once
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in clean.cells if "nbgrader" in c.metadata}
    assert {gid: by_id[gid].source for gid in answers} == answers  # the student's answers kept
    assert answers and not any("was missing" in n for n in notes), notes
    assert sum("lost its grading metadata" in n for n in notes) == len(by_id)


def test_a_recognised_answer_is_the_last_cell_defining_it(template):
    nb = copy.deepcopy(template)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    gid = answer.metadata["nbgrader"]["grade_id"]
    answer.metadata.pop("nbgrader")
    answer.source = f"def {gid}(:\n    pass\n"  # a syntax error still names its function
    scratch = nbformat.v4.new_code_cell(
        f"def helper():\n    pass\n\n\ndef {gid}(x):\n    return x\n"
    )
    nb.cells.insert(nb.cells.index(answer) + 1, scratch)

    clean, notes = sanitize.sanitize(nb, template)
    graded = [c for c in clean.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid]
    assert [c.source for c in graded] == [scratch.source]  # one cell graded: the last one
    assert any(f"'{gid}' had lost its grading metadata" in n for n in notes)
