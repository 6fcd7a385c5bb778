"""A sharded run gives exactly the grades of ``course grade``: one class of lesson 01 (trimmed),
graded once locally and once as the Kubernetes Job would (``course grade --emit-k8s``, then
``course grade-shard`` per pod with the index in $JOB_COMPLETION_INDEX, then
``course merge-shards``), compared cell by cell and CSV row by row."""

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnncourse_grader import batch, cli_k8s, pipeline, shards
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
CLASS = {
    "ada": (REF, expected()),
    "bob": ({}, expected(cell=1, forward=1, params=1, count=1, loss=1)),  # the stub
    "cyd": (
        {**REF, "sequence_loss": REF["sequence_loss"].replace("/ weights.sum()", "")},
        expected(loss=1),
    ),
}
SHARDS = 2
COURSE = [str(Path(sys.executable).parent / "course")]


def _class(tmp: Path):
    root, env, released = trimmed_course(tmp)
    for student, (answers, _) in CLASS.items():
        submit(root, env, released, student, answers)
    return root, env


def _course(root: Path, env: dict, *args: str, index: int | None = None):
    """The ``course`` command as a pod runs it (the index only in the environment)."""
    run_env = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    run_env.pop(shards.INDEX_ENV, None)
    if index is not None:
        run_env[shards.INDEX_ENV] = str(index)
    return subprocess.run(
        [*COURSE, *args, "--root", str(root)], env=run_env, capture_output=True, text=True
    )


def _rows(path: Path, *keys: str) -> list[tuple]:
    return sorted(tuple(r[k] for k in keys) for r in csv.DictReader(path.open()))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    root, env = _class(tmp / "local")
    local = batch.grade_class(root, env, workers=1, salt="s", progress=False)
    local_cells = {s: cell_scores(root, env, s) for s in CLASS}
    root2, env2 = _class(tmp / "sharded")
    args = argparse.Namespace(
        shards=SHARDS, parallelism=SHARDS, ids=[], student=None, image=None, namespace=None
    )
    args.emit_k8s = str(tmp / "manifests")
    plan_salt = "s"
    assert cli_k8s.emit(args, {}, root2, env2) == 0
    plan_path = shards.shards_dir(root2, env2) / "plan.json"
    plan = shards.ShardPlan.load(plan_path)
    plan.salt = plan_salt  # the local run's salt: the same integrity inputs
    plan.save(plan_path)
    pods = [_course(root2, env2, "grade-shard", "--workers", "1", index=i) for i in range(SHARDS)]
    merged = _course(root2, env2, "merge-shards")
    sharded_cells = {s: cell_scores(root2, env2, s) for s in CLASS}
    return local, local_cells, plan, pods, merged, sharded_cells, root2, env2, tmp


def test_the_plan_splits_the_class_into_shards(both):
    _, _, plan, _, _, _, _, _, tmp = both
    assert plan.count == SHARDS and all(plan.shards)
    assert sorted(e.student for s in plan.shards for e in s) == sorted(CLASS)
    assert (tmp / "manifests" / "10-grade-job.yaml").is_file()


def test_each_pod_grades_its_shard_and_the_merge_publishes(both):
    _, _, _, pods, merged, _, _, _, _ = both
    for i, pod in enumerate(pods):
        assert pod.returncode == 0, pod.stderr
        assert f"shard {i} of {SHARDS}" in pod.stdout
    assert merged.returncode == 0, merged.stdout + merged.stderr


def test_sharded_grades_equal_the_local_run_cell_by_cell(both):
    local, local_cells, _, _, _, sharded_cells, root2, env2, _ = both
    assert local.ok, local.summary
    for student, (_, want) in CLASS.items():
        assert local_cells[student] == want, student
        assert sharded_cells[student] == local_cells[student], student
    work = pipeline.work_dir(root2, env2)
    keys = ("student", "grade_id", "score", "max_score")
    assert _rows(work / local.by_cell.name, *keys) == _rows(local.by_cell, *keys)
    assert _rows(work / "grades.csv", "student_id", "score") == _rows(
        local.csv, "student_id", "score"
    )


def test_each_shard_graded_its_own_canaries_and_feedback_is_published(both):
    _, _, plan, _, _, _, root2, env2, _ = both
    folder = shards.shards_dir(root2, env2)
    for i in range(SHARDS):
        shard = shards.read_shard(folder, i, plan)
        assert [c.lesson for c in shard.canaries] == [LESSON]
        assert shard.canaries[0].full_marks()
    feedback = pipeline.work_dir(root2, env2) / "feedback"
    for student in CLASS:
        assert (feedback / student / LESSON / f"{LESSON}.html").is_file()
