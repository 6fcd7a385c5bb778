"""Students without a GPU: every lesson opens on Google Colab, whose first cell installs the
course there and nowhere else.

How the cell knows it runs on Colab. Colab documents no marker; these public threads are what
it relies on:

- Colab sets ``COLAB_RELEASE_TAG`` in its runtime's environment: Kaggle/kagglehub#230 (Kaggle's
  notebooks, built on Colab's image, set it too: a hosted runtime where installing is right
  as well) and bitcoinops/taproot-workshop#203 (``COLAB_GPU`` is empty on runtimes without a
  GPU and stopped working as a marker; ``COLAB_RELEASE_TAG`` was recommended instead);
- Colab's kernels have ``google.colab`` (``'google.colab' in sys.modules``:
  faceshiftlabs/DeepFaceLab#65; importing it: PAIR-code/what-if-tool#15).

The virtual-environment tests imitate such a runtime on this machine: a fresh environment
with torch installed beforehand (as Colab ships its own), ``COLAB_RELEASE_TAG`` set, a working
folder with no repository around it, a package imported by the session before the install
(Colab's kernel imports some at start), and the student bundle as the install source
(``RNNCOURSE_INSTALL_SOURCE``: GitHub is not where this course lives yet). The cell is always
taken from a released lesson, never from the template or a copy.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rnncourse_grader import bundle, hosted, integrity, pipeline
from tests.course import ROOT, solution_cells

LESSON = "01_rnn_forward"
GRADE_ID = hosted.GRADE_ID
RELEASED = ROOT / "lessons" / LESSON / f"{LESSON}.ipynb"
LAST_CELL = "test_rnn_forward_matches_torch"  # lesson 01's first two exercises end here
NOTHING_TO_DO = "Not on a hosted runtime: nothing to install here.\n"
# A package the imitated session imported before the cell ran, at a version the course's pin
# replaces: the cell must ask for a restart.
IMPORTED_EARLY = ("numpy", "2.1.3")  # Colab ships and imports its own numpy


def released_cell(path: Path = RELEASED) -> nbformat.NotebookNode:
    """The hosted-runtime cell of a released lesson."""
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == GRADE_ID]
    return cell


def pins(names) -> dict[str, str]:
    """name -> version of the student package's pins (lessons/pyproject.toml)."""
    found = dict(d.split("==") for d in bundle.student_dependencies())
    return {n: found[n] for n in names}


# --- where the cell and the links are -------------------------------------------------------


@pytest.mark.parametrize("lesson_id", pipeline.lesson_ids())
def test_every_lesson_starts_with_its_colab_link_and_the_same_locked_cell(lesson_id):
    nb = nbformat.read(ROOT / "lessons" / lesson_id / f"{lesson_id}.ipynb", as_version=4)
    header, link, cell = nb.cells[:3]
    assert header.id == "course-header"  # nbgrader's header stays first
    url = hosted.repository().colab_url(lesson_id)
    assert link.cell_type == "markdown" and hosted.badge(url) in link.source
    assert cell.cell_type == "code" and cell.source == hosted.setup_source()
    assert cell.source == released_cell().source  # identical in every lesson
    meta = cell.metadata
    assert meta.nbgrader["locked"] and not meta.nbgrader["grade"] and not meta.nbgrader["solution"]
    assert meta.editable is False and meta.deletable is False
    assert "rnncourse_grader" not in cell.source and "import rnncourse" not in cell.source


def test_the_cell_installs_the_pinned_student_package_from_the_declared_repository():
    source, repo = released_cell().source, hosted.repository()
    assert f'"package": "{repo.package()}"' in source
    assert f'"constraints": "{repo.constraints()}"' in source
    runtime_owned = {"torch", "jupyterlab", "nbgrader", "ipykernel"}
    for dep in bundle.student_dependencies():
        assert (f'"{dep}"' in source) == (dep.split("==")[0] not in runtime_owned), dep


def test_a_fork_edits_pyproject_and_every_link_and_the_cell_follow(tmp_path):
    root = pipeline.copy_course(tmp_path / "course")
    (root / "README.md").write_text((ROOT / "README.md").read_text(encoding="utf-8"))
    assert hosted.readme_problems(root) == []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = re.sub(
        r'^Repository = ".*"$', 'Repository = "https://github.com/me/rnn"', text, flags=re.M
    )
    pyproject.write_text(re.sub(r'^ref = ".*"$', 'ref = "v2"', text, flags=re.M))
    fork = "https://colab.research.google.com/github/me/rnn/blob/v2/lessons"
    problems = hosted.readme_problems(root)
    assert len(problems) == len(pipeline.lesson_ids()) and "make release" in problems[0]
    assert hosted.sync_readme(root) and hosted.readme_problems(root) == []
    assert f"({fork}/{LESSON}/{LESSON}.ipynb)" in (root / "README.md").read_text()
    nb = nbformat.read(pipeline.build_source_notebook(LESSON, root), as_version=4)
    assert f"({fork}/{LESSON}/{LESSON}.ipynb)" in nb.cells[0].source
    package = "rnncourse @ git+https://github.com/me/rnn@v2#subdirectory=lessons"
    constraints = "https://raw.githubusercontent.com/me/rnn/v2/constraints.txt"
    assert f'"package": "{package}"' in nb.cells[1].source
    assert f'"constraints": "{constraints}"' in nb.cells[1].source


def test_a_repository_colab_cannot_open_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project.urls]\nRepository = "https://example.org/x"\n'
    )
    with pytest.raises(ValueError, match="Colab opens notebooks from GitHub"):
        hosted.repository(tmp_path)


# --- the cell does nothing where it must not install ------------------------------------------


@pytest.fixture
def no_processes(monkeypatch):
    """subprocess refuses to start anything: pip cannot run."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the cell started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.delenv("RNNCOURSE_INSTALL_SOURCE", raising=False)


def run_cell(source: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<hosted_setup>", "exec"), namespace)
    return namespace


def test_outside_a_hosted_runtime_the_cell_prints_one_line_and_does_nothing(
    monkeypatch, capsys, no_processes
):
    for var in ("COLAB_RELEASE_TAG", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(var, raising=False)
    assert "google.colab" not in sys.modules
    run_cell(released_cell().source)
    assert capsys.readouterr() == (NOTHING_TO_DO, "")


@pytest.mark.parametrize("execution", ["validate", "autograde"])
def test_under_nbgrader_the_cell_never_installs_even_on_colab(
    monkeypatch, capsys, no_processes, execution
):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-imitated")
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    run_cell(released_cell().source)
    assert capsys.readouterr() == (NOTHING_TO_DO, "")


def test_the_integrity_pass_never_runs_the_cell():
    nb = nbformat.read(RELEASED, as_version=4)
    names = [c["name"] for c in integrity.cells_to_run(nb, nb)]
    assert "setup" in names and "hosted_setup" not in names
    assert not any(hosted.setup_source() in c["source"] for c in integrity.cells_to_run(nb, nb))


def test_on_colab_the_cell_runs_pip_twice_and_reports_its_failure(monkeypatch, capsys):
    """Without a network: pip is recorded, not run (the virtual environment below runs it)."""
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command[command.index("install") + 1 :])
        return subprocess.CompletedProcess(command, 1 if len(calls) == 3 else 0, "out\n", "err\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-imitated")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("RNNCOURSE_INSTALL_SOURCE", raising=False)
    source = released_cell().source
    run_cell(source)
    deps, package = calls
    assert deps[:3] == ["--quiet", "--disable-pip-version-check", "--constraint"]
    assert deps[3].endswith("/main/constraints.txt") and "torch==2.13.0" not in deps
    assert package[2:] == ["--no-deps", "--ignore-requires-python", hosted.repository().package()]
    assert "Google Colab: installing" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="failed:\nout\nerr"):  # the third call fails
        run_cell(source)


# --- a fresh environment that imitates the hosted runtime -------------------------------------

RUN_CELLS = """
import json, sys, traceback
cells = json.load(open(sys.argv[1]))
for module in sys.argv[2:]:  # what the session imported before the first cell
    __import__(module)
namespace, errors = {"__name__": "__main__"}, {}
for name, source in cells:
    try:
        exec(compile(source, f"<{name}>", "exec"), namespace)
    except BaseException as err:
        traceback.print_exc()
        errors[name] = f"{type(err).__name__}: {err}"
print(json.dumps(errors))
"""

INSPECT = """
import importlib.metadata as md, importlib.util, json, rnncourse
names = ["rnncourse", "torch", "numpy", "matplotlib", "pooch", "tqdm", "pmdarima",
         "statsmodels", "jupyterlab", "nbgrader", "ipykernel", "rnncourse-grader"]
versions = {}
for name in names:
    try:
        versions[name] = md.version(name)
    except md.PackageNotFoundError:
        versions[name] = None
print(json.dumps({"versions": versions, "rnncourse": rnncourse.__file__,
                  "grader": importlib.util.find_spec("rnncourse_grader") is not None}))
"""


def lesson_cells(through: str = LAST_CELL) -> list[tuple[str, str]]:
    """(name, source) of lesson 01's released code cells up to ``through``, the answer cells
    holding the reference's answers: the hosted cell, setup, first exercises, their tests."""
    answers = solution_cells(LESSON)
    cells = []
    for i, cell in enumerate(nbformat.read(RELEASED, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        name = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {i}")
        cells.append((name, answers.get(name, cell.source)))
        if name == through:
            return cells
    raise AssertionError(f"{LESSON} has no cell {through}")


class Runtime:
    """A virtual environment in ``folder`` that imitates a hosted runtime."""

    def __init__(self, folder: Path, source: Path):
        self.folder, self.python = folder, folder / "venv" / "bin" / "python"
        self.content = folder / "content"  # the working folder, as Colab's /content
        self.content.mkdir(parents=True)
        path = [p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))]
        drop = ("PYTHON", "VIRTUAL_ENV", "RNNCOURSE_", "NBGRADER_", "JUPYTER_", "COLAB_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.env.update(
            PATH=os.pathsep.join(path),
            COLAB_RELEASE_TAG="release-colab-imitated",
            RNNCOURSE_INSTALL_SOURCE=str(source),
            MPLBACKEND="Agg",
            OMP_NUM_THREADS="1",
        )

    def run(self, *args, what: str) -> str:
        """Run this runtime's python; its output, or a failure that shows all of it."""
        done = subprocess.run(
            [str(self.python), *map(str, args)],
            cwd=self.content,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert done.returncode == 0, f"{what} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def cells(self, cells: list[tuple[str, str]], imported=()) -> tuple[dict, str]:
        """Run cells in one fresh interpreter (a session); (errors by cell, output)."""
        script = self.folder / "cells.json"
        script.write_text(json.dumps(cells))
        out = self.run("-c", RUN_CELLS, script, *imported, what="running the cells")
        *printed, last = out.rstrip("\n").split("\n")
        return json.loads(last), "\n".join(printed)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """The runtime after a first session ran the released cell: (runtime, its output)."""
    tmp = tmp_path_factory.mktemp("hosted")
    source = bundle.build(tmp / "rnn-course-student")  # what a course hands out; no grader
    subprocess.run([sys.executable, "-m", "venv", tmp / "venv"], check=True, timeout=300)
    rt = Runtime(tmp, source)
    (torch,) = [d for d in bundle.student_dependencies() if d.startswith("torch==")]
    early = "==".join(IMPORTED_EARLY)
    rt.run("-m", "pip", "install", "--quiet", torch, early, what="installing torch beforehand")
    errors, output = rt.cells(lesson_cells("hosted_setup"), imported=[IMPORTED_EARLY[0]])
    assert errors == {}, output
    return rt, output


def test_the_cell_installs_the_pinned_student_package_and_never_the_grader(runtime):
    rt, output = runtime
    info = json.loads(rt.run("-c", INSPECT, what="inspecting the runtime").splitlines()[-1])
    versions = info["versions"]
    assert info["rnncourse"].startswith(str(rt.folder / "venv"))  # installed, not a checkout
    assert not info["grader"] and versions["rnncourse-grader"] is None
    assert versions["rnncourse"] == "0.1.0"
    expected = pins(["numpy", "matplotlib", "pooch", "tqdm", "pmdarima", "statsmodels"])
    assert {k: versions[k] for k in expected} == expected
    assert versions["torch"].split("+")[0] == pins(["torch"])["torch"]  # the runtime's own, kept
    assert versions["jupyterlab"] is versions["nbgrader"] is versions["ipykernel"] is None


def test_a_package_the_session_had_imported_asks_for_a_restart(runtime):
    _, output = runtime
    assert "Google Colab: installing the course's helper package from" in output
    assert f"Installed, but {IMPORTED_EARLY[0]} changed" in output
    assert "Restart session" in output


def test_after_the_restart_the_first_exercises_pass_their_visible_tests(runtime):
    rt, _ = runtime
    cells = lesson_cells()
    errors, output = rt.cells(cells)  # a new session: the cell again, then the lesson
    assert errors == {}, output
    assert "rnncourse 0.1.0 is installed: go on with the lesson." in output
    names = [name for name, _ in cells]
    assert names[:2] == ["hosted_setup", "setup"] and names[-1] == LAST_CELL
    assert {"rnn_cell_forward", "test_rnn_cell_forward_matches_torch", "rnn_forward"} <= set(names)
