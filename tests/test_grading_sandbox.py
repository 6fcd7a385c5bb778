"""The sandbox every student process starts through: environment, limits, hidden folders."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from rnncourse_grader import sandbox

PROBE = r"""
import json, os, resource, pathlib, sys
hidden = sys.argv[1]
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]
try:
    visible = sorted(os.listdir(hidden))
except OSError as err:
    visible = [type(err).__name__]
print(json.dumps({
    "env": dict(os.environ),
    "as": resource.getrlimit(resource.RLIMIT_AS)[0],
    "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "cwd": os.getcwd(),
    "uid": os.getuid(),
    "caps": caps,
    "hidden": visible,
}))
"""


@pytest.fixture
def seen(tmp_path):
    secret = tmp_path / "solutions"
    secret.mkdir()
    (secret / "answers.py").write_text("42")
    policy = {"memory_mb": 1500, "cpu_s": 30, "hide": [str(secret)], "tmp_base": str(tmp_path)}
    env = {
        **os.environ,
        "RNNCOURSE_SANDBOX": json.dumps(policy),
        "RNNCOURSE_WORK": "/secret/work",
        "RNNCOURSE_HUB_ADMIN_TOKEN": "xyz",
        "MY_API_TOKEN": "xyz",
        "RNNCOURSE_DATA_DIR": "/data",
        "OMP_NUM_THREADS": "8",
    }
    out = subprocess.run(
        [sys.executable, "-m", "rnncourse_grader.sandbox", "--", sys.executable, "-c", PROBE]
        + [str(secret)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out), tmp_path


def test_student_processes_get_a_clean_environment_and_a_private_home(seen):
    got, tmp = seen
    env = got["env"]
    for secret in (
        "RNNCOURSE_WORK",
        "RNNCOURSE_HUB_ADMIN_TOKEN",
        "MY_API_TOKEN",
        "RNNCOURSE_SANDBOX",
    ):
        assert secret not in env
    assert env["RNNCOURSE_DATA_DIR"] == "/data"  # the lessons' own settings stay
    assert env["OMP_NUM_THREADS"] == "1" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["HOME"] == got["cwd"] and got["cwd"].startswith(str(tmp))


def test_limits_are_set(seen):
    got, _ = seen
    assert got["as"] == 1500 * 1024 * 1024 and got["cpu"] == 30


@pytest.mark.skipif(not sandbox.capabilities()["hide"], reason="hiding folders needs root on Linux")
def test_answers_are_hidden_and_root_keeps_no_capability(seen):
    got, _ = seen
    assert got["hidden"] == []  # an empty tmpfs over the folder
    if got["uid"] == 0:
        assert int(got["caps"][0], 16) == 0  # cannot unmount it


def test_files_handed_in_are_copied_into_the_private_home_with_their_hashes(tmp_path):
    handed = tmp_path / "submission" / "imdb_model.pt"
    handed.parent.mkdir()
    handed.write_bytes(b"weights" * 1000)
    policy = {"files": {"imdb_model.pt": str(handed)}, "tmp_base": str(tmp_path / "kernels")}
    probe = (
        "import hashlib, json, os\n"
        "seen = json.loads(os.environ['RNNCOURSE_HANDED_IN'])\n"
        "data = open('imdb_model.pt', 'rb').read()\n"
        "print(json.dumps([seen, hashlib.sha256(data).hexdigest(), os.getcwd()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "rnncourse_grader.sandbox", "--", sys.executable, "-c", probe],
        env={**os.environ, "RNNCOURSE_SANDBOX": json.dumps(policy)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen, digest, cwd = json.loads(out)
    assert seen == {"imdb_model.pt": digest} and cwd.startswith(str(tmp_path / "kernels"))
    assert digest == hashlib.sha256(handed.read_bytes()).hexdigest()
