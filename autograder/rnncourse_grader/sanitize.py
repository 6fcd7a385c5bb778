"""Read a submitted notebook defensively and rebuild its graded structure from the release.

Runs in the grader before nbgrader sees the file. nbgrader restores locked cells at autograde
too (``OverwriteCells``), but a submission can still break it: a test cell turned into an
answer cell fails its checksum check and stops the whole notebook, a duplicated grade id or a
deleted test cell leaves a submission "needing manual grading" (nbgrader #1682), a foreign
kernel name stops execution, an old nbformat or invalid JSON stops the import. Here every
cell whose grade id the release knows gets the release's metadata and type; locked cells
(tests, setup) get the release's source; a graded cell that lost its metadata (another editor
dropped it) is recognised by its content; deleted graded cells come back in place; the kernel
is the course's. Each change is reported as a note for the feedback.
"""

import ast
import copy
import json
import re
import uuid
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode, from_dict

MAX_NOTEBOOK_BYTES = 20_000_000


class Unreadable(Exception):
    """The file is not a notebook we can grade; the message says why (for the student)."""


def read_submission(path: Path) -> tuple[NotebookNode, list[str]]:
    """Parse a submitted file into an nbformat 4 notebook; raise Unreadable with the reason."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise Unreadable(f"the file is {size:,} bytes, over the {MAX_NOTEBOOK_BYTES:,}-byte limit")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise Unreadable(f"not a notebook: the file is not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise Unreadable(
            f"not a notebook: invalid JSON at line {err.lineno}, column {err.colno} ({err.msg})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        raise Unreadable("not a notebook: the JSON has no nbformat version")
    notes = []
    version = data["nbformat"]
    if version < 3 or version > 4:
        raise Unreadable(f"nbformat {version} is not supported (save it with Jupyter 4 or later)")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as err:  # nbformat raises many kinds of errors on broken documents
        raise Unreadable(f"not a valid notebook: {type(err).__name__}: {err}") from None
    if version < 4:
        notes.append(f"the notebook was in the old nbformat {version}; it was converted to 4")
    if not isinstance(nb.get("cells"), list):
        raise Unreadable("not a valid notebook: it has no list of cells")
    return nb, notes


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _strip(cell) -> None:
    for key in ("nbgrader", "editable", "deletable"):
        cell.metadata.pop(key, None)


def _restored(student_cell, template_cell) -> NotebookNode:
    """The template's cell, keeping the student's source only in (unlocked) answer cells."""
    meta = _nbgrader(template_cell)
    cell = copy.deepcopy(template_cell)
    if meta.get("solution") and not meta.get("locked"):
        cell.source = student_cell.get("source", "")
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def sanitize(nb: NotebookNode, template: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Return the submission rebuilt on the release's graded cells, and notes on what changed."""
    graded = {}  # grade_id -> (index in template, template cell)
    for i, cell in enumerate(template.cells):
        gid = _nbgrader(cell).get("grade_id")
        if gid:
            graded[gid] = (i, cell)
    cells = [from_dict(c) if not isinstance(c, NotebookNode) else c for c in nb.cells]
    for cell in cells:
        cell.setdefault("metadata", NotebookNode())
    found = _reattach(cells, graded)
    last, notes = _last_of_each_grade_id(cells, graded)
    notes = found + notes
    out = [_graded_or_ordinary(i, cell, graded, last, notes) for i, cell in enumerate(cells)]
    _put_back_deleted(out, graded, template, notes)
    _fresh_ids(out)
    if nb.metadata.get("kernelspec", {}).get("name") != template.metadata.get("kernelspec", {}).get(
        "name"
    ):
        shown = nb.metadata.get("kernelspec", {}).get("name")
        notes.append(f"kernel '{shown}' replaced by the course's Python kernel")
    result = nbformat.v4.new_notebook(cells=out, metadata=copy.deepcopy(template.metadata))
    result.nbformat, result.nbformat_minor = 4, max(5, template.get("nbformat_minor", 5))
    nbformat.validate(result)
    return result, notes


def _defines(source: str) -> set[str]:
    """Names a cell's source defines at its top level (functions and classes)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a half-finished answer still names what it defines
        return set(re.findall(r"^(?:async\s+)?(?:def|class)\s+(\w+)", source, flags=re.M))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def _recognised(cell, template_cell, gid: str) -> bool:
    """Whether a cell without grading metadata is the release's graded cell ``gid``: a locked
    cell by its unchanged source, an answer cell by defining the function or class it names
    (an answer's grade id is the name it defines)."""
    meta = _nbgrader(template_cell)
    if cell.get("cell_type") != template_cell.cell_type:
        return False
    source = cell.get("source", "")
    if meta.get("solution") and not meta.get("locked"):
        return gid in _defines(source)
    return source.strip() == template_cell.source.strip()


def _reattach(cells, graded) -> list[str]:
    """Give back their grading metadata to graded cells that lost all of it (another editor,
    or a copy into a fresh notebook, drops cell metadata), recognised by their content; the
    last matching cell wins, as for a duplicated grade id. Returns notes."""
    present = {_nbgrader(c).get("grade_id") for c in cells} - {None}
    bare = [i for i, c in enumerate(cells) if "nbgrader" not in c.metadata]
    notes = []
    for gid, (_, template_cell) in sorted(graded.items(), key=lambda kv: kv[1][0]):
        if gid in present:
            continue
        match = [i for i in bare if _recognised(cells[i], template_cell, gid)]
        if match:
            cells[match[-1]].metadata["nbgrader"] = copy.deepcopy(_nbgrader(template_cell))
            bare.remove(match[-1])
            notes.append(
                f"cell '{gid}' had lost its grading metadata (saved by another editor?): "
                "recognised by its content and graded"
            )
    return notes


def _last_of_each_grade_id(cells, graded) -> tuple[dict[str, int], list[str]]:
    """grade id -> the index of its last cell (the one graded), and notes on the others."""
    notes: list[str] = []
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, cell in enumerate(cells):
        gid = _nbgrader(cell).get("grade_id")
        if gid:
            last[gid] = i
            counts[gid] = counts.get(gid, 0) + 1
    for gid, n in sorted(counts.items()):
        if gid not in graded:
            notes.append(f"cell '{gid}' is not part of the lesson: it runs as an ordinary cell")
        elif n > 1:
            notes.append(
                f"cell '{gid}' appears {n} times: the last one is graded, the others run as "
                "ordinary cells"
            )
    return last, notes


def _graded_or_ordinary(i, cell, graded, last, notes) -> NotebookNode:
    """The release's cell for the (last) cell of a known grade id; any other cell stripped of
    nbgrader's metadata and outputs, to run as an ordinary cell."""
    gid = _nbgrader(cell).get("grade_id")
    if gid in graded and last[gid] == i:
        template_cell = graded[gid][1]
        restored = _restored(cell, template_cell)
        if _nbgrader(template_cell).get("locked") and cell.get("source") != restored.source:
            notes.append(f"cell '{gid}' was edited: the original was restored")
        elif _nbgrader(cell) != _nbgrader(template_cell):
            notes.append(f"cell '{gid}' had changed metadata: the original was restored")
        return restored
    if "nbgrader" in cell.metadata:
        _strip(cell)
    if cell.get("cell_type") == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _put_back_deleted(out, graded, template, notes) -> None:
    """Graded cells the student deleted come back after the template cell that precedes them."""
    present = {_nbgrader(c).get("grade_id") for c in out} - {None}
    for gid, (t_index, template_cell) in sorted(graded.items(), key=lambda kv: kv[1][0]):
        if gid in present:
            continue
        position = 0
        for j in range(t_index - 1, -1, -1):
            before = _nbgrader(template.cells[j]).get("grade_id")
            if before in present:
                position = next(
                    k for k, c in enumerate(out) if _nbgrader(c).get("grade_id") == before
                )
                position += 1
                break
        out.insert(position, _restored(template_cell, template_cell))
        present.add(gid)
        notes.append(f"cell '{gid}' was missing: the original was put back")


def _fresh_ids(out) -> None:
    """Unique, valid cell ids; no attachments on code cells."""
    seen_ids: set[str] = set()
    for cell in out:
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen_ids or len(cid) > 64:
            cell["id"] = uuid.uuid4().hex[:16]
        seen_ids.add(cell["id"])
        if cell.get("cell_type") == "code":
            cell.pop("attachments", None)
