"""Fault injection for tests/test_grading_faults.py: on PYTHONPATH of the grading processes only.

``RNNCOURSE_TEST_FAULT=<fault>:<times>:<path>`` makes the first ``times`` processes of the
kind the fault names (counted across processes with marker files in ``path``) fail the way
a busy or broken grading machine does:

- ``kernel_start``: the kernel exits before it binds its sockets, printing the error the
  TCP race gave (as if another process had taken its port);
- ``worker_kill``: after the kernel has run two cells, it kills its grading worker (the
  worker dies in the middle of the notebook);
- ``kernel_sigkill``: after two cells, the kernel is killed with SIGKILL, which no limit of
  the grader sends (as the machine's out-of-memory killer would);
- ``integrity_runner``: the integrity runner exits before it answers;
- ``fill_disk``: the grading worker, as it starts, fills the file system of ``path``.
"""

import os
import sys

SPEC = os.environ.get("RNNCOURSE_TEST_FAULT")


def _argv() -> list[str]:
    with open("/proc/self/cmdline", "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0")]


def _fire(times: int, folder: str) -> bool:
    """True for the first ``times`` callers across all processes."""
    for i in range(times):
        try:
            os.close(os.open(os.path.join(folder, str(i)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            continue
    return False


def _fill(folder: str) -> None:
    try:
        with open(os.path.join(folder, "filler"), "ab") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
    except OSError:
        pass


def _kill_mid_notebook(pid: int) -> None:
    """SIGKILL ``pid`` once the kernel has run two cells: in the middle of the notebook,
    however fast or slow the machine is."""
    import signal
    import threading
    import time

    def kill():
        while True:
            time.sleep(0.05)
            try:  # IPython may be half imported still
                shell = sys.modules["IPython"].get_ipython()
            except (KeyError, AttributeError):
                continue
            if shell is not None and shell.execution_count >= 3:
                os.kill(pid, signal.SIGKILL)
                return

    threading.Thread(target=kill, daemon=True).start()


def _inject(fault: str, times: int, path: str) -> None:
    argv = _argv()
    kernel = "ipykernel_launcher" in argv and "rnncourse_grader.sandbox" not in argv
    if fault == "kernel_start" and kernel and _fire(times, path):
        sys.stderr.write("zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:1')\n")
        os._exit(1)
    if fault == "worker_kill" and kernel and _fire(times, path):
        _kill_mid_notebook(os.getppid())
    if fault == "kernel_sigkill" and kernel and _fire(times, path):
        _kill_mid_notebook(os.getpid())
    if fault == "integrity_runner" and "rnncourse_grader.integrity_runner" in argv:
        if _fire(times, path):
            os._exit(3)
    if fault == "fill_disk" and "rnncourse_grader.worker" in argv:
        _fill(path)


if SPEC:
    _fault, _times, _path = SPEC.split(":", 2)
    _inject(_fault, int(_times), _path)
