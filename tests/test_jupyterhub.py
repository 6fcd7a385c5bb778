"""A class on JupyterHub: autograder/jupyterhub/jupyterhub_config.py, read and then started.

The first tests read the configuration without JupyterHub installed: pins agree, roles give
instructors (not students) the grader service, every user's server gets its role's config.

The rest start the hub for real when its pieces are here (the ``hub`` extra and
configurable-http-proxy from ``npm ci --prefix autograder/jupyterhub``; otherwise they skip
and say so): the course's config unchanged except for what the command line overrides for a
test (dummy authenticator, SimpleLocalProcessSpawner with homes in a temporary folder, local
ports, the grader service under this account). Through the proxy, an instructor releases
lesson 01 in the formgrader service, a student's own server lists, fetches and submits it
through the assignment list, and the instructor collects it under the student's hub name.
Autograde and feedback use the same formgrader API that tests/test_exchange_lab.py drives.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from rnncourse_grader import exchange, pipeline
from tests.course import ROOT, scratch_course
from tests.jupyter_server import free_port

HUB = ROOT / "autograder" / "jupyterhub"
CONFIG = HUB / "jupyterhub_config.py"
LESSON = "01_rnn_forward"
NOTEBOOK = f"{LESSON}.ipynb"
ADMIN_TOKEN = "course-admin-test-token"
ROSTER = 'instructors = ["ins"]\nstudents = ["ada", "bob"]\nadmins = []\n'


def load_config(tmp: Path, env: dict | None = None) -> Config:
    """Execute the hub config file the way JupyterHub does (``c = get_config()``)."""
    roster = tmp / "roster.toml"
    roster.write_text(ROSTER)
    config = Config()
    saved = dict(os.environ)
    os.environ.update(
        {"RNNCOURSE_HUB_ROSTER": str(roster), "RNNCOURSE_HUB_PUBLIC": str(tmp / "public")}
    )
    os.environ.update(env or {})
    try:
        namespace = {"get_config": lambda: config, "__file__": str(CONFIG)}
        exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), namespace)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config


# --- the configuration, read ----------------------------------------------------------------


def test_the_hub_pins_agree_with_the_course_and_the_proxy_is_locked():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    hub = dict(d.split("==") for d in project["optional-dependencies"]["hub"])
    doc = CONFIG.read_text().split('"""')[1]
    for name, version in hub.items():
        assert f"{name} {version}" in doc, name
    package = json.loads((HUB / "package.json").read_text())
    (chp_version,) = package["dependencies"].values()
    assert re.fullmatch(r"\d+\.\d+\.\d+", chp_version), "exact pin"
    lock = json.loads((HUB / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == chp_version
    assert f"configurable-http-proxy {chp_version}" in doc


def test_roles_give_instructors_the_grader_service_and_students_only_its_name(tmp_path):
    c = load_config(tmp_path)
    groups = c.JupyterHub.load_groups
    assert groups["formgrade-rnn-course"]["users"] == ["ins"]
    assert groups["nbgrader-rnn-course"]["users"] == ["ada", "bob"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "access:services!service=rnn-course" in roles["formgrade-rnn-course"]["scopes"]
    assert not any(s.startswith("access:") for s in roles["nbgrader-rnn-course"]["scopes"])
    assert c.Authenticator.allowed_users == {"ins", "ada", "bob"}
    services = {s["name"]: s for s in c.JupyterHub.services}
    grader = services["rnn-course"]
    assert grader["cwd"] == str(ROOT / "autograder")  # nbgrader reads the course's config
    assert grader["user"] == "grader-rnn-course"
    assert f"--ServerApp.root_dir={ROOT}" in grader["command"]
    assert "idle-culler" in services and "course-admin" not in services


def test_resource_limits_are_set_and_enforced_by_the_systemd_spawner(tmp_path):
    c = load_config(tmp_path)
    assert c.JupyterHub.spawner_class == "systemd"
    assert c.Spawner.mem_limit == "4G" and c.Spawner.cpu_limit == 2.0
    assert c.JupyterHub.active_server_limit == 3 + 5
    assert c.JupyterHub.allow_named_servers is False


def test_each_role_gets_its_own_jupyter_config(tmp_path):
    c = load_config(tmp_path, {"RNNCOURSE_EXCHANGE": "/srv/x"})
    paths = {}
    for name in ("ins", "ada"):
        spawner = SimpleNamespace(user=SimpleNamespace(name=name), environment={})
        c.Spawner.pre_spawn_hook(spawner)
        paths[name] = spawner.environment["JUPYTER_CONFIG_PATH"].split(os.pathsep)
        assert spawner.environment["RNNCOURSE_EXCHANGE"] == "/srv/x"
    public = tmp_path / "public"  # a readable copy: the course checkout stays private
    assert paths["ins"] == [str(public / "everyone")]
    assert paths["ada"] == [str(public / "everyone"), str(public / "students")]
    for role in ("everyone", "students"):
        for path in (HUB / role).rglob("*"):
            if path.is_file():
                copy = public / role / path.relative_to(HUB / role)
                assert copy.read_bytes() == path.read_bytes()
    assert c.Spawner.cmd == ["/opt/rnn-course-student/.venv/bin/jupyterhub-singleuser"]


# --- the hub, started -----------------------------------------------------------------------


def chp() -> str | None:
    local = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


class Client:
    def __init__(self, base: str):
        self.base = base

    def call(self, path: str, token: str, method: str = "GET", body: dict | None = None):
        """(status, parsed JSON or text) of one request through the proxy."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=240) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def wait(self, what: str, probe, deadline: float, proc, log: Path):
        while True:
            try:
                if probe():
                    return
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not come up:\n{log.read_text()[-6000:]}")
            time.sleep(0.5)


def processes_of(api_url: str) -> list[int]:
    """Processes (ours) started by this test's hub: they carry its API URL."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"JUPYTERHUB_API_URL={api_url}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    pytest.importorskip("jupyterhub", reason='not run: pip install -c constraints.txt -e ".[hub]"')
    if not chp():
        pytest.skip(
            "not run: configurable-http-proxy missing (npm ci --prefix autograder/jupyterhub)"
        )
    tmp = tmp_path_factory.mktemp("hub")
    work, shared, homes, state = tmp / "work", tmp / "exchange", tmp / "homes", tmp / "state"
    for folder in (shared, homes, state):
        folder.mkdir()
    shared.chmod(0o1777)  # as on the lab server: everyone writes, nobody deletes others' files
    root, _ = scratch_course(tmp, with_sources=False)  # the gradebook learns lesson 01
    pipeline.release([LESSON], root=root, env={"RNNCOURSE_WORK": str(work)})
    (tmp / "roster.toml").write_text(ROSTER)
    port, hub_port, proxy_port, grader_port = (free_port() for _ in range(4))
    api_url = f"http://127.0.0.1:{hub_port}/hub/api"
    env = pipeline.tool_env(
        {
            "HOME": str(tmp),
            "RNNCOURSE_HUB_ROSTER": str(tmp / "roster.toml"),
            "RNNCOURSE_HUB_STATE": str(state),
            "RNNCOURSE_HUB_GRADER_USER": "",
            "RNNCOURSE_HUB_GRADER_PORT": str(grader_port),
            "RNNCOURSE_HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "RNNCOURSE_HUB_PUBLIC": str(tmp / "public"),
            "RNNCOURSE_HUB_STUDENT_ENV": sys.prefix,  # here: the course's own environment
            "RNNCOURSE_EXCHANGE": str(shared),
            "RNNCOURSE_WORK": str(work),
        }
    )
    env.pop("JUPYTER_CONFIG_PATH", None)
    overrides = [
        "--JupyterHub.authenticator_class=dummy",
        "--JupyterHub.spawner_class=simple",
        f"--SimpleLocalProcessSpawner.home_dir_template={homes}/{{username}}",
        f"--JupyterHub.bind_url=http://127.0.0.1:{port}",
        f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hub_port}",
        f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_port}",
        f"--ConfigurableHTTPProxy.command={chp()}",
    ]
    if os.geteuid() == 0:  # this container runs tests as root; Jupyter servers refuse then
        overrides.append("--Spawner.args=['--allow-root']")
    log_path = tmp / "hub.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG), *overrides],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = Client(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    try:
        client.wait(
            "the hub",
            lambda: client.call("/hub/api/", ADMIN_TOKEN)[0] == 200,
            deadline,
            proc,
            log_path,
        )
        tokens = {}
        for name in ("ins", "ada"):
            status, body = client.call(
                f"/hub/api/users/{name}/tokens", ADMIN_TOKEN, "POST", {"note": "test"}
            )
            assert status == 201, body
            tokens[name] = body["token"]
        client.wait(
            "the grader service",
            lambda: client.call("/services/rnn-course/api/status", tokens["ins"])[0] == 200,
            deadline,
            proc,
            log_path,
        )
        status, body = client.call("/hub/api/users/ada/server", ADMIN_TOKEN, "POST", {})
        assert status in (201, 202), body
        client.wait(
            "ada's server",
            lambda: client.call("/hub/api/users/ada", ADMIN_TOKEN)[1]["servers"][""].get("ready"),
            deadline,
            proc,
            log_path,
        )
        yield SimpleNamespace(
            client=client, tokens=tokens, work=work, exchange=shared, homes=homes, api=api_url
        )
    finally:
        proc.send_signal(signal.SIGTERM)  # the hub stops the proxy, services and servers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_of(api_url):  # anything the hub failed to stop
            os.kill(pid, signal.SIGKILL)
        log.close()


def test_groups_are_loaded_from_the_roster(hub):
    status, groups = hub.client.call("/hub/api/groups", ADMIN_TOKEN)
    assert status == 200
    members = {g["name"]: sorted(g["users"]) for g in groups}
    assert members["formgrade-rnn-course"] == ["ins"]
    assert members["nbgrader-rnn-course"] == ["ada", "bob"]


def test_only_instructors_open_the_formgrader_service(hub):
    status, body = hub.client.call("/services/rnn-course/formgrader/api/status", hub.tokens["ins"])
    assert status == 200 and body["status"] is True
    status, _ = hub.client.call("/services/rnn-course/formgrader/api/status", hub.tokens["ada"])
    assert status == 403


def test_a_students_server_has_the_assignment_list_but_no_formgrader(hub):
    status, _ = hub.client.call("/user/ada/api/status", hub.tokens["ada"])
    assert status == 200
    status, _ = hub.client.call("/user/ada/formgrader/api/status", hub.tokens["ada"])
    assert status == 404  # the server extension is off for students
    status, page = hub.client.call("/user/ada/lab", hub.tokens["ada"])
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S)[1])
    assert "@jupyter/nbgrader:formgrader" in config["disabledExtensions"]
    assert "@jupyter/nbgrader:assignment-list" not in config["disabledExtensions"]
    (pid,) = {
        p
        for p in processes_of(hub.api)
        if b"JUPYTERHUB_USER=ada" in Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
    }
    environ = dict(
        kv.split("=", 1)
        for kv in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        if "=" in kv
    )
    # The local test spawner can only pass the limits on; SystemdSpawner enforces them.
    assert environ["MEM_LIMIT"] == str(4 * 1024**3) and environ["CPU_LIMIT"] == "2.0"


def test_release_fetch_submit_collect_through_the_hub(hub):
    client, ins, ada = hub.client, hub.tokens["ins"], hub.tokens["ada"]
    status, body = client.call(
        f"/services/rnn-course/formgrader/api/assignment/{LESSON}/release", ins, "POST", {}
    )
    assert status == 200 and body["success"], body
    query = f"/user/ada/assignments?course_id={exchange.COURSE_ID}"
    status, listing = client.call(query, ada)
    assert listing["success"] and [a["assignment_id"] for a in listing["value"]] == [LESSON]
    request = {"course_id": exchange.COURSE_ID, "assignment_id": LESSON}
    status, listing = client.call("/user/ada/assignments/fetch", ada, "POST", request)
    assert status == 200 and listing["success"], listing
    fetched = hub.homes / "ada" / LESSON / NOTEBOOK
    assert fetched.read_bytes() == (ROOT / "lessons" / LESSON / NOTEBOOK).read_bytes()
    status, listing = client.call("/user/ada/assignments/submit", ada, "POST", request)
    assert status == 200 and listing["success"], listing
    (submission,) = (hub.exchange / exchange.COURSE_ID / "inbound").iterdir()
    assert submission.name.startswith(f"ada+{LESSON}+")  # filed under the hub user's name
    status, body = client.call(
        f"/services/rnn-course/formgrader/api/assignment/{LESSON}/collect", ins, "POST", {}
    )
    assert status == 200 and body["success"], body
    assert (hub.work / "submitted" / "ada" / LESSON / NOTEBOOK).read_bytes() == fetched.read_bytes()
