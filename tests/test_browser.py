"""JupyterLab in a real browser: what a student and an instructor see and click.

Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by Playwright, against `course lab`
(what `make lab` runs) serving a scratch copy of the course on a free localhost port with a
token. Assertions read the page (text of cells, outputs, dialogs, tables), never pixels.
Every step leaves a screenshot in artifacts/screenshots/<test>/ for people to look at; a step
that fails leaves one named ...-FAILED.png and fails the test with the step's name, the page's
errors and the end of the server's log. Every wait has a timeout: a page that never loads or
an extension that does not start fails the test instead of hanging it.

Student: open the lesson, Run All Cells, see the stub's check fail with its hint, Validate;
open a solved copy (the reference answers in the released notebook), run it: no error or
warning anywhere, every figure drawn, every visible check passes, and Validate says so.
Instructor: the formgrader lists every lesson as an assignment with its notebooks, and an
autograded submission with its score.
"""

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as err:  # fail loudly, never skip: it is a pinned dev dependency
    raise ImportError(f"{err}. Playwright is pinned in the dev extra: run `make setup`.") from err

from rnncourse_grader import grading, pipeline
from tests.course import make_submission, scratch_course, solution_cells
from tests.jupyter_server import Lab, copy_grader, running_lab

pytestmark = pytest.mark.notebook

LESSON = "01_rnn_forward"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Flags that work on these machines (no GPU, no sandbox in containers, nothing phoned home).
# Playwright gives every launch a fresh, temporary user-data-dir.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = pipeline.ROOT / "artifacts" / "screenshots"
UI_TIMEOUT_MS = 30_000  # an element, a menu, a dialog, a formgrader table
LOAD_TIMEOUT_MS = 90_000  # JupyterLab's first page load (many scripts, a busy CI machine)
RUN_TIMEOUT_MS = 240_000  # running or validating a whole notebook on two busy cores
GRADE_TIMEOUT_S = 600  # nbgrader autograde of one submission
STUDENT = "cyd"
# The student's one bug: nn.RNN has two bias vectors (b_ih and b_hh); this counts one.
BUGGY_ANSWERS = {
    "rnn_num_params": "def rnn_num_params(D, H, O):\n    return D * H + H * H + H + H * O + O\n"
}
BUGGY_TEST = "test_rnn_num_params_matches_torch"  # the only test that bug fails
expect.set_options(timeout=UI_TIMEOUT_MS)  # Playwright's default for expect() is 5 s
# JupyterLab asks whether to fetch news in a toast over the notebook; answer it beforehand.
LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


# ---------------------------------------------------------------------------------------------
# The course, the server and the browser


def require_chromium() -> None:
    """Chromium, or a clear failure in CI ($CI set, as .ci/run does) and a skip elsewhere."""
    if CHROMIUM.is_file():
        return
    message = (
        f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (.ci/run does it), "
        "or point $CHROMIUM at a Chromium binary."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " CI fails here.")


@pytest.fixture(scope="module", autouse=True)
def chromium():
    require_chromium()  # before the minute the course takes to prepare


def notebook_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def graded_points(path: Path) -> dict[str, float]:
    """grade_id -> points of every graded test cell of a notebook."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
        for c in notebook_cells(path)
        if c["metadata"].get("nbgrader", {}).get("grade")
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A scratch course: every lesson released (so the gradebook knows its notebooks), a solved
    copy of the lesson for the student, and one autograded submission with one bug."""
    tmp = tmp_path_factory.mktemp("browser")
    root, env = scratch_course(tmp, with_sources=False)
    copy_grader(root)
    pipeline.release(root=root, env=env)
    released = root / "lessons" / LESSON / f"{LESSON}.ipynb"
    solved = root / "solved" / LESSON / f"{LESSON}.ipynb"
    make_submission(released, solution_cells(LESSON), solved)
    submitted = pipeline.work_dir(root, env) / "submitted" / STUDENT / LESSON / f"{LESSON}.ipynb"
    make_submission(released, {**solution_cells(LESSON), **BUGGY_ANSWERS}, submitted)
    pipeline.nbgrader("autograde", LESSON, root=root, env=env, timeout=GRADE_TIMEOUT_S)
    return root, env


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory) -> Iterator[Lab]:
    root, env = course
    with running_lab(tmp_path_factory.mktemp("home"), root, env, LAB_SETTINGS) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=UI_TIMEOUT_MS
        )
        yield browser
        browser.close()


def shorten(text: str, lines: int = 30) -> str:
    """The head of a long message (Playwright appends the whole page's accessibility tree)."""
    kept = text.splitlines()[:lines]
    return "\n".join(kept) + ("\n[...]" if len(kept) < len(text.splitlines()) else "")


class Steps:
    """A test's steps: each one leaves a screenshot; a failing one says which step it was."""

    def __init__(self, page, lab: Lab, name: str):
        self.page, self.lab, self.n = page, lab, 0
        self.folder = SCREENSHOTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.errors: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )

    def shot(self, label: str) -> None:
        try:
            self.page.screenshot(path=self.folder / f"{self.n:02d}-{label}.png", timeout=10_000)
        except Exception:  # a screenshot must never hide the real failure
            pass

    @contextmanager
    def __call__(self, title: str):
        self.n += 1
        label = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        try:
            yield
        except Exception as err:
            failure = err
        else:
            failure = None
        if failure is not None:
            self.shot(f"{label}-FAILED")
            errors = "\n".join(self.errors[-10:]) or "(none)"
            message = (
                f"step {self.n} '{title}' failed at {self.page.url.split('?')[0]}:\n"
                f"{type(failure).__name__}: {shorten(str(failure))}\n\n"
                f"errors in the page:\n{errors}\n\n"
                f"end of the server's log:\n{self.lab.log_tail(2000)}"
            )
            raise pytest.fail.Exception(message, pytrace=False) from None
        self.shot(label)


@pytest.fixture
def steps(browser, lab, request) -> Iterator[Steps]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.set_default_navigation_timeout(LOAD_TIMEOUT_MS)
    try:
        yield Steps(context.new_page(), lab, request.node.name)
    finally:
        context.close()
        try:
            lab.shutdown_kernels()  # the next test starts from a quiet server
        except OSError:  # the server is gone or hung: the test has already said so
            pass


# ---------------------------------------------------------------------------------------------
# What a person does in JupyterLab


def open_lab(steps: Steps, path: str = "") -> None:
    """Load JupyterLab (on a notebook when ``path`` is given) and check nbgrader is there."""
    page, lab = steps.page, steps.lab
    # ?reset: a fresh workspace, not the tabs a previous test left open
    page.goto(f"{lab.url}/lab{'/tree/' + path if path else ''}?reset&token={lab.token}")
    expect(page.locator("#jp-main-dock-panel"), "JupyterLab's shell never rendered").to_be_visible(
        timeout=LOAD_TIMEOUT_MS
    )
    expect(
        page.get_by_role("menuitem", name="Nbgrader", exact=True),
        "JupyterLab loaded without nbgrader's extension (no Nbgrader menu)",
    ).to_be_visible()


def open_notebook(steps: Steps, path: str):
    """Open a notebook in JupyterLab and wait until its kernel is idle; return the panel."""
    open_lab(steps, path)
    page = steps.page
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Cell").first, f"{path} did not open").to_be_visible()
    idle = panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    dialog = page.locator(".jp-Dialog")
    expect(idle.or_(dialog).first).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    if dialog.is_visible() and "Select Kernel" in dialog.inner_text():
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()  # the default: Python 3
    expect(idle, "the notebook's kernel never became idle").to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(
        panel.locator(".validate-button"), "no Validate button: nbgrader's extension is missing"
    ).to_be_visible()
    return panel


def run_all(page) -> None:
    """Run -> Run All Cells, on the notebook's fresh kernel.

    (Not Kernel -> Restart Kernel and Run All Cells: on a loaded machine the restart's
    reconnection sometimes leaves JupyterLab waiting on a kernel that never reports back.)
    """
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def wait_for_run(panel, done) -> None:
    """Wait until ``done`` (a locator) shows, then until no cell is queued or running ([*])."""
    expect(done).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(panel.locator(".jp-InputPrompt", has_text="*")).to_have_count(0, timeout=RUN_TIMEOUT_MS)


def outputs(cell) -> str:
    return "\n".join(cell.locator(".jp-OutputArea-output").all_text_contents())


def error_outputs(cell) -> str:
    """Tracebacks and anything else the cell wrote to stderr."""
    return "\n".join(cell.locator(STDERR).all_text_contents())


def validate(page, panel) -> tuple[str, str]:
    """Click nbgrader's Validate button; return the result's class and text (dialog open)."""
    panel.locator(".validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    message.wait_for(timeout=RUN_TIMEOUT_MS)
    verdict = message.get_attribute("class") or "", message.inner_text()
    message.scroll_into_view_if_needed()
    return verdict


def close_dialog(page) -> None:
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()


def cell_index(notebook: Path, grade_id: str) -> int:
    cells = notebook_cells(notebook)
    return next(
        i
        for i, c in enumerate(cells)
        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )


# ---------------------------------------------------------------------------------------------
# Student


def test_student_runs_the_stub_sees_the_check_fail_with_its_hint_and_validate_agrees(course, steps):
    root, _ = course
    path = f"lessons/{LESSON}/{LESSON}.ipynb"
    page = steps.page
    first_test = cell_index(root / path, "test_rnn_cell_forward_matches_torch")
    with steps("open the lesson"):
        panel = open_notebook(steps, path)
        cells = panel.locator(".jp-Notebook .jp-Cell")
        cells_json = notebook_cells(root / path)
        expect(cells).to_have_count(len(cells_json))  # the page shows the notebook's cells
        last_line = "".join(cells_json[first_test]["source"]).strip().splitlines()[-1]
        # JupyterLab leaves cells outside the window unrendered (no inner text): scroll there
        cells.nth(first_test).scroll_into_view_if_needed()
        expect(cells.nth(first_test)).to_contain_text(last_line)
    with steps("run all cells"):
        run_all(page)
        # Run All stops at the first error: a try-it cell calls the function not written yet.
        wait_for_run(panel, panel.locator(STDERR).first)
        failed = [i for i in range(first_test) if error_outputs(cells.nth(i))]
        assert len(failed) == 1, f"cells {failed} failed before the first test cell"
        assert "NotImplementedError" in error_outputs(cells.nth(failed[0]))
        assert not outputs(cells.nth(first_test)), "Run All went on after the error"
        cells.nth(failed[0]).scroll_into_view_if_needed()
    with steps("run the first test cell"):
        test_cell = cells.nth(first_test)
        test_cell.locator(".jp-InputPrompt").click()
        page.keyboard.press("Shift+Enter")
        wait_for_run(panel, test_cell.locator(STDERR))
        failure = error_outputs(test_cell)
        assert "CheckFailed" in failure, failure
        assert "rnn_cell_forward is not implemented yet" in failure, failure
        assert "replace `raise NotImplementedError()` with your code" in failure, failure
        test_cell.scroll_into_view_if_needed()
    with steps("validate"):
        kind, text = validate(page, panel)
        assert "validation-failed" in kind, text
        assert "The following cell failed:" in text, text
        assert "not implemented yet" in text, text
        assert pipeline.VALIDATE_PASSED not in text
    with steps("close the validation results"):
        close_dialog(page)


def test_student_runs_the_solved_lesson_every_check_passes_and_validate_agrees(course, steps):
    root, _ = course
    path = f"solved/{LESSON}/{LESSON}.ipynb"
    page = steps.page
    cells_json = notebook_cells(root / path)
    graded = [i for i, c in enumerate(cells_json) if c["metadata"].get("nbgrader", {}).get("grade")]
    with steps("open the solved lesson"):
        panel = open_notebook(steps, path)
        cells = panel.locator(".jp-Notebook .jp-Cell")
        expect(cells).to_have_count(len(cells_json))
    with steps("run all cells"):
        run_all(page)
        last_code = max(i for i, c in enumerate(cells_json) if c["cell_type"] == "code")
        ran = cells.nth(last_code).locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]"))
        wait_for_run(panel, ran.or_(panel.locator(STDERR)).first)  # an error stops Run All
        for i, cell in enumerate(cells_json):
            if cell["cell_type"] == "code" and (err := error_outputs(cells.nth(i))):
                tail = "\n".join(err.splitlines()[-12:])
                raise AssertionError(f"cell {i} wrote to stderr:\n{tail}")
        expect(ran).to_be_visible()
    with steps("see every figure"):
        shows = {i: "".join(c["source"]).count("plt.show()") for i, c in enumerate(cells_json)}
        figures = [i for i, n in shows.items() if n]
        assert figures, "the lesson draws figures"
        for i in figures:
            images = cells.nth(i).locator(".jp-OutputArea-output img")
            expect(images, f"cell {i} shows its figures").to_have_count(shows[i])
        cells.nth(figures[-1]).scroll_into_view_if_needed()
    with steps("read every visible check's verdict"):
        for i in graded:
            grade_id = cells_json[i]["metadata"]["nbgrader"]["grade_id"]
            text = outputs(cells.nth(i))
            assert text.strip(), f"{grade_id} printed nothing (a passing check prints one line)"
            assert "CheckFailed" not in text and "Error" not in text, f"{grade_id}: {text}"
        cells.nth(graded[-1]).scroll_into_view_if_needed()
    with steps("validate"):
        kind, text = validate(page, panel)
        assert "validation-success" in kind, text
        assert pipeline.VALIDATE_PASSED in text, text
    with steps("close the validation results"):
        close_dialog(page)


# ---------------------------------------------------------------------------------------------
# Instructor


def open_formgrader(steps: Steps):
    """Nbgrader -> Formgrader, as in the menu; return the formgrader's frame."""
    page = steps.page
    open_lab(steps)
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_role("menuitem", name="Formgrader", exact=True).click()
    frame = page.frame_locator("#jp-main-dock-panel iframe").first
    expect(frame.get_by_role("heading", name="Manage Assignments"), "no formgrader").to_be_visible()
    return frame


def table_rows(frame, page_name: str, columns: int) -> list[list[str]]:
    """The main table of the formgrader page whose breadcrumb ends with ``page_name``, once
    loaded: one list of cell texts per row."""
    expect(frame.locator(".breadcrumb li.active")).to_have_text(page_name)  # the page changed
    table = frame.locator("#main-table")
    expect(table).not_to_contain_text("Loading, please wait")
    rows = table.locator("tr")
    expect(rows.first.locator("td")).to_have_count(columns)
    return [[t.strip() for t in row.locator("td").all_inner_texts()] for row in rows.all()]


def test_formgrader_lists_every_lesson_with_its_notebooks(course, steps):
    root, _ = course
    lessons = pipeline.lesson_ids(root)
    with steps("open the formgrader"):
        frame = open_formgrader(steps)
        names = [row[0] for row in table_rows(frame, "Assignments", 11)]
        assert sorted(names) == lessons, f"Manage Assignments lists {names}"
    for lesson in lessons:
        expected = sorted(p.stem for p in (root / "solutions" / lesson).glob("*.ipynb"))
        with steps(f"manual grading {lesson}"):
            frame.locator(".nav").get_by_role("link", name="Manual Grading").click()
            assert lesson in [row[0] for row in table_rows(frame, "Manual Grading", 4)]
            frame.get_by_role("link", name=lesson, exact=True).click()
            notebooks = [row[0] for row in table_rows(frame, lesson, 6)]
            assert sorted(notebooks) == expected, f"{lesson} lists notebooks {notebooks}"


def test_formgrader_shows_the_autograded_score(course, steps):
    root, env = course
    points = graded_points(root / "lessons" / LESSON / f"{LESSON}.ipynb")
    max_score = sum(points.values())
    expected = max_score - points[BUGGY_TEST]
    assert grading.scores(root, env)[(STUDENT, LESSON)] == (expected, max_score)
    with steps("open the formgrader"):
        frame = open_formgrader(steps)
        table_rows(frame, "Assignments", 11)
    with steps(f"submissions of {LESSON}"):
        row = frame.locator(
            "#main-table tr", has=frame.get_by_role("link", name=LESSON, exact=True)
        )
        row.locator("td").nth(8).get_by_role("link").click()  # the "# Submissions" column
        rows = {r[1]: r for r in table_rows(frame, LESSON, 8)}
        assert STUDENT in rows, f"no submission of {STUDENT} listed: {rows}"
        _, _, _, status, score, *_ = rows[STUDENT]
        assert status == "graded", status
        assert score == f"{expected:g} / {max_score:g}", score
