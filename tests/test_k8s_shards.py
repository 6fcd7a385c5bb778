"""The sharded run's bookkeeping without grading anything: the split deals every submission
to exactly one shard, and the merge refuses shards that do not add up to the plan (a shard
missing or unfinished, a submission dropped, duplicated or unplanned) and lessons whose
canary failed in any shard. Each check is shown to catch the bug it is for."""

import json
from pathlib import Path

import pytest

from rnncourse_grader import shards
from rnncourse_grader.outcome import CellGrade, GradeResult, Status
from rnncourse_grader.shards import Entry, ShardError, ShardOutput, ShardPlan

LESSON = "01_rnn_forward"


def _class(n: int) -> list[Entry]:
    return [Entry(lesson, f"s{i:03d}") for i in range(n) for lesson in (LESSON, "03_lstm")]


@pytest.mark.parametrize("n, count", [(1, 1), (7, 3), (50, 8), (3, 5)])
def test_split_deals_every_submission_to_exactly_one_shard(n, count):
    entries = _class(n)
    dealt = shards.split(list(reversed(entries)) + entries[:2], count)  # order and repeats
    assert len(dealt) == count
    flat = [e for shard in dealt for e in shard]
    assert sorted(flat) == sorted(set(entries))  # each once
    assert max(map(len, dealt)) - min(map(len, dealt)) <= 1  # balanced
    assert dealt == shards.split(entries, count)  # deterministic


@pytest.mark.parametrize(
    "bug",
    [
        lambda ordered, n: [ordered[i + 1 :: n] for i in range(n)],  # skips the first
        lambda ordered, n: [ordered[i::n] for i in range(n)] + [ordered[:1]],  # doubles one
    ],
)
def test_a_split_that_skips_or_doubles_a_submission_is_caught(bug):
    entries = _class(5)
    shards.check_split(entries, shards.split(entries, 3))
    with pytest.raises(ShardError, match="the split lost"):
        shards.check_split(entries, bug(sorted(entries), 3))


def test_split_needs_a_shard():
    with pytest.raises(ValueError):
        shards.split(_class(2), 0)


def test_the_shard_index_comes_from_the_job(monkeypatch):
    monkeypatch.setenv(shards.INDEX_ENV, "3")
    assert shards.shard_index() == 3
    assert shards.shard_index("1") == 1
    monkeypatch.delenv(shards.INDEX_ENV)
    with pytest.raises(ShardError):
        shards.shard_index()
    with pytest.raises(ShardError):
        shards.shard_index("-1")


def _result(student: str, lesson: str = LESSON, canary: bool = False, score: float = 2.0):
    cell = CellGrade(grade_id="t", notebook=lesson, auto_score=score, max_score=2.0)
    return GradeResult(0, student, lesson, cells=[cell], canary=canary)


def _write(folder: Path, index: int, count: int, results, refused=None) -> None:
    out = folder / f"shard-{index}"
    out.mkdir(parents=True)
    (out / "results.jsonl").write_text("".join(r.to_json() + "\n" for r in results))
    done = ShardOutput(index, count, refused or {}, 1.0, 1, 0)
    (out / shards.DONE).write_text(json.dumps(done.__dict__))


@pytest.fixture
def planned(tmp_path):
    """Two shards of three students, written as two finished pods would write them."""
    folder = shards.shards_dir(env=_env(tmp_path))
    plan = ShardPlan(shards.split([Entry(LESSON, s) for s in ("ada", "bob", "cyd")], 2), "s")
    plan.save(folder / "plan.json")
    canary = _result(shards.batch.CANARY, canary=True)
    for i, shard in enumerate(plan.shards):
        _write(folder, i, 2, [canary] + [_result(e.student) for e in shard])
    return folder, plan


def _env(tmp_path: Path) -> dict:
    return {"RNNCOURSE_WORK": str(tmp_path / "work")}


def test_finished_shards_that_match_the_plan_are_read(planned):
    folder, plan = planned
    read = [shards.read_shard(folder, i, plan) for i in range(plan.count)]
    assert sorted(r.student for s in read for r in s.results) == ["ada", "bob", "cyd"]
    assert shards.refusals(read) == {}


def _rewrite(folder: Path, index: int, plan: ShardPlan, change) -> None:
    lines = (folder / f"shard-{index}" / "results.jsonl").read_text().splitlines()
    (folder / f"shard-{index}" / "results.jsonl").write_text("\n".join(change(lines)) + "\n")


@pytest.mark.parametrize(
    "bug, match",
    [
        (lambda ls: ls[:-1], "missing"),  # a submission dropped
        (lambda ls: ls + ls[-1:], "duplicated"),  # a submission graded twice
        (lambda ls: ls + [_result("zed").to_json()], "unplanned"),  # one not in its slice
    ],
)
def test_a_shard_that_does_not_hold_its_slice_is_refused(planned, bug, match):
    folder, plan = planned
    _rewrite(folder, 0, plan, bug)
    with pytest.raises(ShardError, match=match):
        shards.read_shard(folder, 0, plan)


def test_a_missing_or_unfinished_shard_stops_the_merge(planned):
    folder, plan = planned
    (folder / "shard-1" / shards.DONE).unlink()  # the pod died before it finished
    with pytest.raises(ShardError, match="did not finish"):
        shards.read_shard(folder, 1, plan)
    other = ShardPlan(plan.shards + [[]], "s")  # a shard of a different plan
    with pytest.raises(ShardError, match="another plan"):
        shards.read_shard(folder, 0, other)


def test_merge_shards_publishes_nothing_when_a_shard_is_missing(planned, tmp_path):
    folder, _ = planned
    for path in sorted((folder / "shard-1").iterdir()):
        path.unlink()
    (folder / "shard-1").rmdir()  # the merge of a run that lost a pod
    with pytest.raises(ShardError, match="shard 1 did not finish"):
        shards.merge_shards(env=_env(tmp_path))
    assert not (tmp_path / "work" / "gradebook.db").exists()
    assert not (tmp_path / "work" / "grades.csv").exists()


def test_a_lesson_is_refused_when_any_shards_canary_failed(planned):
    folder, plan = planned
    read = [shards.read_shard(folder, i, plan) for i in range(plan.count)]
    read[1].canaries[0].cells[0].auto_score = 1.0  # this pod's node lost a point
    assert "shard 1" in shards.refusals(read)[LESSON]
    read[1].canaries.clear()  # a pod that graded no canary at all
    assert "no reference canary" in shards.refusals(read)[LESSON]


def test_a_lesson_refused_by_a_shard_stays_refused(planned):
    folder, plan = planned
    read = [shards.read_shard(folder, i, plan) for i in range(plan.count)]
    read[0].done.refused[LESSON] = "data cache missing"
    assert shards.refusals(read) == {LESSON: "shard 0: data cache missing"}
    failed = _result("ada").fail(Status.GRADER, "worker died")
    assert not failed.written  # not graded: publish writes nothing for it (batch's rule)


def test_the_commands_fail_cleanly_without_an_index_or_a_plan(monkeypatch, tmp_path, capsys):
    from rnncourse_grader import cli

    monkeypatch.setenv("RNNCOURSE_WORK", str(tmp_path / "work"))
    monkeypatch.delenv(shards.INDEX_ENV, raising=False)
    assert cli.main(["grade-shard"]) == 2
    assert shards.INDEX_ENV in capsys.readouterr().err
    monkeypatch.setenv(shards.INDEX_ENV, "0")
    assert cli.main(["grade-shard"]) == 2  # no plan in the work folder
    assert "no readable shard plan" in capsys.readouterr().err
    assert cli.main(["merge-shards"]) == 2
    assert "nothing was published" in capsys.readouterr().err


def test_a_pod_with_an_index_beyond_the_plan_grades_nothing(planned, tmp_path):
    with pytest.raises(ShardError, match="shard 5 does not exist: the plan has 2"):
        shards.grade_shard(5, env=_env(tmp_path))
