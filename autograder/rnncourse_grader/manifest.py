"""What the grader knows about a lesson, from one file: ``solutions/<id>/lesson.toml``.

A lesson's facts used to be spread over five grader modules (limits, integrity, nbgrader's
config, the data preparation, the guards). Each is now read from the lesson's manifest:

- ``points``: the lesson's total, and ``[tests]``: each test cell's points and the answer
  cells whose points it carries (``grades``);
- ``[answers]``: every answer cell, and what its function may not call (``forbid``, a key
  of ``guards.FORBIDDEN``);
- ``[limits]``: overrides of ``limits.Limits`` for this lesson;
- ``handed_in``: files graded beside the notebook, never overwritten from the release;
- ``prepare``: Python code that makes what the notebooks read, run once before grading;
- ``integrity``: the module whose ``PROBES`` re-check answers outside the kernel.

``problems`` compares a manifest with its notebook (``tests/test_manifest.py`` runs it on
every lesson), so a graded cell without an entry, or points that differ, fail the tests.
The manifest is the instructor's: nbgrader's config keeps it out of the release.
"""

import dataclasses
import tomllib
from pathlib import Path

from rnncourse_grader.limits import Limits

FILENAME = "lesson.toml"
ROOT = Path(__file__).resolve().parents[2]  # the repository (as pipeline.ROOT)


class ManifestError(ValueError):
    """A manifest that cannot be read, or says something impossible (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """An answer cell: the function or class it defines (its grade id)."""

    name: str
    forbid: str | None = None  # what it may not call: "rnn", "lstm", "gru" (modules), "autograd"


@dataclasses.dataclass(frozen=True)
class Test:
    """A test cell: its points and the answers whose correctness it grades."""

    name: str
    points: float
    grades: tuple[str, ...]
    outcome: bool = False  # it reads what earlier cells made with the answers, not calls them


@dataclasses.dataclass(frozen=True)
class Manifest:
    lesson: str
    points: float
    answers: dict[str, Answer]
    tests: dict[str, Test]
    limits: Limits
    handed_in: tuple[str, ...] = ()
    prepare: str | None = None
    integrity: str | None = None

    def tests_of(self, answer: str) -> tuple[str, ...]:
        """The test cells whose points depend on ``answer``, in the notebook's order."""
        return tuple(t.name for t in self.tests.values() if answer in t.grades)


def path(lesson_id: str, root: Path = ROOT) -> Path:
    return Path(root) / "solutions" / lesson_id / FILENAME


def load(lesson_id: str, root: Path = ROOT) -> Manifest:
    """Read and check ``solutions/<lesson_id>/lesson.toml``; ManifestError says what is wrong."""
    where = path(lesson_id, root)
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{where}: missing (every lesson needs its manifest)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{where}: unreadable: {err}") from None
    try:
        return _parse(lesson_id, data)
    except (KeyError, TypeError, ValueError) as err:
        raise ManifestError(f"{where}: {err}") from None


# optional top-level keys, and the type each is read as
_OPTIONAL = {"handed_in": tuple, "prepare": str, "integrity": str}


def _parse(lesson_id: str, data: dict) -> Manifest:
    _only(data, "top level", {"points", "answers", "tests", "limits"}, set(_OPTIONAL))
    answers = {}
    for name, entry in data["answers"].items():
        _only(entry, f"answers.{name}", set(), {"forbid"})
        answers[name] = Answer(name, entry.get("forbid"))
    tests = {}
    for name, entry in data["tests"].items():
        _only(entry, f"tests.{name}", {"points", "grades"}, {"outcome"})
        unknown = [a for a in entry["grades"] if a not in answers]
        if unknown:
            raise ValueError(f"tests.{name}.grades: {unknown} are not in [answers]")
        outcome = bool(entry.get("outcome", False))
        tests[name] = Test(name, float(entry["points"]), tuple(entry["grades"]), outcome)
    fields = {f.name for f in dataclasses.fields(Limits)}
    _only(data["limits"], "limits", set(), fields)
    return Manifest(
        lesson=lesson_id,
        points=float(data["points"]),
        answers=answers,
        tests=tests,
        limits=Limits(**data["limits"]),
        **{key: kind(data[key]) for key, kind in _OPTIONAL.items() if key in data},
    )


def _only(table, where: str, required: set[str], optional: set[str]) -> None:
    if not isinstance(table, dict):
        raise TypeError(f"{where} should be a table")
    missing, unknown = required - table.keys(), table.keys() - required - optional
    if missing:
        raise KeyError(f"{where}: {sorted(missing)} missing")
    if unknown:
        raise KeyError(
            f"{where}: unknown {sorted(unknown)} (expected {sorted(required | optional)})"
        )


def problems(manifest: Manifest, nb) -> list[str]:
    """Where the manifest and the lesson's notebook (source or release) disagree."""
    from rnncourse_grader.guards import FORBIDDEN  # torch: not needed to read a manifest

    graded = {}  # grade id -> (cell source, points or None for an answer cell)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            graded[meta["grade_id"]] = (cell.source, None)
        elif meta.get("grade") and cell.cell_type == "code":
            graded[meta["grade_id"]] = (cell.source, float(meta.get("points", 0)))
    found = []
    answers = {k for k, (_, points) in graded.items() if points is None}
    tests = {k: v for k, v in graded.items() if v[1] is not None}
    for name in sorted(answers - manifest.answers.keys()):
        found.append(f"answer cell {name} has no entry in [answers]")
    for name in sorted(manifest.answers.keys() - answers):
        found.append(f"[answers] lists {name}, which is not an answer cell of the notebook")
    for name in sorted(tests.keys() - manifest.tests.keys()):
        found.append(f"test cell {name} has no entry in [tests]")
    for name in sorted(manifest.tests.keys() - tests.keys()):
        found.append(f"[tests] lists {name}, which is not a test cell of the notebook")
    for name, test in manifest.tests.items():
        if name not in tests:
            continue
        source, points = tests[name]
        if test.points != points:
            found.append(f"{name} is worth {points:g} in the notebook, {test.points:g} here")
        if not test.outcome:
            found += [
                f"{name} grades {a} but never calls it" for a in test.grades if a not in source
            ]
    for answer in manifest.answers.values():
        if answer.forbid is not None and answer.forbid not in FORBIDDEN:
            found.append(f"{answer.name} forbids {answer.forbid!r}: not one of {sorted(FORBIDDEN)}")
    ungraded = [a for a in manifest.answers if not manifest.tests_of(a)]
    found += [f"answer {a} is graded by no test (tests.*.grades)" for a in ungraded]
    total = sum(points for _, points in tests.values())
    if total != manifest.points:
        found.append(
            f"the notebook's tests are worth {total:g} points; the manifest says "
            f"{manifest.points:g}"
        )
    return found


def handed_in_by_lesson(root: Path = ROOT) -> dict[str, list[str]]:
    """lesson id -> files graded beside its notebook (for ``Autograde.exclude_overwriting``)."""
    lessons = sorted(p.parent.name for p in (Path(root) / "solutions").glob(f"*/{FILENAME}"))
    return {lid: list(m.handed_in) for lid in lessons if (m := load(lid, root)).handed_in}
