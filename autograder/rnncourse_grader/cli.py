"""``course``: the instructor's command line (also what the Makefile calls).

course release [ID ...]     build lessons/ from solutions/
course check-release        fail if lessons/ differs from a fresh build
course validate [--invert] NOTEBOOK ...
course lab [JUPYTER ARGS]   JupyterLab on the course with nbgrader's extensions
course grade [ID ...] [--from FOLDER|ZIP] [--workers N] [--student S ...] [limits]
                            import, autograde in parallel, feedback, grades CSVs, summary
course grade ID --from ZIP --lms canvas|moodle --roster CSV [--worksheet CSV] [--pattern RE]
                            an LMS's export, mapped through the class list; grade files
                            and feedback bundles to upload back
course bundle [ID ...] [--out PATH] [--zip]
                            the student bundle (lessons + helpers, no answers) for courses
                            without an nbgrader exchange
course grade [ID ...] --emit-k8s DIR --shards N, course grade-shard, course merge-shards
                            the same grading as a Kubernetes Indexed Job (see cli_k8s)
"""

import argparse
import os
import sys

from rnncourse_grader import cli_k8s, pipeline


def _release(args) -> int:
    for path in pipeline.release(args.ids or None):
        print(f"released {path.relative_to(pipeline.ROOT)}")
    return 0


def _check_release(args) -> int:
    problems = pipeline.check_release()
    for problem in problems:
        print(problem)
    if not problems:
        print("lessons/ matches a fresh build of solutions/; nothing leaks.")
    return 1 if problems else 0


def _validate(args) -> int:
    failed = 0
    for notebook in args.notebooks:
        ok, output = pipeline.validate(notebook, invert=args.invert)
        print(output if not ok else f"{notebook}: ok")
        failed += not ok
    return 1 if failed else 0


def _lab(args) -> int:
    # The formgrader reads nbgrader_config.py from the server's working directory.
    os.chdir(pipeline.ROOT / "autograder")
    first = (pipeline.lesson_ids() or [""])[0]
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={pipeline.ROOT}"]
    if first:
        argv.append(f"--LabApp.default_url=/lab/tree/lessons/{first}/{first}.ipynb")
    if os.geteuid() == 0:  # containers and lab servers often run as root; Jupyter refuses then
        argv.append("--allow-root")
    # The assignment list (the student view) reads nbgrader_config.py from Jupyter's config
    # path and the server's root, not from the working directory: add autograder/ to the path.
    env = pipeline.tool_env()
    config_path = [str(pipeline.ROOT / "autograder"), env.get("JUPYTER_CONFIG_PATH", "")]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in config_path if p)
    os.execve(sys.executable, argv + args.jupyter_args, env)


def _lms_source(args):
    """The LMS export's settings from the options (None: not an LMS export)."""
    from rnncourse_grader import lms

    system = lms.PATTERN if args.pattern else args.lms
    if system is None:
        for option in ("roster", "worksheet", "lms_column"):
            if getattr(args, option):
                raise lms.LmsError(f"--{option.replace('_', '-')} needs --lms or --pattern")
        return None
    if args.lms and args.pattern:
        raise lms.LmsError("--lms names a preset, --pattern a naming of your own: give one")
    if not args.source or not args.roster:
        raise lms.LmsError("an LMS export needs --from (the export) and --roster (class list)")
    return lms.source(
        system,
        args.roster,
        pattern=args.pattern,
        worksheet=args.worksheet,
        tz=args.timezone,
        lesson=args.ids[0] if len(args.ids) == 1 else None,
        column=args.lms_column or "",
    )


def _grade(args) -> int:
    from rnncourse_grader import grading, lms

    try:
        export = _lms_source(args)
    except lms.LmsError as err:
        print(f"course grade: {err}", file=sys.stderr)
        return 2
    limits = {
        "cell_timeout": args.cell_timeout,
        "notebook_timeout": args.notebook_timeout,
        "memory_mb": args.memory_mb,
        "max_output_bytes": args.max_output_bytes,
    }
    if args.emit_k8s:
        if args.source is not None:
            print("\n".join(grading.import_submissions(args.source, export=export).lines()))
        return cli_k8s.emit(args, limits)
    return grading.grade_all(
        args.ids or None,
        source=args.source,
        students=args.student,
        workers=args.workers,
        limit_overrides=limits,
        export=export,
    )


def _bundle(args) -> int:
    from rnncourse_grader import bundle

    try:
        path = bundle.build(args.out, args.ids or None, as_zip=args.zip)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"student bundle: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="build lessons/ from solutions/")
    p.add_argument("ids", nargs="*")
    p.set_defaults(func=_release)
    p = sub.add_parser("check-release", help="compare lessons/ with a fresh build")
    p.set_defaults(func=_check_release)
    p = sub.add_parser("validate", help="nbgrader validate, with a real exit status")
    p.add_argument("--invert", action="store_true", help="succeed when no graded test passes")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=_validate)
    p = sub.add_parser("lab", help="open JupyterLab on the course (other options go to Jupyter)")
    p.set_defaults(func=_lab)
    p = sub.add_parser("grade", help="import and autograde submissions, feedback, CSVs")
    p.add_argument("ids", nargs="*", help="lessons to grade (default: all with submissions)")
    p.add_argument("--from", dest="source", help="import a folder or zip of submissions first")
    p.add_argument("--workers", type=int, help="parallel workers (default: number of cores)")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell (lesson default)")
    p.add_argument("--notebook-timeout", type=int, help="seconds per notebook")
    p.add_argument("--memory-mb", type=int, help="kernel memory cap in MiB")
    p.add_argument("--max-output-bytes", type=int, help="stored output cap per notebook")
    p.add_argument("--lms", choices=["canvas", "moodle"], help="--from is this LMS's export")
    p.add_argument(
        "--pattern",
        help="--from names files by this regex: (?P<student_id>...) the LMS id, (?P<file_id>...)"
        " the file name, optional (?P<timestamp>...) (nbgrader's zip_collect contract)",
    )
    p.add_argument("--roster", help="class list CSV (nbgrader db student import + lms_user_id)")
    p.add_argument("--worksheet", help="Moodle: the assignment's grading worksheet CSV")
    p.add_argument("--lms-column", help="Canvas: the lesson's column, 'Title (assignment id)'")
    p.add_argument(
        "--timezone", default="UTC", help="of the export's times without one (default UTC)"
    )
    cli_k8s.add_grade_options(p)
    p.set_defaults(func=_grade)
    p = sub.add_parser("bundle", help="student bundle for courses without an exchange")
    p.add_argument("ids", nargs="*", help="lessons to include (default: every released one)")
    p.add_argument("--out", help="folder, or zip file with --zip (default: build/...)")
    p.add_argument("--zip", action="store_true", help="write a zip file instead of a folder")
    p.set_defaults(func=_bundle)
    cli_k8s.add_commands(sub)
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not _lab:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
