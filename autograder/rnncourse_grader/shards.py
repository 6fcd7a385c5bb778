"""Grade a class in shards (one per pod of a Kubernetes Indexed Job), then merge them.

The same per-submission code as ``course grade``: each shard runs ``batch``'s plan, pool and
workers on its slice of the class, and the merge publishes through ``batch.publish``, so a
sharded run gives exactly the grades of a local one. Three steps, three commands:

1. ``course grade --emit-k8s DIR`` (``make_plan``): the instructor's machine records the
   lessons in the gradebook and freezes the class into ``<work>/shards/plan.json``: which
   submissions each shard grades (round-robin over the sorted (lesson, student) pairs, each
   exactly once), the integrity salt and the limits. Shards only read the gradebook.
2. ``course grade-shard`` (``grade_shard``), in each pod: the index comes from
   ``JOB_COMPLETION_INDEX`` (set by Kubernetes for an Indexed Job). It grades its slice
   *and the reference canary of every lesson in it* (each pod is its own machine: a broken
   node shows in its own canary), and writes ``shard-<i>/``: the results, the autograded
   notebooks and feedback, and last ``shard.json``, which marks the shard complete.
3. ``course merge-shards`` (``merge_shards``): every shard must be complete and hold exactly
   the submissions the plan gave it; a lesson is published only if every shard's canary of it
   got full marks; then ``batch.publish`` writes the gradebook, the CSVs and the feedback.
"""

import dataclasses
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from rnncourse_grader import batch, pipeline, report
from rnncourse_grader.outcome import GradeResult
from rnncourse_grader.prepare import prepare

INDEX_ENV = "JOB_COMPLETION_INDEX"  # what Kubernetes sets in each pod of an Indexed Job
DONE = "shard.json"  # written last: a shard without it did not finish


class ShardError(Exception):
    """The shards do not add up to the plan: nothing is published."""


@dataclasses.dataclass(frozen=True, order=True)
class Entry:
    """One submission of the class: sorted by lesson, then student."""

    lesson: str
    student: str


@dataclasses.dataclass
class ShardPlan:
    """The class frozen for a sharded run: ``shards[i]`` is what pod ``i`` grades."""

    shards: list[list[Entry]]
    salt: str
    limits: dict = dataclasses.field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.shards)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> "ShardPlan":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ShardError(f"no readable shard plan at {path}: {err}") from err
        shards = [[Entry(**e) for e in shard] for shard in data["shards"]]
        return cls(shards=shards, salt=data["salt"], limits=data.get("limits") or {})


@dataclasses.dataclass
class ShardOutput:
    """What one shard wrote (``shard.json``): the results sit beside it in results.jsonl."""

    index: int
    count: int
    refused: dict[str, str]  # lesson -> why this shard could not grade it (prepare, canary)
    seconds: float
    workers: int
    retries: int


def split(entries: list[Entry], count: int) -> list[list[Entry]]:
    """Deal the sorted submissions round-robin into ``count`` shards (each exactly once)."""
    if count < 1:
        raise ValueError("a sharded run needs at least one shard")
    ordered = sorted(set(entries))
    return [ordered[i::count] for i in range(count)]


def check_split(entries: list[Entry], dealt: list[list[Entry]]) -> None:
    """Raise unless ``dealt`` holds every one of ``entries`` exactly once."""
    flat = sorted(e for shard in dealt for e in shard)
    if flat != sorted(set(entries)):
        lost = sorted(set(entries) - set(flat))
        twice = sorted({e for e in flat if flat.count(e) > 1})
        raise ShardError(f"the split lost {_names(lost)} and doubled {_names(twice)}")


def shards_dir(root: Path = pipeline.ROOT, env: dict | None = None) -> Path:
    return pipeline.work_dir(root, env) / "shards"


def make_plan(
    count: int,
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    lessons: list[str] | None = None,
    students: list[str] | None = None,
    limit_overrides: dict | None = None,
    salt: str | None = None,
) -> ShardPlan:
    """Freeze the class into ``count`` shards; record its lessons in the gradebook first."""
    work = pipeline.work_dir(root, env)
    found = [
        Entry(lesson, student) for student, lesson, _ in batch.submissions(work, lessons, students)
    ]
    if not found:
        raise ShardError(f"no submissions in {work / 'submitted'}")
    batch.ensure_assignments(sorted({e.lesson for e in found}), root, env)
    limits = {k: v for k, v in (limit_overrides or {}).items() if v is not None}
    plan = ShardPlan(split(found, count), salt or secrets.token_hex(16), limits)
    check_split(found, plan.shards)
    folder = shards_dir(root, env)
    shutil.rmtree(folder, ignore_errors=True)  # a new plan: no shard of an old one survives
    plan.save(folder / "plan.json")
    return plan


def shard_index(value: str | None = None) -> int:
    """The pod's shard: ``value`` or ``$JOB_COMPLETION_INDEX``."""
    raw = value if value is not None else os.environ.get(INDEX_ENV)
    if raw is None or not str(raw).isdigit():
        raise ShardError(f"no shard index: give --index or set {INDEX_ENV}")
    return int(raw)


# ----------------------------------------------------------------------------- a pod's shard
def grade_shard(
    index: int,
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> ShardOutput:
    """Grade shard ``index`` of the plan with ``batch``'s pool; write ``shard-<index>/``."""
    start, root = time.monotonic(), Path(root)
    folder = shards_dir(root, env)
    plan = ShardPlan.load(folder / "plan.json")
    if not 0 <= index < plan.count:
        raise ShardError(f"shard {index} does not exist: the plan has {plan.count}")
    mine, out = set(plan.shards[index]), folder / f"shard-{index}"
    shutil.rmtree(out, ignore_errors=True)  # a retried pod starts its shard over
    work = pipeline.work_dir(root, env)
    run_dir = Path(tempfile.mkdtemp(prefix=f"shard-{index}-", dir=batch._runs(work)))
    kernel_tmp = Path(tempfile.mkdtemp(prefix="rnncourse-kernels-"))
    try:
        jobs = _jobs(root, work, run_dir, plan, mine)
        batch.template_gradebook(work / "gradebook.db", run_dir / "template.db")
        n = max(1, min(workers or batch.default_workers(), len(jobs)))
        config = batch._worker_config(root, work, run_dir, kernel_tmp)
        pool = batch.Pool(n, config, run_dir, pipeline.tool_env(env))
        for lesson, why in prepare(sorted({e.lesson for e in mine}), env, root).items():
            pool.refuse(lesson, why)
        results, canaries = batch._collect(pool, jobs, progress)
        done = ShardOutput(index, plan.count, dict(pool.refused), 0.0, n, pool.retries)
        done.seconds = time.monotonic() - start
        _write_shard(out, results + canaries, done, run_dir)
    finally:
        shutil.rmtree(kernel_tmp, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    return done


def _jobs(root: Path, work: Path, run_dir: Path, plan: ShardPlan, mine: set[Entry]):
    """``batch.plan`` for this shard's lessons, kept to its submissions and their canaries."""
    lessons = sorted({e.lesson for e in mine})
    students = sorted({e.student for e in mine})
    if not mine:
        return []
    jobs = batch.plan(root, work, run_dir, lessons, students, plan.limits, plan.salt)
    jobs = [j for j in jobs if j.canary or Entry(j.lesson, j.student) in mine]
    missing = mine - {Entry(j.lesson, j.student) for j in jobs if not j.canary}
    if missing:
        gone = ", ".join(f"{e.student}/{e.lesson}" for e in sorted(missing))
        raise ShardError(f"planned submissions no longer in submitted/: {gone}")
    return jobs


def _write_shard(out: Path, results: list[GradeResult], done: ShardOutput, run_dir: Path):
    """The results (outputs copied beside them, by relative path), then ``shard.json``."""
    out.mkdir(parents=True)
    with (out / "results.jsonl").open("w") as lines:
        for result in sorted(results, key=lambda r: (r.lesson, r.canary, r.student)):
            if result.outputs and Path(result.outputs).is_dir():
                target = Path("outputs") / f"{result.job}"
                shutil.copytree(result.outputs, out / target)
                result.outputs = str(target)
            else:
                result.outputs = None
            lines.write(result.to_json() + "\n")
    for log in run_dir.glob("worker-*.log"):
        shutil.copyfile(log, out / log.name)
    temp = out / f"{DONE}.tmp"
    temp.write_text(json.dumps(dataclasses.asdict(done)))
    temp.replace(out / DONE)


# ----------------------------------------------------------------------------- the merge
@dataclasses.dataclass
class Shard:
    """A finished shard as the merge reads it."""

    done: ShardOutput
    results: list[GradeResult]  # the students'
    canaries: list[GradeResult]


def read_shard(folder: Path, index: int, plan: ShardPlan) -> Shard:
    """Shard ``index``, checked against the plan: complete, every submission exactly once."""
    out = folder / f"shard-{index}"
    try:
        done = ShardOutput(**json.loads((out / DONE).read_text()))
        lines = (out / "results.jsonl").read_text().splitlines()
    except (OSError, ValueError, TypeError) as err:
        raise ShardError(f"shard {index} did not finish (no {out / DONE}): {err}") from err
    if (done.index, done.count) != (index, plan.count):
        raise ShardError(f"shard {index} belongs to another plan ({done.index} of {done.count})")
    results, canaries = [], []
    for line in lines:
        result = GradeResult.from_json(line)
        if result.outputs:
            result.outputs = str(out / result.outputs)
        (canaries if result.canary else results).append(result)
    got = sorted(Entry(r.lesson, r.student) for r in results)
    if got != sorted(plan.shards[index]):
        extra = sorted(set(got) - set(plan.shards[index]))
        lost = sorted(set(plan.shards[index]) - set(got))
        twice = sorted({e for e in got if got.count(e) > 1})
        raise ShardError(
            f"shard {index} does not hold its planned submissions: missing {_names(lost)},"
            f" unplanned {_names(extra)}, duplicated {_names(twice)}"
        )
    return Shard(done, results, canaries)


def _names(entries: list[Entry]) -> str:
    return ", ".join(f"{e.student}/{e.lesson}" for e in entries) or "none"


def refusals(shards: list[Shard]) -> dict[str, str]:
    """Lesson -> why it is not published: a shard refused it, or a shard's canary of it
    (every shard that graded the lesson must have one) did not get full marks."""
    refused: dict[str, str] = {}
    for shard in shards:
        i = shard.done.index
        for lesson, why in shard.done.refused.items():
            refused.setdefault(lesson, f"shard {i}: {why}")
        canaries = {c.lesson: c for c in shard.canaries}
        for lesson in sorted({r.lesson for r in shard.results}):
            canary = canaries.get(lesson)
            why = (
                "no reference canary was graded" if canary is None else batch.canary_problem(canary)
            )
            if why:
                refused.setdefault(lesson, f"shard {i}: {why}")
    return refused


def merge_shards(root: Path = pipeline.ROOT, env: dict | None = None) -> batch.Run:
    """Publish a finished sharded run exactly as ``course grade`` publishes a local one."""
    start, root = time.monotonic(), Path(root)
    folder = shards_dir(root, env)
    plan = ShardPlan.load(folder / "plan.json")
    shards = [read_shard(folder, i, plan) for i in range(plan.count)]
    results = sorted((r for s in shards for r in s.results), key=lambda r: (r.lesson, r.student))
    refused = refusals(shards)
    work = pipeline.work_dir(root, env)
    published = batch.publish(results, refused, root, env, work / "gradebook.db")
    return batch.Run(
        results=results,
        canaries=[c for s in shards for c in s.canaries],
        refused=refused,
        csv=published.csv,
        by_notebook=published.by_notebook,
        by_cell=published.by_cell,
        summary=report.summary(results, refused),
        seconds=time.monotonic() - start,
        workers=sum(s.done.workers for s in shards),
        tampered=published.tampered,
        retries=sum(s.done.retries for s in shards),
        lms_files=published.lms_files,
    )
