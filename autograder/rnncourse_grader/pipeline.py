"""The instructor's pipeline: jupytext sources -> nbgrader source notebooks -> released lessons.

``solutions/<id>/<id>.py`` (jupytext py:percent with nbgrader cell metadata) is the single
source of truth. ``release`` turns it into ``solutions/<id>/<id>.ipynb`` (gitignored) and runs
``nbgrader generate_assignment``, which writes ``lessons/<id>/<id>.ipynb``: solutions replaced
by stubs, hidden tests removed, outputs cleared, locked cells checksummed.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[2]
LESSON_ID = re.compile(r"^\d\d_[a-z0-9_]+$")
VALIDATE_PASSED = "Success! Your notebook passes all the tests."
VALIDATE_INVERT_PASSED = "Success! The notebook does not pass any tests."
LEAK_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "rnncourse_grader",
)


def work_dir(root: Path = ROOT, env: dict | None = None) -> Path:
    """Where grading state lives: $RNNCOURSE_WORK, else autograder/work (as nbgrader_config.py)."""
    override = (env or {}).get("RNNCOURSE_WORK") or os.environ.get("RNNCOURSE_WORK")
    return Path(override).resolve() if override else root / "autograder" / "work"


def lesson_ids(root: Path = ROOT) -> list[str]:
    """Lesson ids (folder names) that have a jupytext source, in course order."""
    return sorted(
        d.name
        for d in (root / "solutions").iterdir()
        if LESSON_ID.match(d.name) and (d / f"{d.name}.py").is_file()
    )


def tool_env(extra: dict | None = None) -> dict:
    """The environment for nbgrader and Jupyter subprocesses.

    nbgrader runs ``alembic`` by name, so this interpreter's bin folder must be on PATH even
    when the virtualenv is not activated (as under ``make``).
    """
    env = {**os.environ, **(extra or {})}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(*args: str, root: Path = ROOT, env: dict | None = None, timeout: float | None = None):
    """Run an nbgrader command from ``autograder/`` (where its config lives); return the result.

    Raises RuntimeError with nbgrader's own output when the command fails.
    """
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root / "autograder",
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def nbgrader_config(root: Path = ROOT):
    """The course's nbgrader configuration (``autograder/nbgrader_config.py``) as loaded."""
    from traitlets.config.loader import PyFileConfigLoader

    c = PyFileConfigLoader("nbgrader_config.py", path=str(root / "autograder")).load_config()
    c.CourseDirectory.root = str(root)
    return c


def handed_in_files(lesson_id: str, root: Path = ROOT) -> list[str]:
    """Files a student hands in beside the notebook and the lesson grades (e.g. a checkpoint):
    its manifest's ``handed_in``, which nbgrader never overwrites from the release (the
    course's config gives them to ``Autograde.exclude_overwriting``)."""
    from rnncourse_grader import manifest

    return list(manifest.load(lesson_id, root).handed_in)


def use_ipc(config, folder: Path) -> None:
    """Kernels started with ``config`` listen on ipc sockets in ``folder`` instead of TCP.

    jupyter_client picks free TCP ports and the kernel binds them later; with several kernels
    starting at once another process can take a port in between ("Address already in use",
    jupyter_client#154). Socket files in a folder private to one process cannot collide. The
    path is absolute (the kernel changes its working folder) and short (a socket path has
    at most 107 bytes).
    """
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(folder).resolve() / "k")


def fill_answers(released: Path, answers: dict[str, str], target: Path) -> Path:
    """Write the released notebook with these answer cells (grade id -> source) filled in."""
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def reference_submission(lesson_id: str, target: Path, root: Path = ROOT) -> Path:
    """The released notebook with the reference's answer cells: a submission that must get
    full marks (the grader's canary). Files the lesson grades beside the notebook (see
    ``handed_in_files``) are copied from ``solutions/<id>/`` when the instructor has them."""
    source = jupytext.read(root / "solutions" / lesson_id / f"{lesson_id}.py", fmt="py:percent")
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    fill_answers(root / "lessons" / lesson_id / f"{lesson_id}.ipynb", answers, target)
    for name in handed_in_files(lesson_id, root):
        mine = root / "solutions" / lesson_id / name
        if mine.is_file():
            shutil.copyfile(mine, target.parent / name)
    return target


def build_source_notebook(lesson_id: str, root: Path = ROOT) -> Path:
    """Convert solutions/<id>/<id>.py into the notebook nbgrader reads; return its path.

    The notebook starts with the lesson's "Open in Colab" link and the hosted-runtime cell
    (``hosted.cells``), the same template in every lesson; nbgrader puts its header above.
    """
    from rnncourse_grader import hosted

    source = root / "solutions" / lesson_id / f"{lesson_id}.py"
    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)  # no tool metadata in what students receive
    notebook.cells[0:0] = hosted.cells(lesson_id, root)
    _stable_cell_ids(notebook)
    target = source.with_suffix(".ipynb")
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def _stable_cell_ids(notebook) -> None:
    """Give cells ids that do not change between builds (jupytext draws random ones).

    Graded cells take their grade_id; others a hash of their content, so inserting a cell
    does not renumber the rest.
    """
    seen: set[str] = set()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]
        base = grade_id or f"{cell.cell_type[:2]}-{digest}"
        cell_id, n = base, 1
        while cell_id in seen:
            n += 1
            cell_id = f"{base}-{n}"
        seen.add(cell_id)
        cell.id = cell_id


def release(ids: list[str] | None = None, root: Path = ROOT, env: dict | None = None) -> list[Path]:
    """Build and release the given lessons (default: all); return the released notebooks.

    README.md's "Open in Colab" links follow the repository declared in pyproject.toml too.
    """
    from rnncourse_grader import hosted

    released = []
    for lesson_id in ids or lesson_ids(root):
        build_source_notebook(lesson_id, root)
        nbgrader("generate_assignment", lesson_id, "--force", root=root, env=env)
        released.append(root / "lessons" / lesson_id / f"{lesson_id}.ipynb")
    hosted.sync_readme(root)
    return released


def release_problems(lesson_dir: Path) -> list[str]:
    """What is wrong with one released lesson folder: outputs, leaked answers, stray files."""
    problems = []
    for path in sorted(p for p in lesson_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(lesson_dir.parent)
        if path.suffix != ".ipynb":
            problems.append(
                f"{rel}: only notebooks are released, not {path.suffix or 'this'} files"
            )
            continue
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problems.append(f"{rel}: not a valid notebook ({err})")
            continue
        for i, cell in enumerate(nb.get("cells", [])):
            text = "".join(cell.get("source", ""))
            leaked = [m for m in LEAK_MARKERS if m in text]
            if leaked:
                problems.append(f"{rel} cell {i}: contains {', '.join(leaked)}")
            if cell.get("outputs") or cell.get("execution_count"):
                problems.append(f"{rel} cell {i}: has outputs (release notebooks without them)")
    return problems


def copy_course(dest: Path, root: Path = ROOT, with_lessons: bool = True) -> Path:
    """Copy what nbgrader needs (sources, config, header, released lessons) to ``dest``, and
    what the release reads besides (pyproject.toml's repository, the hosted-runtime template).

    The copy is a course of its own: its nbgrader_config.py resolves paths from its own
    location, so pipeline calls with ``root=dest`` never touch the original.
    """
    skip = shutil.ignore_patterns("*.ipynb", "__pycache__")
    shutil.copytree(root / "solutions", dest / "solutions", ignore=skip)
    (dest / "autograder").mkdir(parents=True)
    for name in ("nbgrader_config.py", "header.ipynb", "hosted_setup.py"):
        shutil.copy2(root / "autograder" / name, dest / "autograder" / name)
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")  # the repository's URL
    if with_lessons:  # the lessons only; the helper package is imported from the install
        skip = shutil.ignore_patterns("rnncourse", "*.egg-info", "__pycache__")
        shutil.copytree(root / "lessons", dest / "lessons", ignore=skip)
    else:  # the helper package's pins, which the hosted-runtime cell installs
        (dest / "lessons").mkdir()
        shutil.copy2(root / "lessons" / "pyproject.toml", dest / "lessons" / "pyproject.toml")
    return dest


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def check_release(root: Path = ROOT) -> list[str]:
    """Rebuild every lesson in a scratch copy and compare with lessons/; return the differences.

    Also reports leaks and outputs in lessons/, released folders without a source, and
    README.md's "Open in Colab" links when they do not follow pyproject.toml.
    """
    from rnncourse_grader import hosted

    problems = hosted.readme_problems(root) if (root / "README.md").is_file() else []
    ids = lesson_ids(root)
    released = sorted(d.name for d in (root / "lessons").iterdir() if LESSON_ID.match(d.name))
    for extra in sorted(set(released) - set(ids)):
        problems.append(f"lessons/{extra}: released lesson without a source in solutions/")
    with tempfile.TemporaryDirectory(prefix="rnncourse-release-") as tmp:
        scratch = copy_course(Path(tmp) / "course", root, with_lessons=False)
        release(ids, root=scratch, env={"RNNCOURSE_WORK": str(scratch / "work")})
        for lesson_id in ids:
            committed = root / "lessons" / lesson_id
            if not committed.is_dir():
                problems.append(f"lessons/{lesson_id}: missing; run `make release`")
                continue
            problems += release_problems(committed)
            fresh, have = _tree(scratch / "lessons" / lesson_id), _tree(committed)
            for name in sorted(set(fresh) | set(have)):
                if fresh.get(name) != have.get(name):
                    problems.append(
                        f"lessons/{lesson_id}/{name}: differs from a fresh build of "
                        "solutions/ (edit the source, then `make release`)"
                    )
    return problems


def validate(notebook: Path, invert: bool = False, root: Path = ROOT) -> tuple[bool, str]:
    """Run ``nbgrader validate`` and read its verdict (it exits 0 either way).

    Returns (success, output). With ``invert``, success means no graded test passes.
    """
    args = ["validate", str(Path(notebook).resolve())] + (["--invert"] if invert else [])
    with tempfile.TemporaryDirectory(prefix="rnncourse-ipc-") as sockets:
        # ipc sockets, not TCP ports: validations running side by side cannot collide
        ipc = ["--KernelManager.transport=ipc", f"--KernelManager.ip={sockets}/k"]
        result = nbgrader(*args, *ipc, root=root)
    output = result.stdout + result.stderr
    verdict = VALIDATE_INVERT_PASSED if invert else VALIDATE_PASSED
    return verdict in output, output
