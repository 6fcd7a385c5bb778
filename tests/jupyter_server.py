"""Run `course lab` (what `make lab` runs) for tests, and stop it with everything it started.

The server listens on a free localhost port with a token, keeps its state (settings,
workspaces, runtime files) in a private HOME, and writes its log to a file, so that a server
that never comes up fails the test with the end of that log instead of hanging it.

To serve a scratch copy of the course instead of this repository, the copy holds its own
``autograder/rnncourse_grader`` and is put first on PYTHONPATH: `course lab` then starts
JupyterLab from the copy's ``autograder/`` (where the formgrader reads nbgrader_config.py)
with the copy as its root, exactly as it does for the repository.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from rnncourse_grader import pipeline

TOKEN = "test-token"
START_TIMEOUT = 90  # seconds; JupyterLab starts in a few seconds on an idle machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A request's timeout catches a server that hangs, not a slow one: formgrader's first request
# opens the gradebook and imports nbgrader's API, which took over 10 s at load 11 on two cores.
TIMEOUT_S = 120


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token, the course root it serves, and its log."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    def open(self, path: str, timeout: float = TIMEOUT_S, method: str = "GET"):
        """urlopen ``url + path`` with the token (the caller closes the response)."""
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}, method=method
        )
        return urllib.request.urlopen(request, timeout=timeout)

    def get(self, path: str, timeout: float = TIMEOUT_S) -> str:
        with self.open(path, timeout) as response:
            return response.read().decode()

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (what closing the notebooks and their kernels does)."""
        for kernel in json.loads(self.get("/api/kernels")):
            self.open(f"/api/kernels/{kernel['id']}", timeout=30, method="DELETE").close()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def copy_grader(root: Path) -> None:
    """Give a scratch course its own copy of the grader package, so `course lab` can serve it."""
    shutil.copytree(
        pipeline.ROOT / "autograder" / "rnncourse_grader",
        root / "autograder" / "rnncourse_grader",
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def write_user_settings(config_dir: Path, settings: dict[str, dict]) -> None:
    """JupyterLab user settings, by plugin id, e.g. {"@jupyterlab/apputils-extension:notification":
    {"fetchNews": "false"}}."""
    for plugin, values in settings.items():
        package, name = plugin.split(":")
        path = config_dir / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextmanager
def running_lab(
    home: Path,
    root: Path = pipeline.ROOT,
    env: dict | None = None,
    settings: dict[str, dict] | None = None,
) -> Iterator[Lab]:
    """Start `course lab` on ``root`` (default: this repository); stop it on exit.

    ``home`` is an empty folder for the server's HOME, settings and log; ``env`` adds
    variables (e.g. RNNCOURSE_WORK); ``settings`` are JupyterLab user settings by plugin id.
    Fails the calling test if the server is not up within START_TIMEOUT.
    """
    root = Path(root).resolve()
    write_user_settings(home / "jupyter-config", settings or {})
    extra = {
        "HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
        **(env or {}),
    }
    if root != pipeline.ROOT:
        if not (root / "autograder" / "rnncourse_grader").is_dir():
            raise ValueError(f"{root} has no autograder/rnncourse_grader: call copy_grader first")
        extra["PYTHONPATH"] = os.pathsep.join(
            [str(root / "autograder"), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
    server_env = pipeline.tool_env(extra)
    if "MPLBACKEND" not in (env or {}):
        # tests/conftest.py sets Agg for the test process; the kernels people use draw inline.
        server_env.pop("MPLBACKEND", None)
    port = free_port()
    log = home / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
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
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches the kernels too
        )
    lab = Lab(f"http://127.0.0.1:{port}", TOKEN, root, log, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                lab.get("/api/status", timeout=5)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stop(process)
                    why = (
                        f"exited with status {process.returncode}"
                        if process.poll() is not None
                        else f"did not answer within {START_TIMEOUT} s"
                    )
                    pytest.fail(f"JupyterLab {why}; end of its log:\n{lab.log_tail()}")
                time.sleep(0.5)
        yield lab
    finally:
        left = stop(process)
    assert not left, f"JupyterLab left processes behind: {left}"


def stop(process: subprocess.Popen) -> list[str]:
    """Stop the server and everything it started; return what is still alive ("pid command").

    SIGTERM to the server's process group first (the server shuts its kernels down), then
    SIGKILL for whatever is left of it and of its descendants: kernels run in sessions of
    their own, so the group alone does not reach them.
    """
    members = family(process.pid)
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if sig == signal.SIGTERM:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        else:
            for pid in alive(members):
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reap the server itself
            if process.returncode is not None and not alive(members):
                return []
            time.sleep(0.1)
    process.poll()
    return [f"{pid} {command}" for pid, command in alive(members).items()]


def processes() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (parent pid, process group, start time, command) of every process (Linux /proc)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), fields[19], command)
    return table


def family(pid: int) -> set[tuple[int, str]]:
    """A process, its process group and all their descendants, as (pid, start time)."""
    table = processes()
    found = {p for p, (_, group, _, _) in table.items() if p == pid or group == pid}
    while True:
        children = {p for p, (parent, *_) in table.items() if parent in found} - found
        if not children:
            return {(p, table[p][2]) for p in found}
        found |= children


def alive(members: set[tuple[int, str]]) -> dict[int, str]:
    """pid -> command of the members still running (the same start time: not a reused pid)."""
    table = processes()
    return {p: table[p][3] for p, start in members if p in table and table[p][2] == start}
