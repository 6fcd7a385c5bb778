"""Students without a GPU: every lesson opens on Google Colab and installs the course there.

The course's public repository is declared once, in the root ``pyproject.toml``
(``[project.urls] Repository`` and the branch in ``[tool.rnncourse] ref``). Everything a
student uses to leave the lab machine is derived from it here, at release time:

- the "Open in Colab" link of each lesson (the notebook's first cells, and README's lesson
  map, which ``sync_readme`` rewrites);
- the hosted-runtime cell (template: ``autograder/hosted_setup.py``), the same in every
  lesson, inserted by the release right after nbgrader's header. On a hosted runtime it installs
  ``rnncourse`` from the repository (``lessons/``, never the grader) with the course's
  constraints; elsewhere, and under nbgrader, it does nothing.

A fork changes the URL (and the branch) in pyproject.toml and runs ``make release``.
"""

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from rnncourse_grader import pipeline

TEMPLATE = Path("autograder") / "hosted_setup.py"
GRADE_ID = "hosted_setup"  # the cell's nbgrader id: locked, ungraded, never run by the grader
# What a hosted runtime brings itself and the cell leaves alone: its torch (a CUDA build of
# several GB, matched to its GPU driver) and its notebook stack (its own kernel and UI, in
# which nbgrader's extensions do not run).
RUNTIME_OWNS = ("torch", "jupyterlab", "nbgrader", "ipykernel")
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The line of the template that the release replaces with the rendered settings.
SETTINGS_LINE = re.compile(r"^_HOSTED = \{\}.*$", re.M)
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/[^\s)\"']*?"
    r"/lessons/(?P<id>\d\d_[a-z0-9_]+)/(?P=id)\.ipynb"
)


@dataclass(frozen=True)
class Repository:
    """The course's GitHub repository and the branch (or tag) students get."""

    owner: str
    name: str
    ref: str

    def colab_url(self, lesson_id: str) -> str:
        """Where Colab opens this lesson's released notebook."""
        return (
            f"https://colab.research.google.com/github/{self.owner}/{self.name}/blob/{self.ref}"
            f"/lessons/{lesson_id}/{lesson_id}.ipynb"
        )

    def package(self) -> str:
        """pip's requirement for the student package ``rnncourse`` (``lessons/``) at ``ref``."""
        repo = f"https://github.com/{self.owner}/{self.name}"
        return f"rnncourse @ git+{repo}@{self.ref}#subdirectory=lessons"

    def constraints(self) -> str:
        """The course's pinned versions (constraints.txt) at ``ref``, as pip can read them."""
        raw = f"https://raw.githubusercontent.com/{self.owner}/{self.name}"
        return f"{raw}/{self.ref}/constraints.txt"


def repository(root: Path = pipeline.ROOT) -> Repository:
    """The repository declared in the root pyproject.toml; ValueError if it is not GitHub's."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    url = config["project"]["urls"]["Repository"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise ValueError(
            f"pyproject.toml: [project.urls] Repository = {url!r} is not "
            "https://github.com/<owner>/<name> (Colab opens notebooks from GitHub)"
        )
    ref = config.get("tool", {}).get("rnncourse", {}).get("ref", "main")
    return Repository(match[1], match[2], ref)


def hosted_dependencies(root: Path = pipeline.ROOT) -> list[str]:
    """The student package's pinned dependencies minus what the hosted runtime owns."""
    project = tomllib.loads((root / "lessons" / "pyproject.toml").read_text(encoding="utf-8"))
    pins = project["project"]["dependencies"]
    return [d for d in pins if re.split(r"[=<>!~ \[;]", d, maxsplit=1)[0] not in RUNTIME_OWNS]


def setup_source(root: Path = pipeline.ROOT) -> str:
    """The hosted-runtime cell: the template with the repository's settings written in."""
    repo = repository(root)
    deps = "".join(f"        {json.dumps(d)},\n" for d in hosted_dependencies(root))
    settings = (
        "_HOSTED = {  # written by `course release` from the course's pyproject.toml files\n"
        f'    "package": {json.dumps(repo.package())},\n'
        f'    "constraints": {json.dumps(repo.constraints())},\n'
        f'    "dependencies": [\n{deps}    ],\n'
        "}"
    )
    template = (root / TEMPLATE).read_text(encoding="utf-8")
    source, n = SETTINGS_LINE.subn(lambda _: settings, template)
    if n != 1:
        raise ValueError(f"{TEMPLATE}: expected one line `_HOSTED = {{}}`, found {n}")
    return source.strip()


def badge(url: str) -> str:
    """Markdown for the "Open in Colab" badge linking to ``url``."""
    return f"[![Open In Colab]({BADGE})]({url})"


def cells(lesson_id: str, root: Path = pipeline.ROOT) -> list:
    """The cells the release puts first in a lesson (after nbgrader's header): the lesson's
    Colab link, then the hosted-runtime cell, locked like the setup cell."""
    link = nbformat.v4.new_markdown_cell(
        f"{badge(repository(root).colab_url(lesson_id))}\n\n"
        "**No GPU?** Open this lesson on Google Colab (the badge above), choose *Runtime → "
        "Change runtime type → GPU*, and run the cell below first: there it installs the "
        "course's helper package (a minute or two); anywhere else it does nothing. When you "
        "are done, *File → Download → Download .ipynb* and hand that file in as usual."
    )
    setup = nbformat.v4.new_code_cell(
        setup_source(root),
        metadata={
            "nbgrader": {
                "grade": False,
                "grade_id": GRADE_ID,
                "locked": True,
                "schema_version": 3,
                "solution": False,
                "task": False,
            }
        },
    )
    return [link, setup]


def readme_links(text: str) -> dict[str, list[str]]:
    """Lesson id -> the Colab links to it in a README's text."""
    found: dict[str, list[str]] = {}
    for match in COLAB_LINK.finditer(text):
        found.setdefault(match["id"], []).append(match[0])
    return found


def readme_problems(root: Path = pipeline.ROOT) -> list[str]:
    """README.md's lesson map: a Colab link for every lesson, each derived from pyproject.toml."""
    readme = root / "README.md"
    repo, links = repository(root), readme_links(readme.read_text(encoding="utf-8"))
    problems = []
    for lesson_id in pipeline.lesson_ids(root):
        wrong = [u for u in links.get(lesson_id, []) if u != repo.colab_url(lesson_id)]
        if lesson_id not in links:
            problems.append(f"README.md: no Open in Colab link for {lesson_id}")
        elif wrong:
            problems.append(
                f"README.md: {wrong[0]} is not {repo.colab_url(lesson_id)} (`make release`)"
            )
    return problems


def sync_readme(root: Path = pipeline.ROOT) -> bool:
    """Point README.md's Colab links at the declared repository; True if the file changed."""
    readme = root / "README.md"
    if not readme.is_file():
        return False
    repo, text = repository(root), readme.read_text(encoding="utf-8")
    new = COLAB_LINK.sub(lambda m: repo.colab_url(m["id"]), text)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
