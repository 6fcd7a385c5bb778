"""Setup files agree: the two distributions' pyproject.toml files (lessons/ for the student's
``rnncourse``, the root for the grader), environment.yml and constraints.txt pin the same
versions, and the grader depends on the student's package."""

import re
import subprocess
import tomllib

from tests.course import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[canonical(match[1])] = match[2]
    return found


LOCAL = {"rnncourse"}  # the course's own distributions, installed from the checkout


def project(path: str) -> dict:
    return tomllib.loads((ROOT / path).read_text())["project"]


def pyproject_pins() -> dict[str, str]:
    """Every third-party pin of both distributions (their own packages left out)."""
    grader, student = project("pyproject.toml"), project("lessons/pyproject.toml")
    deps = grader["dependencies"] + student["dependencies"]
    deps += [d for ds in grader["optional-dependencies"].values() for d in ds]
    assert all("==" in d for d in deps), "every dependency is pinned exactly"
    return {name: v for name, v in pins(deps).items() if name not in LOCAL}


def test_the_grader_depends_on_the_students_package_which_has_no_grader():
    student = project("lessons/pyproject.toml")
    assert f"rnncourse=={student['version']}" in project("pyproject.toml")["dependencies"]
    assert not any("jupytext" in d or "rnncourse" in d for d in student["dependencies"])
    assert "optional-dependencies" not in student  # students install exactly this


def environment_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    return pins(line.strip().removeprefix("- ") for line in text.splitlines())


def test_environment_yml_and_pyproject_pin_the_same_packages():
    assert environment_pins() == pyproject_pins()


def test_constraints_agree_with_the_direct_pins():
    locked = pins((ROOT / "constraints.txt").read_text().splitlines())
    for name, version in pyproject_pins().items():
        assert locked.get(name) == version, f"{name}: constraints.txt has {locked.get(name)}"


def test_environment_yml_uses_the_constraints_and_installs_the_course():
    text = (ROOT / "environment.yml").read_text()
    assert "- -c constraints.txt" in text and "- -e lessons\n" in text and "- -e .\n" in text


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_make_help_lists_the_main_targets():
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in ("setup", "lab", "test", "release", "grade", "bench"):
        assert f"make {target}" in out
