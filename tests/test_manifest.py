"""Each lesson's manifest (solutions/<id>/lesson.toml) agrees with its notebook and drives
the grader; a manifest that disagrees or cannot be read is refused with a clear message."""

import dataclasses
import importlib

import jupytext
import nbformat
import pytest

from rnncourse_grader import limits, manifest, pipeline
from rnncourse_grader.manifest import ManifestError
from tests.course import scratch_course

LESSONS = pipeline.lesson_ids()


def source(lesson_id: str, root=pipeline.ROOT):
    return jupytext.read(root / "solutions" / lesson_id / f"{lesson_id}.py", fmt="py:percent")


@pytest.mark.parametrize("lesson_id", LESSONS)
def test_the_manifest_agrees_with_the_source_and_the_release(lesson_id):
    facts = manifest.load(lesson_id)
    assert manifest.problems(facts, source(lesson_id)) == []
    released = nbformat.read(pipeline.ROOT / "lessons" / lesson_id / f"{lesson_id}.ipynb", 4)
    assert manifest.problems(facts, released) == []
    assert not (pipeline.ROOT / "lessons" / lesson_id / manifest.FILENAME).exists()


def test_probes_exist_only_for_answers_the_manifest_lists():
    with_probes = [m for m in map(manifest.load, LESSONS) if m.integrity]
    assert with_probes, "no lesson names an integrity module"
    for facts in with_probes:
        probes = importlib.import_module(facts.integrity).PROBES
        assert set(probes) <= set(facts.answers), facts.lesson
        assert all(facts.tests_of(function) for function in probes), facts.lesson


# ----------------------------------------------------------------------------- problems
LESSON = "01_rnn_forward"


def _changed(facts, **changes):
    return dataclasses.replace(facts, **changes)


def _without(table: dict, name: str) -> dict:
    return {k: v for k, v in table.items() if k != name}


def test_problems_names_every_disagreement():
    facts, nb = manifest.load(LESSON), source(LESSON)
    cell, loss = "rnn_cell_forward", "test_sequence_loss_masks_padding"
    test = facts.tests[loss]
    cases = {
        "answer cell rnn_cell_forward has no entry in [answers]": _changed(
            facts,
            answers=_without(facts.answers, cell),
            tests={k: t for k, t in facts.tests.items() if cell not in t.grades},
        ),
        "[answers] lists extra, which is not an answer cell": _changed(
            facts, answers={**facts.answers, "extra": manifest.Answer("extra")}
        ),
        f"test cell {loss} has no entry in [tests]": _changed(
            facts, tests=_without(facts.tests, loss), points=facts.points - test.points
        ),
        f"{loss} is worth 2 in the notebook, 3 here": _changed(
            facts,
            tests={**facts.tests, loss: dataclasses.replace(test, points=3.0)},
            points=facts.points + 1,
        ),
        f"{loss} grades rnn_forward but never calls it": _changed(
            facts, tests={**facts.tests, loss: dataclasses.replace(test, grades=("rnn_forward",))}
        ),
        "the notebook's tests are worth 12 points; the manifest says 13": _changed(
            facts, points=13.0
        ),
        "sequence_loss forbids 'lstn'": _changed(
            facts,
            answers={**facts.answers, "sequence_loss": manifest.Answer("sequence_loss", "lstn")},
        ),
        "answer sequence_loss is graded by no test": _changed(
            facts,
            tests={
                **facts.tests,
                loss: dataclasses.replace(test, grades=("rnn_forward",), outcome=True),
            },
        ),
    }
    for message, wrong in cases.items():
        found = manifest.problems(wrong, nb)
        assert any(message in line for line in found), (message, found)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != loss]
    found = manifest.problems(facts, nb)
    assert f"[tests] lists {loss}, which is not a test cell of the notebook" in found


# ----------------------------------------------------------------------------- reading
GOOD = """points = 2
[limits]
cell_timeout = 5
[answers]
f = { forbid = "rnn" }
[tests]
test_f = { points = 2, grades = ["f"] }
"""


@pytest.mark.parametrize(
    "text, why",
    [
        (None, "missing (every lesson needs its manifest)"),
        ("points = ", "unreadable"),
        (GOOD.replace("points = 2\n", ""), "['points'] missing"),
        ("color = 'red'\n" + GOOD, "top level: unknown ['color']"),
        (GOOD.replace("cell_timeout", "cell_timout"), "limits: unknown ['cell_timout']"),
        (GOOD.replace('grades = ["f"]', 'grades = ["g"]'), "tests.test_f.grades: ['g'] are not in"),
        (
            GOOD.replace('{ forbid = "rnn" }', '{ forbids = "rnn" }'),
            "answers.f: unknown ['forbids']",
        ),
        (GOOD.replace("points = 2, ", ""), "tests.test_f: ['points'] missing"),
        (GOOD.replace("[limits]\ncell_timeout = 5", "limits = 3"), "limits should be a table"),
    ],
)
def test_a_broken_manifest_is_refused_with_its_path(tmp_path, text, why):
    folder = tmp_path / "solutions" / "09_x"
    folder.mkdir(parents=True)
    if text is not None:
        (folder / manifest.FILENAME).write_text(text)
    with pytest.raises(ManifestError) as err:
        manifest.load("09_x", tmp_path)
    assert str(folder / manifest.FILENAME) in str(err.value) and why in str(err.value)


def test_a_good_manifest_reads_as_typed_facts(tmp_path):
    folder = tmp_path / "solutions" / "09_x"
    folder.mkdir(parents=True)
    (folder / manifest.FILENAME).write_text('handed_in = ["model.pt"]\n' + GOOD)
    facts = manifest.load("09_x", tmp_path)
    assert facts.limits == limits.Limits(cell_timeout=5)
    assert facts.answers == {"f": manifest.Answer("f", "rnn")}
    assert facts.tests_of("f") == ("test_f",) and facts.points == 2.0
    assert facts.handed_in == ("model.pt",) and facts.prepare is None and facts.integrity is None


# ----------------------------------------------------------------------------- used by the grader
def test_limits_files_and_probes_come_from_the_manifest(tmp_path):
    root, _ = scratch_course(tmp_path, with_sources=False)
    path = manifest.path("05_imdb_sentiment", root)
    text = path.read_text()
    path.write_text(
        text.replace(
            'handed_in = ["imdb_model.pt"]', 'handed_in = ["imdb_model.pt", "vocab.json"]'
        ).replace("cell_timeout = 600", "cell_timeout = 7")
    )
    assert limits.for_lesson("05_imdb_sentiment", root).cell_timeout == 7
    assert limits.for_lesson("05_imdb_sentiment", root, cell_timeout=9).cell_timeout == 9
    assert pipeline.handed_in_files("05_imdb_sentiment", root) == ["imdb_model.pt", "vocab.json"]
    config = pipeline.nbgrader_config(root)
    assert config.Autograde.exclude_overwriting == {
        "05_imdb_sentiment": ["imdb_model.pt", "vocab.json"],
        "07_pretrain_finetune": ["imdb_finetuned.pt"],
    }
    assert "lesson.toml" in config.CourseDirectory.ignore

    from rnncourse_grader import integrity

    one = manifest.path(LESSON, root)
    one.write_text(one.read_text().replace('rnn_forward = { forbid = "rnn" }', "rnn_forward = {}"))
    probes = {p.function: p for p in integrity.lesson_spec(LESSON, root).probes}
    assert probes["rnn_forward"].forbid is None and probes["rnn_cell_forward"].forbid == "rnn"
    assert probes["train_step"].tests == ("test_train_step_learns_pattern",)
    two = manifest.path("02_bptt", root)
    two.write_text(two.read_text().replace('integrity = "rnncourse_grader.integrity_bptt"\n', ""))
    assert integrity.lesson_spec("02_bptt", root) is None  # no module named: no probes
