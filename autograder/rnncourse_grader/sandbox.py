"""Run student code with the least rights this machine allows (``-m rnncourse_grader.sandbox``).

Used as the grading kernel's launcher (``python -m rnncourse_grader.sandbox -- python -m
ipykernel_launcher -f CONNECTION_FILE``) and by the integrity pass. The policy arrives as JSON in
the ``RNNCOURSE_SANDBOX`` environment variable (removed before the student's code starts);
``apply`` then, in this order:

1. gives the process a private, empty home and temp folder, and a clean environment (one
   OpenMP thread, no grader variables such as ``RNNCOURSE_WORK``); copies into it the files
   handed in with the submission (``files``), with their hashes in ``RNNCOURSE_HANDED_IN``;
2. sets resource limits: address space (memory cap), CPU seconds, size of any file written,
   no core dumps;
3. as root on Linux: a private mount namespace in which the folders named in ``hide`` (the
   instructor's solutions, the gradebooks, every other submission, ``.git``) are covered by
   an empty read-only tmpfs;
4. as root: switches to the unprivileged ``user`` of the policy (the grader sets it only when
   ``can_run_as`` says that user can run the interpreter), else stays root but drops every
   capability, so that the tmpfs cannot be unmounted; ``no_new_privs`` either way.

Steps 3 and 4 need root; elsewhere they are skipped (the threat model in autograder/README.md
says what remains). This module imports nothing heavy: it runs before every kernel.
"""

import ctypes
import hashlib
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENV_VAR = "RNNCOURSE_SANDBOX"
HANDED_IN_VAR = "RNNCOURSE_HANDED_IN"  # name -> sha256 of each file handed in (see _hand_in)
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 1, 2, 4, 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
# Variables the student's process never sees: grader paths, the hub's settings, credentials.
# (The lessons' own, such as RNNCOURSE_DATA_DIR or RNNCOURSE_IMDB_ARCHIVE, stay.)
SECRET_PREFIXES = (
    "RNNCOURSE_WORK",
    "RNNCOURSE_EXCHANGE",
    "RNNCOURSE_HUB_",
    "RNNCOURSE_SANDBOX",
    "NBGRADER_DB",
    "JUPYTERHUB_",
    "JPY_SESSION",
    "PYTEST_",
)
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "CREDENTIAL")


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _hide(paths: list[str]) -> list[str]:
    """Cover each existing folder with an empty read-only tmpfs in a private mount namespace."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    # Keep our mounts out of the parent namespace.
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    hidden = []
    for path in paths:
        if not os.path.isdir(path):
            continue
        flags = MS_RDONLY | MS_NOSUID | MS_NODEV
        if libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, b"size=4k,mode=555") != 0:
            raise OSError(ctypes.get_errno(), f"mounting over {path} failed")
        hidden.append(path)
    return hidden


def capabilities() -> dict:
    """What ``apply`` can do here: limits always; hiding folders as root (Linux)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return {"rlimits": True, "hide": root and sys.platform.startswith("linux")}


def can_run_as(user: str = "nobody") -> bool:
    """True when, as root, ``user`` can start this interpreter and import the course's packages.

    Not the case where the interpreter lives in a folder only root can enter (e.g. a pyenv
    under /root): then kernels keep root's user id, without capabilities (see ``apply``).
    Takes about a second (it imports torch): call it once per grading run.
    """
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return False
    try:
        pwd.getpwnam(user)
        probe = subprocess.run(
            [sys.executable, "-c", "import torch, rnncourse, rnncourse_grader.guards"],
            user=user,
            group=pwd.getpwnam(user).pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=120,
        )
        return probe.returncode == 0
    except (KeyError, OSError, subprocess.SubprocessError):
        return False


def _drop_capabilities() -> None:
    """Root without capabilities: it cannot unmount the hiding tmpfs or regain any right."""
    libc = _libc()
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # the exec that follows leaves none permitted


def _private_dir(uid: int | None, gid: int | None, base: str | None) -> Path:
    if base:
        os.makedirs(base, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="student-", dir=base))
    if uid is not None:
        os.chown(home, uid, gid)
    os.chmod(home, 0o700)
    # A font cache saves matplotlib a rebuild (about a second) in every kernel.
    cache = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    for font_list in cache.glob("fontlist-*.json") if cache.is_dir() else []:
        target = home / font_list.name
        shutil.copyfile(font_list, target)
        if uid is not None:
            os.chown(target, uid, gid)
    return home


def _hand_in(files: dict[str, str], home: Path, uid: int | None, gid: int | None) -> dict:
    """Copy the files handed in with the submission into the kernel's working folder.

    Returns name -> sha256 of each copy: the lesson's hidden check compares the file it
    grades with it, so a file the notebook writes while it is graded never counts.
    """
    hashes = {}
    for name, source in files.items():
        target = home / Path(name).name
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
        if uid is not None:
            os.chown(target, uid, gid)
        hashes[target.name] = digest.hexdigest()
    return hashes


def apply(policy: dict, argv: list[str]) -> tuple[list[str], dict]:
    """Apply ``policy`` to this process; return the (possibly rewritten) argv and environment."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    user = policy.get("user") if root else None
    uid = gid = None
    if user:
        entry = pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    home = _private_dir(uid, gid, policy.get("tmp_base"))
    env = _environment(policy, home, uid, gid)

    # The kernel reads its connection file after we drop rights: hand it a private copy.
    argv = list(argv)
    if "-f" in argv and user:
        i = argv.index("-f") + 1
        copy = home / "connection.json"
        shutil.copyfile(argv[i], copy)
        os.chown(copy, uid, gid)
        os.chmod(copy, 0o600)
        argv[i] = str(copy)

    _set_limits(policy)
    if policy.get("hide") and capabilities()["hide"]:
        _hide([str(Path(p).resolve()) for p in policy["hide"]])
    if user:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    elif root and policy.get("drop_capabilities", True):
        _drop_capabilities()
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.chdir(home)
    return argv, env


def _environment(policy: dict, home: Path, uid, gid) -> dict:
    """This process's environment without secrets, homed in ``home``, CPU only by default."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SECRET_PREFIXES) and not any(w in k.upper() for w in SECRET_WORDS)
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(home),
        MPLCONFIGDIR=str(home),
        IPYTHONDIR=str(home / ".ipython"),
        OMP_NUM_THREADS=str(policy.get("threads", 1)),
        MKL_NUM_THREADS=str(policy.get("threads", 1)),
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("JUPYTER_PATH", None)  # the grader's kernelspec folder
    if "files" in policy:  # graded by the course grader: only what was handed in counts
        env[HANDED_IN_VAR] = json.dumps(_hand_in(policy["files"], home, uid, gid))
    if not policy.get("gpu", False):
        # Graded code runs on the CPU: deterministic, and CUDA's address-space reservations
        # would not fit under the memory cap.
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _set_limits(policy: dict) -> None:
    """No core files; memory, CPU time and file size as the policy says (hard limits)."""
    mb = 1024 * 1024
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_AS: policy.get("memory_mb") and policy["memory_mb"] * mb,
        resource.RLIMIT_CPU: policy.get("cpu_s"),
        resource.RLIMIT_FSIZE: policy.get("file_mb") and policy["file_mb"] * mb,
    }
    for which, value in limits.items():
        if value is not None:
            resource.setrlimit(which, (int(value), int(value)))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    policy = json.loads(os.environ.get(ENV_VAR) or "{}")
    argv, env = apply(policy, argv)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()
