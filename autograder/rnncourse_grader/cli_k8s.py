"""``course`` commands of a sharded run (a Kubernetes Indexed Job; see ``shards``, ``k8s``).

course grade [ID ...] --emit-k8s DIR --shards N [--parallelism P] [--image IMG]
                            freeze the class into N shards, write the Job and its objects
course grade-shard [--index I] [--workers N]
                            grade one shard (the index defaults to $JOB_COMPLETION_INDEX)
course merge-shards         check the shards against the plan and publish them
"""

import sys
from pathlib import Path

from rnncourse_grader import pipeline


def add_grade_options(p) -> None:
    """The ``course grade`` options that emit a Kubernetes run instead of grading here."""
    p.add_argument("--emit-k8s", metavar="DIR", help="write a sharded Kubernetes run to DIR")
    p.add_argument("--shards", type=int, default=10, help="with --emit-k8s: pods in all")
    p.add_argument("--parallelism", type=int, default=20, help="with --emit-k8s: pods at once")
    p.add_argument("--image", help="with --emit-k8s: the grader's container image")
    p.add_argument("--namespace", help="with --emit-k8s: the grading namespace")
    p.add_argument("--volume-name", help="with --emit-k8s: the PersistentVolume of the work folder")


def add_commands(sub) -> None:
    p = sub.add_parser("grade-shard", help="grade one shard of a planned run (a Job's pod)")
    p.add_argument("--index", help="the shard (default: $JOB_COMPLETION_INDEX)")
    p.add_argument("--workers", type=int, help="parallel workers (default: number of cores)")
    p.add_argument("--root", type=Path, default=pipeline.ROOT, help=argparse_hidden())
    p.set_defaults(func=grade_shard)
    p = sub.add_parser("merge-shards", help="publish a finished sharded run")
    p.add_argument("--root", type=Path, default=pipeline.ROOT, help=argparse_hidden())
    p.set_defaults(func=merge_shards)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def emit(args, limits: dict, root: Path = pipeline.ROOT, env: dict | None = None) -> int:
    """``course grade --emit-k8s DIR``: the plan in the work folder, the objects in DIR."""
    from rnncourse_grader import k8s, k8s_checks, shards

    try:
        plan = shards.make_plan(
            args.shards,
            root,
            env,
            lessons=args.ids or None,
            students=args.student,
            limit_overrides=limits,
        )
    except shards.ShardError as err:
        print(f"course grade: {err}", file=sys.stderr)
        return 1
    options = {
        "image": args.image,
        "namespace": args.namespace,
        "volume_name": getattr(args, "volume_name", None),
    }
    spec = k8s.JobSpec(
        shards=plan.count,
        parallelism=args.parallelism,
        **{k: v for k, v in options.items() if v},
    )
    manifests = k8s.build(spec)
    problems = k8s_checks.problems(manifests, spec)
    for line in problems:
        print(f"course grade: {line}", file=sys.stderr)
    if problems:
        return 1
    for path in k8s.write(manifests, Path(args.emit_k8s)):
        print(f"wrote {path}")
    total = sum(len(s) for s in plan.shards)
    print(
        f"{total} submission(s) in {plan.count} shard(s): "
        f"{shards.shards_dir(root, env) / 'plan.json'}\n"
        f"then: kubectl apply -f {args.emit_k8s}/0*.yaml -f {args.emit_k8s}/10-grade-job.yaml;"
        f" when it is complete: kubectl apply -f {args.emit_k8s}/20-merge-job.yaml"
    )
    return 0


def grade_shard(args) -> int:
    from rnncourse_grader import shards

    try:
        done = shards.grade_shard(shards.shard_index(args.index), args.root, workers=args.workers)
    except shards.ShardError as err:
        print(f"course grade-shard: {err}", file=sys.stderr)
        return 2
    refused = "".join(f"\nnot graded: {k}: {v}" for k, v in done.refused.items())
    print(f"shard {done.index} of {done.count} in {done.seconds:.0f} s{refused}")
    return 0


def merge_shards(args) -> int:
    from rnncourse_grader import shards
    from rnncourse_grader.outcome import GraderFault

    try:
        run = shards.merge_shards(args.root)
    except (shards.ShardError, GraderFault) as err:
        print(f"course merge-shards: {err}; nothing was published.", file=sys.stderr)
        return 2
    print(run.summary)
    print(f"grades: {run.csv}, {run.by_notebook.name}, {run.by_cell.name}")
    for lesson, why in run.refused.items():
        print(f"NOT PUBLISHED: {lesson}: {why}")
    for r in run.not_graded:
        print(f"REGRADE: course grade --student {r.student} {r.lesson}")
    return 0 if run.ok else 1
