"""`course bundle`: the student bundle leaks nothing and works on its own from a clean folder."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rnncourse_grader import bundle, cli, hidden, pipeline
from tests.course import ROOT, make_submission, solution_cells

LESSON = "01_rnn_forward"
NOTEBOOK = f"{LESSON}.ipynb"


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    folder = tmp / "folder"
    result = subprocess.run(  # the command an instructor types
        [sys.executable, "-m", "rnncourse_grader.cli", "bundle", "--out", str(folder)],
        cwd=tmp,
        env=pipeline.tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(folder) in result.stdout
    archive = bundle.build(tmp / "student.zip", as_zip=True)
    return folder, archive


def test_the_zip_holds_the_same_files_as_the_folder(built):
    folder, archive = built
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert all(n.startswith(f"{bundle.NAME}/") for n in names)
        unzipped = {n.removeprefix(f"{bundle.NAME}/"): zf.read(n) for n in names}
    assert unzipped == files(folder)


def test_the_zip_is_reproducible(built, tmp_path):
    _, archive = built
    again = bundle.build(tmp_path / "again.zip", as_zip=True)
    assert again.read_bytes() == archive.read_bytes()


def test_the_bundle_holds_the_lessons_and_helpers_and_nothing_else(built):
    folder, _ = built
    have = files(folder)
    released = bundle.released_ids()
    assert LESSON in released
    for lesson_id in released:  # notebooks exactly as released
        path = f"lessons/{lesson_id}/{lesson_id}.ipynb"
        assert have[path] == (ROOT / "lessons" / lesson_id / f"{lesson_id}.ipynb").read_bytes()
    helpers = files(ROOT / "lessons" / "rnncourse")
    assert {f"lessons/rnncourse/{k}": v for k, v in helpers.items()}.items() <= have.items()
    expected = (
        {f"lessons/{i}/{i}.ipynb" for i in released}
        | {f"lessons/rnncourse/{k}" for k in helpers}
        | {"lessons/pyproject.toml"}  # the helper package's own distribution
        | set(bundle.MANAGED)
    )
    assert set(have) == expected
    assert have["constraints.txt"] == (ROOT / "constraints.txt").read_bytes()


def test_the_bundle_leaks_no_answers_hidden_tests_or_grader_code(built):
    folder, _ = built
    assert bundle.bundle_problems(folder) == []
    text = "\n".join(v.decode("utf-8", "replace") for v in files(folder).values())
    flat = " ".join(text.split())
    for grade_id, source in solution_cells(LESSON).items():  # no reference answer anywhere
        answer = source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        assert " ".join(answer.split()) not in flat, grade_id
    names = set(hidden.__all__)  # what a hidden test cell calls (grade_imdb_checkpoint)
    assert names and not any(name in text for name in names)
    assert not any(p.startswith(("solutions/", "autograder/", "tests/")) for p in files(folder))


def test_the_bundle_installs_only_the_helper_package(built):
    folder, _ = built
    pyproject = (folder / "lessons" / "pyproject.toml").read_text()
    assert pyproject == (ROOT / "lessons" / "pyproject.toml").read_text()  # shipped as it is
    assert not (folder / "pyproject.toml").exists()
    assert 'name = "rnncourse"' in pyproject and "rnncourse_grader" not in pyproject
    assert "jupytext" not in pyproject  # the instructor's tool only
    env = (folder / "environment.yml").read_text()
    for dep in bundle.student_dependencies():
        assert f'"{dep}"' in pyproject and f"- {dep}\n" in env
    assert "- -c constraints.txt" in env and "- -e lessons\n" in env


def test_bundle_problems_names_each_kind_of_leak(built, tmp_path):
    folder, _ = built
    leaky = tmp_path / "leaky"
    shutil.copytree(folder, leaky)
    (leaky / "solutions").mkdir()
    shutil.copy2(ROOT / "solutions" / LESSON / f"{LESSON}.py", leaky / "lessons" / LESSON)
    (leaky / "lessons" / "rnncourse" / "cheat.py").write_text(
        "from rnncourse_grader.hidden import check_rnn_forward_hidden\n"
    )
    nb = json.loads((leaky / "lessons" / LESSON / NOTEBOOK).read_text())
    nb["cells"][3]["source"] = "### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION\n"
    (leaky / "lessons" / LESSON / NOTEBOOK).write_text(json.dumps(nb))
    problems = "\n".join(bundle.bundle_problems(leaky))
    assert "solutions/: instructor material" in problems
    assert f"lessons/{LESSON}/{LESSON}.py: a .py file outside the helper package" in problems
    assert "lessons/rnncourse/cheat.py: uses the grader's code" in problems
    assert f"lessons/{LESSON}/{NOTEBOOK}: contains BEGIN SOLUTION" in problems


def test_build_refuses_to_write_a_leaking_bundle(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(ROOT / "lessons", root / "lessons", ignore=shutil.ignore_patterns("__py*"))
    shutil.copy2(ROOT / "constraints.txt", root / "constraints.txt")
    shutil.copy2(ROOT / "solutions" / LESSON / f"{LESSON}.py", root / "lessons" / LESSON)
    with pytest.raises(ValueError, match="would leak"):
        bundle.build(tmp_path / "out", root=root)
    assert not (tmp_path / "out").exists()


def test_rebuilding_updates_a_student_repository_in_place(tmp_path):
    repo = bundle.build(tmp_path / "student-repo")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "lessons" / "stale.txt").write_text("from an older bundle")
    bundle.build(repo)
    assert (repo / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert not (repo / "lessons" / "stale.txt").exists()
    assert bundle.bundle_problems(repo) == []
    other = tmp_path / "not-a-bundle"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        bundle.build(other)
    assert (other / "notes.txt").read_text() == "mine"


def test_the_command_reports_a_lesson_that_is_not_released(tmp_path, capsys):
    assert cli.main(["bundle", "99_not_released", "--out", str(tmp_path / "b")]) == 1
    assert "lessons/99_not_released: not released" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# --- the bundle works on its own -----------------------------------------------------------

RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient

path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=300).execute(
    cwd=str(__import__("pathlib").Path(path).parent)
)
result = {}
for cell in nb.cells:
    meta = cell.metadata.get("nbgrader", {})
    if cell.cell_type == "code" and (meta.get("grade") or meta.get("grade_id") == "setup"):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        result[meta["grade_id"]] = [f"{e.ename}: {e.evalue}" for e in errors]
print(json.dumps(result))
"""

WHERE = """
import json, importlib.util, rnncourse, rnncourse.checks
print(json.dumps({"rnncourse": rnncourse.__file__,
                  "grader": importlib.util.find_spec("rnncourse_grader") is not None}))
"""


@pytest.fixture(scope="module")
def clean(built, tmp_path_factory):
    """The zip unpacked in a clean folder, installed in a fresh virtualenv.

    The virtualenv gets its own copy of the bundle's ``rnncourse`` (a wheel built from the
    bundle's lessons/pyproject.toml) and borrows torch and the rest from the course's environment
    through a .pth line, so nothing is downloaded. That line adds the course's site-packages
    as a plain folder: the course's editable install of ``rnncourse`` and ``rnncourse_grader``
    is not activated there (only the site folder's own .pth files would do that).
    """
    _, archive = built
    tmp = tmp_path_factory.mktemp("clean")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp)
    unpacked = tmp / bundle.NAME
    wheels, venv = tmp / "wheels", tmp / "venv"
    env = pipeline.tool_env({"HOME": str(tmp / "home"), "MPLBACKEND": "Agg"})
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        env.pop(var, None)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]

    def run(*cmd, cwd=tmp, **extra_env):
        result = subprocess.run(
            cmd, cwd=cwd, env={**env, **extra_env}, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{' '.join(map(str, cmd))}:\n{result.stdout}{result.stderr}"
        return result.stdout

    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, unpacked / "lessons")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("rnncourse-*.whl")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    course_site = sysconfig.get_paths()["purelib"]
    (Path(site.strip()) / "course-environment.pth").write_text(course_site + "\n")
    run(python, "-m", "ipykernel", "install", "--sys-prefix")  # the kernel is this python
    return unpacked, python, run


def test_the_installed_bundle_imports_its_own_helpers_and_no_grader(clean):
    _, python, run = clean
    where = json.loads(run(python, "-c", WHERE))
    assert where["rnncourse"].startswith(str(python.parent.parent))  # installed from the bundle
    assert not where["grader"]


def test_the_stub_lesson_runs_and_every_visible_check_fails(clean):
    unpacked, python, run = clean
    lesson = unpacked / "lessons" / LESSON / NOTEBOOK
    result = json.loads(run(python, "-c", RUN_NOTEBOOK, lesson).splitlines()[-1])
    assert result.pop("setup") == []  # the setup cell's imports work from the bundle
    assert result and all(result.values()), result
    for grade_id, errors in result.items():
        assert any("NotImplementedError" in e or "not implemented" in e for e in errors), (
            grade_id,
            errors,
        )


def test_the_reference_answers_pass_every_visible_check_with_the_bundle_alone(clean):
    unpacked, python, run = clean
    lesson = unpacked / "lessons" / LESSON / NOTEBOOK
    answered = make_submission(lesson, solution_cells(LESSON), lesson.with_name("answered.ipynb"))
    # As under `nbgrader validate`: the training cell shrinks to its smoke configuration.
    output = run(python, "-c", RUN_NOTEBOOK, answered, NBGRADER_EXECUTION="validate")
    result = json.loads(output.splitlines()[-1])
    assert len(result) > 1 and all(errors == [] for errors in result.values()), result
