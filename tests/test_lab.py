"""The main command: `course lab` (what `make lab` runs) serves the course with nbgrader's
extensions, and the formgrader reads the course's nbgrader_config.py."""

import json
import re

import pytest

from rnncourse_grader import pipeline
from tests.jupyter_server import free_port, running_lab, stop  # noqa: F401 (others import them here)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("work")
    with running_lab(home, env={"RNNCOURSE_WORK": str(work)}) as server:
        yield server


def page_config(html: str) -> dict:
    match = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the lab page carries its configuration"
    return json.loads(match[1])


def test_lab_opens_the_first_lesson_with_nbgrader_extensions(lab):
    config = page_config(lab.get("/lab"))
    extensions = {e["name"] for e in config["federated_extensions"]}
    assert "@jupyter/nbgrader" in extensions
    with lab.open("/") as response:  # the server's landing page is the first lesson
        assert response.geturl().endswith("/lab/tree/lessons/01_rnn_forward/01_rnn_forward.ipynb")


def test_the_first_lesson_is_served(lab):
    model = json.loads(lab.get("/api/contents/lessons/01_rnn_forward/01_rnn_forward.ipynb"))
    assert model["type"] == "notebook"


def test_formgrader_reads_the_course_config(lab):
    assignments = json.loads(lab.get("/formgrader/api/assignments"))
    names = {a["name"] for a in assignments}
    assert set(pipeline.lesson_ids()) <= names
