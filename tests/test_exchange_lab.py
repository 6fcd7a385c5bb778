"""The class loop through the JupyterLab extensions that `make lab` serves, over their REST APIs.

`course lab` (what `make lab` runs) is one server where the instructor works in the formgrader
and may try the student view (the assignment list) as a student named after the OS account.
This drives the same endpoints the browser's buttons call: formgrader release -> assignment
list fetch -> submit -> formgrader collect -> autograde -> generate and release feedback ->
assignment list fetch feedback. The server runs on the repository (read only) with its
gradebook, exchange and fetched lessons in a temporary work folder.
"""

import json
import urllib.parse
import urllib.request

import pytest
from nbgrader.utils import get_username

from rnncourse_grader import exchange, pipeline
from tests.course import make_submission, scratch_course, solution_cells
from tests.jupyter_server import running_lab
from tests.test_exchange import graded_points

pytestmark = pytest.mark.notebook
LESSON = "01_rnn_forward"
NOTEBOOK = f"{LESSON}.ipynb"
ANSWERED = ("rnn_cell_forward", "rnn_num_params")  # the student answers these two only


class Client:
    """JSON calls to the lab's REST APIs with its token (what the browser's buttons send)."""

    def __init__(self, lab):
        self.lab = lab

    def call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.lab.url + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={
                "Authorization": f"token {self.lab.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=240) as response:
            return json.loads(response.read().decode())

    def student(self, action: str) -> dict:
        """An assignment-list action (fetch, submit, fetch_feedback); return the new listing."""
        body = {"course_id": exchange.COURSE_ID, "assignment_id": LESSON}
        return self.call(f"/assignments/{action}", body)

    def listing(self) -> list[dict]:
        query = urllib.parse.urlencode({"course_id": exchange.COURSE_ID})
        result = self.call(f"/assignments?{query}")
        assert result["success"], result
        return result["value"]

    def formgrader(self, path: str) -> dict:
        result = self.call(f"/formgrader/api/{path}", {})
        assert result["success"], result.get("log") or result
        return result


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exchange-lab")
    work = tmp / "work"
    # The gradebook must know the lesson before autograde: build it in a scratch copy that
    # shares the lab's work folder (lessons/ in the repository is that same build).
    root, _ = scratch_course(tmp, with_sources=False)
    pipeline.release([LESSON], root=root, env={"RNNCOURSE_WORK": str(work)})
    home = tmp / "home"
    home.mkdir()
    with running_lab(home, env={"RNNCOURSE_WORK": str(work)}) as server:
        yield Client(server), work


def test_the_class_loop_through_formgrader_and_assignment_list(lab):
    server, work = lab
    me = get_username()
    course = work / "exchange" / exchange.COURSE_ID

    assert server.listing() == []  # nothing released yet, and the extension found the exchange
    server.formgrader(f"assignment/{LESSON}/release")
    assert (course / "outbound" / LESSON / NOTEBOOK).is_file()
    (released,) = server.listing()
    assert (released["course_id"], released["assignment_id"]) == (exchange.COURSE_ID, LESSON)
    assert released["status"] == "released"

    listing = server.student("fetch")
    assert listing["success"], listing
    fetched = work / "student" / LESSON / NOTEBOOK  # Exchange.assignment_dir, not the repo root
    assert fetched.read_bytes() == (pipeline.ROOT / "lessons" / LESSON / NOTEBOOK).read_bytes()
    assert {a["status"] for a in listing["value"]} == {"fetched"}

    reference = solution_cells(LESSON)
    make_submission(fetched, {k: reference[k] for k in ANSWERED}, fetched)
    listing = server.student("submit")
    assert listing["success"], listing
    assert len(list((course / "inbound").glob(f"{me}+{LESSON}+*"))) == 1

    server.formgrader(f"assignment/{LESSON}/collect")
    assert (work / "submitted" / me / LESSON / NOTEBOOK).is_file()
    server.formgrader(f"submission/{LESSON}/{me}/autograde")
    submission = server.call(f"/formgrader/api/submission/{LESSON}/{me}")
    points = graded_points(pipeline.ROOT / "lessons" / LESSON / NOTEBOOK)
    earned = sum(p for test, p in points.items() if any(f"test_{a}_" in test for a in ANSWERED))
    assert 0 < earned < sum(points.values())
    assert (submission["score"], submission["max_score"]) == (earned, sum(points.values()))

    server.formgrader(f"assignment/{LESSON}/generate_feedback")
    assert (work / "feedback" / me / LESSON / f"{LESSON}.html").is_file()
    server.formgrader(f"assignment/{LESSON}/release_feedback")
    assert len(list((course / "feedback").glob("*.html"))) == 1

    listing = server.student("fetch_feedback")
    assert listing["success"], listing
    (html,) = (work / "student" / LESSON / "feedback").glob(f"*/{LESSON}.html")
    text = html.read_text()
    assert f"Score: {earned:.1f} / {sum(points.values()):.1f}" in text
