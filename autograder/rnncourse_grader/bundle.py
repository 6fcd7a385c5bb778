"""The student bundle: what a course without an nbgrader exchange hands out (a git repo, an LMS).

``course bundle`` writes a folder (or with ``--zip`` a zip file) that holds only what students
need::

    rnn-course-student/
      README.md          how to install, work, check and hand in
      environment.yml    installs the helper package with conda (pip: see the README)
      constraints.txt    the course's pinned versions
      .gitignore
      lessons/<id>/<id>.ipynb   released notebooks (no answers, no hidden tests, no outputs)
      lessons/rnncourse/        the helpers the notebooks import
      lessons/pyproject.toml    the helper package's own distribution, as it is in the course

Nothing from solutions/ or autograder/ goes in: ``bundle_problems`` checks the result, and
``build`` refuses to write a bundle that leaks.
"""

import json
import re
import shutil
import tempfile
import tomllib
import zipfile
from pathlib import Path

from rnncourse_grader import pipeline

NAME = "rnn-course-student"
# What the bundle owns: rebuilt on every run. Anything else in an existing bundle folder (its
# .git when the bundle is a student repository) is left alone.
MANAGED = ("README.md", "environment.yml", "constraints.txt", ".gitignore")
# Text that must not appear in any bundled file. (The helper package may *mention* the grader
# package in prose; importing it is what would break a student's install, and leak.)
ANSWER_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
GRADER_IMPORT = re.compile(r"^\s*(from|import)\s+rnncourse_grader\b|_hidden\(", re.M)
JUNK = ("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store", "*.egg-info", "build")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same lessons give the same zip


def _helper_project(root: Path) -> dict:
    return tomllib.loads((root / "lessons" / "pyproject.toml").read_text())["project"]


def student_dependencies(root: Path = pipeline.ROOT) -> list[str]:
    """The helper package's pinned dependencies (lessons/pyproject.toml): what lessons run on."""
    return list(_helper_project(root)["dependencies"])


def _environment_yml(root: Path) -> str:
    pins = "".join(f"      - {d}\n" for d in student_dependencies(root))
    return f"""\
# conda env create -f environment.yml && conda activate rnncourse-student
name: rnncourse-student
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - -c constraints.txt
{pins}      - -e lessons
"""


def _title(notebook: Path) -> str:
    """The lesson's title: the first level-1 heading of the notebook."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^# (.+)$", "".join(cell["source"]), re.M)
            if match:
                return match[1].strip()
    return notebook.stem


def _readme(ids: list[str], lessons: Path) -> str:
    rows = "".join(
        f"| [`{i}`](lessons/{i}/{i}.ipynb) | {_title(lessons / i / f'{i}.ipynb')} |\n" for i in ids
    )
    return f"""\
# Recurrent neural networks, from the equations up: your copy

You write a vanilla RNN from its equations, backpropagation through time, LSTM and GRU cells
that match PyTorch, and a sentiment classifier. Each notebook has exercises and tests that
tell you *which term* is wrong when one is.

| lesson | title |
|---|---|
{rows}
## Install (once, about a minute)

With Python 3.11:

```bash
python3.11 -m venv .venv
.venv/bin/pip install -c constraints.txt -e lessons
.venv/bin/jupyter lab lessons/
```

or with conda: `conda env create -f environment.yml && conda activate rnncourse-student`,
then `jupyter lab lessons/`.

## Work on a lesson

1. Open `lessons/<lesson>/<lesson>.ipynb` and write your name in the first cell.
2. Work top to bottom. In each **answer cell** replace `raise NotImplementedError()` with your
   code; the docstring gives the shapes and a hint. Run the **try-it** cell, then the locked
   **test cell**: it prints one line when you pass, and otherwise says what to look at.
3. The tests you see are a subset: when your work is graded, the grader also tries your
   functions on other shapes, dtypes and `T = 1`, outside the notebook, and checks that you
   did not call the PyTorch module (or autograd) you re-implement.
4. Before you hand in: *Kernel → Restart Kernel and Run All Cells*, then the *Validate*
   button (or `nbgrader validate lessons/<lesson>/<lesson>.ipynb`). Do not delete or edit
   the test cells: they are restored before grading.

## Hand in

Hand in the notebook file `lessons/<lesson>/<lesson>.ipynb` the way your instructor asked
(upload it to the course page, or commit and push it). Your answers must be in the notebook's
answer cells: other files are not graded.

`lessons/rnncourse/` holds the helpers the notebooks import (seeds, devices, plots, toy
tasks and the checks behind the visible tests). They contain no answers.
"""


_GITIGNORE = ".venv/\n__pycache__/\n*.pyc\n.ipynb_checkpoints/\n*.egg-info/\nbuild/\n"


def released_ids(root: Path = pipeline.ROOT) -> list[str]:
    """Lessons present in lessons/, in course order."""
    return sorted(
        d.name
        for d in (root / "lessons").iterdir()
        if pipeline.LESSON_ID.match(d.name) and (d / f"{d.name}.ipynb").is_file()
    )


def bundle_problems(folder: Path) -> list[str]:
    """What leaks from a bundle folder: answers, hidden tests, grader code, instructor files."""
    problems = []
    for extra in ("solutions", "autograder", "tests", "bench", "datasets"):
        if (folder / extra).exists():
            problems.append(f"{extra}/: instructor material in the student bundle")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if ".git" in rel.parts:
            continue
        if path.suffix in (".pyc", ".pyo") or "__pycache__" in rel.parts:
            problems.append(f"{rel}: compiled file")
            continue
        if path.suffix == ".py" and rel.parts[:2] != ("lessons", "rnncourse"):
            problems.append(f"{rel}: a .py file outside the helper package (answers?)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a figure or data file: nothing to read answers from
        leaked = [m for m in ANSWER_MARKERS if m in text]
        if leaked:
            problems.append(f"{rel}: contains {', '.join(leaked)}")
        if GRADER_IMPORT.search(text):
            problems.append(f"{rel}: uses the grader's code (rnncourse_grader, hidden checks)")
    lessons = folder / "lessons"
    for lesson in sorted(lessons.iterdir()) if lessons.is_dir() else []:
        if lesson.is_dir() and lesson.name != "rnncourse":
            problems += pipeline.release_problems(lesson)
    return problems


def _stage(target: Path, ids: list[str], root: Path) -> None:
    lessons = target / "lessons"
    for lesson_id in ids:
        source = root / "lessons" / lesson_id
        if not (source / f"{lesson_id}.ipynb").is_file():
            raise FileNotFoundError(f"lessons/{lesson_id}: not released; run `course release`")
        shutil.copytree(source, lessons / lesson_id, ignore=shutil.ignore_patterns(*JUNK))
    shutil.copytree(
        root / "lessons" / "rnncourse",
        lessons / "rnncourse",
        ignore=shutil.ignore_patterns(*JUNK),
    )
    shutil.copy2(root / "lessons" / "pyproject.toml", lessons / "pyproject.toml")
    (target / "README.md").write_text(_readme(ids, lessons), encoding="utf-8")
    (target / "environment.yml").write_text(_environment_yml(root), encoding="utf-8")
    shutil.copy2(root / "constraints.txt", target / "constraints.txt")
    (target / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")


def _is_bundle(folder: Path) -> bool:
    try:
        name = _helper_project(folder)["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return False
    return name == "rnncourse" and (folder / "lessons" / "rnncourse").is_dir()


def _write_zip(staged: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in staged.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{NAME}/{path.relative_to(staged).as_posix()}", ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())


def _write_folder(staged: Path, out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not _is_bundle(out):
            raise FileExistsError(f"{out} exists and is not a student bundle; choose another --out")
        for name in (*MANAGED, "lessons"):
            old = out / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for item in staged.iterdir():
        shutil.move(str(item), out / item.name)


def build(
    out: Path | None = None,
    ids: list[str] | None = None,
    as_zip: bool = False,
    root: Path = pipeline.ROOT,
) -> Path:
    """Write the student bundle (default: every released lesson); return its path.

    ``out`` defaults to ``build/rnn-course-student`` (``.zip`` with ``as_zip``). An existing
    bundle folder is updated in place: its lessons and setup files are replaced, other files
    (a student repository's .git) are kept. Raises ValueError if the result would leak.
    """
    ids = ids or released_ids(root)
    if out is None:
        out = root / "build" / (f"{NAME}.zip" if as_zip else NAME)
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="rnncourse-bundle-") as tmp:
        staged = Path(tmp) / NAME
        _stage(staged, ids, root)
        problems = bundle_problems(staged)
        if problems:
            raise ValueError("the student bundle would leak:\n" + "\n".join(problems))
        if as_zip:
            _write_zip(staged, out)
        else:
            _write_folder(staged, out)
    return out
