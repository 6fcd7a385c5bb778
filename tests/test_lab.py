"""The main command: `course lab` (what `make lab` runs) serves the course with nbgrader's
extensions, and the formgrader reads the course's nbgrader_config.py."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from rnncourse_grader import pipeline

TOKEN = "test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_url(url: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    return urllib.request.urlopen(request, timeout=10)


def get(url: str) -> str:
    with open_url(url) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("work")
    env = pipeline.tool_env(
        {
            "HOME": str(home),
            "RNNCOURSE_WORK": str(work),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        }
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnncourse_grader.cli",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop(proc)
                    output = proc.stdout.read().decode(errors="replace")
                    pytest.fail(f"JupyterLab did not start within 60 s:\n{output[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and everything it started (kernels included); no leftovers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def page_config(html: str) -> dict:
    match = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the lab page carries its configuration"
    return json.loads(match[1])


def test_lab_opens_the_first_lesson_with_nbgrader_extensions(lab):
    config = page_config(get(f"{lab}/lab"))
    extensions = {e["name"] for e in config["federated_extensions"]}
    assert "@jupyter/nbgrader" in extensions
    with open_url(f"{lab}/") as response:  # the server's landing page is the first lesson
        assert response.geturl().endswith("/lab/tree/lessons/01_rnn_forward/01_rnn_forward.ipynb")


def test_the_first_lesson_is_served(lab):
    model = json.loads(get(f"{lab}/api/contents/lessons/01_rnn_forward/01_rnn_forward.ipynb"))
    assert model["type"] == "notebook"


def test_formgrader_reads_the_course_config(lab):
    assignments = json.loads(get(f"{lab}/formgrader/api/assignments"))
    names = {a["name"] for a in assignments}
    assert set(pipeline.lesson_ids()) <= names
