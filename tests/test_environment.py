"""Setup files agree: pyproject.toml, environment.yml and constraints.txt pin the same versions."""

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


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [
        d for ds in project["optional-dependencies"].values() for d in ds
    ]
    assert all("==" in d for d in deps), "every dependency is pinned exactly"
    return pins(deps)


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
    assert "- -c constraints.txt" in text and "- -e ." in text


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
