"""``course``: the instructor's command line (also what the Makefile calls).

course release [ID ...]     build lessons/ from solutions/
course check-release        fail if lessons/ differs from a fresh build
course validate [--invert] NOTEBOOK ...
course lab [JUPYTER ARGS]   JupyterLab on the course with nbgrader's extensions
course grade [ID ...]       autograde submissions, write feedback and grades.csv
"""

import argparse
import os
import sys

from rnncourse_grader import pipeline


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
    os.execve(sys.executable, argv + args.jupyter_args, pipeline.tool_env())


def _grade(args) -> int:
    from rnncourse_grader import grading

    return grading.grade_all(args.ids or None)


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
    p = sub.add_parser("grade", help="autograde submissions, feedback, grades.csv")
    p.add_argument("ids", nargs="*")
    p.set_defaults(func=_grade)
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not _lab:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
