"""JupyterHub for a class of the RNN course: students, instructors, a shared formgrader.

Tested with jupyterhub 6.1.1, jupyterhub-idle-culler 2.0.0, jupyterhub-systemdspawner 1.0.2
(the course's ``hub`` extra), configurable-http-proxy 5.3.0 (package.json here) and nbgrader
0.9.6. Start it as root on the lab server, from the course checkout::

    jupyterhub -f autograder/jupyterhub/jupyterhub_config.py

README.md beside this file is the guide; every setting below can be changed here or on the
command line (``--JupyterHub.spawner_class=...``). The environment variables are for what
differs between machines and for the tests.
"""

import os
import shutil
import sys
import tomllib
from pathlib import Path

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
COURSE = HERE.parent.parent  # the course checkout the grader service serves
COURSE_ID = "rnn-course"
BIN = Path(sys.executable).parent  # the course's environment (hub, grader service, culler)
ROSTER = Path(os.environ.get("RNNCOURSE_HUB_ROSTER", HERE / "roster.toml"))
roster = tomllib.loads(ROSTER.read_text())
INSTRUCTORS, STUDENTS = list(roster["instructors"]), list(roster["students"])
EXCHANGE = os.environ.get("RNNCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
STATE = Path(os.environ.get("RNNCOURSE_HUB_STATE", "/srv/jupyterhub"))
# The OS account the grader service runs as ("" = the hub's own account, as in the tests).
GRADER_USER = os.environ.get("RNNCOURSE_HUB_GRADER_USER", f"grader-{COURSE_ID}")
GRADER_PORT = int(os.environ.get("RNNCOURSE_HUB_GRADER_PORT", "9999"))
# The course checkout holds the answers, the hidden tests and the gradebook: it stays private
# to the grader account. Users' servers run the student bundle's environment instead, and
# read their Jupyter config from a public copy of the role folders beside this file.
STUDENT_ENV = Path(os.environ.get("RNNCOURSE_HUB_STUDENT_ENV", "/opt/rnn-course-student/.venv"))
PUBLIC = Path(os.environ.get("RNNCOURSE_HUB_PUBLIC", "/usr/local/share/rnn-course"))
for _role in ("everyone", "students"):
    shutil.copytree(HERE / _role, PUBLIC / _role, dirs_exist_ok=True)

# --- network and state --------------------------------------------------------------------
c.JupyterHub.bind_url = os.environ.get("RNNCOURSE_HUB_URL", "http://:8000")  # put TLS in front
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
_chp = HERE / "node_modules" / ".bin" / "configurable-http-proxy"  # `npm ci` in this folder
if _chp.exists():
    c.ConfigurableHTTPProxy.command = [str(_chp)]

# --- who may log in -----------------------------------------------------------------------
# The lab server's accounts and passwords (PAM). Swap in your university's OAuth/LTI
# authenticator here; the tests use --JupyterHub.authenticator_class=dummy.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(STUDENTS) | set(INSTRUCTORS)
c.Authenticator.admin_users = set(roster.get("admins", []))

# --- roles --------------------------------------------------------------------------------
# nbgrader's naming: formgrade-<course> for graders, nbgrader-<course> for students.
c.JupyterHub.load_groups = {
    f"formgrade-{COURSE_ID}": {"users": INSTRUCTORS},
    f"nbgrader-{COURSE_ID}": {"users": STUDENTS},
}
c.JupyterHub.load_roles = [
    {  # instructors reach the shared grader service (the formgrader) and see it listed
        "name": f"formgrade-{COURSE_ID}",
        "groups": [f"formgrade-{COURSE_ID}"],
        "scopes": [
            f"access:services!service={COURSE_ID}",
            "list:services",
            f"read:services!service={COURSE_ID}",
        ],
    },
    {  # students only see that the course exists; they cannot open the grader service
        "name": f"nbgrader-{COURSE_ID}",
        "groups": [f"nbgrader-{COURSE_ID}"],
        "scopes": ["list:services", f"read:services!service={COURSE_ID}"],
    },
    # A server's token carries its owner's rights, so an instructor's course list can link to
    # the grader service.
    {"name": "server", "scopes": ["inherit"]},
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
]

# --- everyone's own server ----------------------------------------------------------------
# SystemdSpawner runs each server as its user's account in a systemd unit, which is what
# enforces the limits below. (LocalProcessSpawner would only pass them on as MEM_LIMIT and
# CPU_LIMIT environment variables.)
c.JupyterHub.spawner_class = "systemd"
c.Spawner.cmd = [str(STUDENT_ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.mem_limit = os.environ.get("RNNCOURSE_HUB_MEM_LIMIT", "4G")
c.Spawner.cpu_limit = float(os.environ.get("RNNCOURSE_HUB_CPU_LIMIT", "2"))
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = False  # keep GPUs visible to lesson 05
c.SystemdSpawner.disable_user_sudo = True
c.JupyterHub.concurrent_spawn_limit = 20  # a class logging in at 9:00 does not stall the hub
c.JupyterHub.active_server_limit = len(STUDENTS) + len(INSTRUCTORS) + 5
c.JupyterHub.allow_named_servers = False  # one server (one memory budget) per person
c.JupyterHub.shutdown_on_logout = True


def _role_config(spawner) -> None:
    """Each role's Jupyter config: everyone/ (course, exchange, identity), plus students/
    (no formgrader, no create-assignment, no course list) for students."""
    paths = [str(PUBLIC / "everyone")]
    if spawner.user.name not in INSTRUCTORS:
        paths.append(str(PUBLIC / "students"))
    spawner.environment = {  # a new dict: the configured one is shared by every spawner
        **spawner.environment,
        "JUPYTER_CONFIG_PATH": os.pathsep.join(paths),
        "RNNCOURSE_EXCHANGE": EXCHANGE,
    }


c.Spawner.pre_spawn_hook = _role_config

# --- services -----------------------------------------------------------------------------
# The course's grader service: one Jupyter server on the course checkout that every
# instructor opens at /services/rnn-course/ (formgrader: nbgrader menu > Formgrader). It
# starts in autograder/ so that nbgrader reads the course's nbgrader_config.py.
_grader_env = {
    "RNNCOURSE_EXCHANGE": EXCHANGE,
    "JUPYTER_CONFIG_PATH": os.pathsep.join([str(COURSE / "autograder"), str(HERE / "grader")]),
    "JUPYTERHUB_DEFAULT_URL": "/lab",
    "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
}
for _name in ("RNNCOURSE_WORK", "OMP_NUM_THREADS"):  # grading state elsewhere; thread caps
    if _name in os.environ:
        _grader_env[_name] = os.environ[_name]
_grader = {
    "name": COURSE_ID,
    "display": True,
    "url": f"http://127.0.0.1:{GRADER_PORT}",
    "command": [str(BIN / "jupyterhub-singleuser"), f"--ServerApp.root_dir={COURSE}"],
    "cwd": str(COURSE / "autograder"),
    "environment": _grader_env,
    "oauth_no_confirm": True,
}
if GRADER_USER:
    _grader["user"] = GRADER_USER
elif os.geteuid() == 0:  # a hub run by root without a grader account (tests in containers)
    _grader["command"].append("--allow-root")
c.JupyterHub.services = [
    _grader,
    {  # stop servers idle for an hour: their memory goes back to the class
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"],
    },
]

# An optional token for scripts that manage the class (and for the tests): user accounts,
# servers and tokens, never grades.
if os.environ.get("RNNCOURSE_HUB_ADMIN_TOKEN"):
    c.JupyterHub.services.append(
        {"name": "course-admin", "api_token": os.environ["RNNCOURSE_HUB_ADMIN_TOKEN"]}
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "course-admin",
            "services": ["course-admin"],
            "scopes": ["admin:users", "admin:servers", "tokens", "list:services", "groups"],
        }
    )
