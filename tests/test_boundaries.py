"""The two packages keep their sides: the student's ``rnncourse`` never imports the grader, and
the grader uses only ``rnncourse``'s public names (a private one may change without notice)."""

import ast
from pathlib import Path

from rnncourse_grader import pipeline

STUDENT = pipeline.ROOT / "lessons" / "rnncourse"
GRADER = pipeline.ROOT / "autograder" / "rnncourse_grader"


def _imports(path: Path):
    """(line, module, names) of every import in a file; names is () for ``import m``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, tuple(a.name for a in node.names)


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def violations(student: Path, grader: Path) -> list[str]:
    """Every import that crosses a boundary the wrong way, as ``file:line: what``."""
    found = []
    for path in sorted(student.rglob("*.py")):
        for line, module, _ in _imports(path):
            if module.split(".")[0] == "rnncourse_grader":
                found.append(f"{path}:{line}: rnncourse imports the grader ({module})")
    for path in sorted(grader.rglob("*.py")):
        for line, module, names in _imports(path):
            if module.split(".")[0] != "rnncourse":
                continue
            private = [module] if _private(module) else []
            private += [f"{module}.{n}" for n in names if n.startswith("_")]
            found += [f"{path}:{line}: the grader imports a private {p}" for p in private]
    return found


def test_rnncourse_never_imports_the_grader_which_uses_only_public_names():
    assert violations(STUDENT, GRADER) == []


def test_the_boundary_check_finds_each_kind_of_crossing(tmp_path):
    student, grader = tmp_path / "rnncourse", tmp_path / "rnncourse_grader"
    (student / "checks").mkdir(parents=True)
    grader.mkdir()
    (student / "checks" / "x.py").write_text("import os\nfrom rnncourse_grader.hidden import f\n")
    (grader / "y.py").write_text(
        "from rnncourse.data._files import sha256_file\n"
        "from rnncourse.checks import _core, CheckFailed\n"
        "import rnncourse._secret\n"
        "from rnncourse_grader import guards\n"
    )
    found = "\n".join(violations(student, grader))
    assert "x.py:2: rnncourse imports the grader (rnncourse_grader.hidden)" in found
    assert "y.py:1: the grader imports a private rnncourse.data._files" in found
    assert "y.py:2: the grader imports a private rnncourse.checks._core" in found
    assert "y.py:3: the grader imports a private rnncourse._secret" in found
    assert "CheckFailed" not in found and "guards" not in found and "x.py:1" not in found


MAX_LINES = 60  # the grader's style: a function that needs more is split into named steps


def long_functions(folder: Path, limit: int = MAX_LINES) -> list[str]:
    """``file:line name (n lines)`` of every function over ``limit`` lines under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    found.append(f"{path}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_in_the_grader_is_over_60_lines():
    assert long_functions(GRADER) == []


def test_the_length_check_finds_a_long_function(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))  # def line + 60 = 61 lines
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}")
    assert long_functions(tmp_path) == [f"{tmp_path / 'm.py'}:5 long (61 lines)"]


MAX_MODULE_LINES = 450  # a module is one lesson section or a few: split past this


def long_modules(folder: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    return [
        f"{path} ({n} lines)"
        for path in sorted(folder.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit
    ]


def test_no_module_of_the_helper_package_is_over_450_lines():
    assert long_modules(STUDENT) == []


def test_the_module_length_check_finds_a_long_module(tmp_path):
    (tmp_path / "short.py").write_text("x = 1\n")
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert long_modules(tmp_path) == [f"{tmp_path / 'long.py'} ({MAX_MODULE_LINES + 1} lines)"]
