"""Grading limits and the notebook executor that enforces them.

Limits (per lesson, in its manifest ``solutions/<id>/lesson.toml``; overridable on the
command line):

- ``cell_timeout``: seconds one cell may run; the kernel is interrupted after it, the cell
  fails, and the next cell runs;
- ``notebook_timeout``: seconds for the whole notebook; cells after it are not run;
- ``memory_mb``: the kernel's address space (``RLIMIT_AS``); an allocation over it raises
  ``MemoryError`` in the student's code;
- ``max_output_bytes``: output stored per notebook; the rest is dropped with a note (errors
  are always kept: they decide grades).

``LimitedExecute`` replaces nbgrader's ``Execute`` at autograde. When the kernel dies (exit,
crash, ``os._exit``, killed) or hangs (ignores the interrupt), the cell where it happened and
every later code cell get an error output saying so: a cell that was never run can never
count as passed (nbgrader would give full marks to a test cell with no output). What
happened is recorded in ``EVENTS`` for the report and the feedback.
"""

import contextlib
import dataclasses
import json
import signal
import sys
import time

from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from rnncourse_grader.outcome import Event, GraderFault, Timing

KERNEL_NAME = "rnncourse-grader"


@dataclasses.dataclass(frozen=True)
class Limits:
    cell_timeout: int = 120
    notebook_timeout: int = 900
    memory_mb: int = 4096
    max_output_bytes: int = 2_000_000
    integrity_timeout: int = 120
    file_mb: int = 100  # the largest file the kernel may write (RLIMIT_FSIZE)

    def replace(self, **changes) -> "Limits":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def for_lesson(lesson_id: str, root=None, **overrides) -> Limits:
    """The lesson's limits (its manifest's ``[limits]``: its cells' real needs on two CPU
    cores, with a wide margin), with the non-None ``overrides`` applied."""
    from rnncourse_grader import manifest

    return manifest.load(lesson_id, root or manifest.ROOT).limits.replace(**overrides)


# What happened while the last notebook ran (one worker grades one notebook at a time):
# what the limits did (the student's side), how long it took, and what failed on the
# grader's side (the kernel never started, or was killed by something other than a limit).
EVENTS: list[Event] = []
TIMING = Timing()
FAULTS: list[str] = []


def _error(ename: str, message: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"]
    )


def _death_reason(returncode) -> str:
    if returncode is None:
        return "the kernel died"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = {
            "SIGKILL": " (killed from outside: not by a limit of the grader)",
            "SIGXCPU": " (its CPU time limit)",
            "SIGSEGV": " (a crash in native code)",
            "SIGXFSZ": " (it wrote a file over the size limit)",
        }.get(name, "")
        return f"the kernel was stopped by {name}{why}"
    return f"the kernel exited with status {returncode} (sys.exit, os._exit or exit() in the code?)"


class LimitedExecute(Execute):
    """nbgrader's Execute with a notebook time limit, an output cap, and safe kernel deaths."""

    notebook_timeout = Integer(900, help="seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(2_000_000, help="stored output per notebook").tag(config=True)
    partial_credit = Bool(
        False,
        help="let a number shown by a test cell give partial credit (nbgrader's default). "
        "Off: a test cell passes only when it raises nothing, whatever it displays.",
    ).tag(config=True)

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        remaining = max(1, int(self._deadline - time.monotonic()) + 1)
        return remaining if timeout is None else min(timeout, remaining)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            tb = content.get("traceback") or []
            if sum(len(line) for line in tb) > 20_000:
                content["traceback"] = tb[:5] + ["... traceback truncated ..."] + tb[-5:]
            return super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream":
            size = len(content.get("text", ""))
        else:
            size = len(json.dumps(content.get("data", {})))
        if self._stored + size > self.max_output_bytes:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                name = content.get("name", "stdout") if msg["msg_type"] == "stream" else "stdout"
                note = (
                    f"\n[output truncated: this notebook's output is over the "
                    f"{self.max_output_bytes:,}-byte cap]\n"
                )
                outs.append(NotebookNode(output_type="stream", name=name, text=note))
                EVENTS.append(Event("output_capped", cell_index))
            return None
        self._stored += size
        return super().output(outs, msg, display_id, cell_index)

    def _returncode(self):
        try:
            process = self.km.provisioner.process
            return process.poll() if process is not None else None
        except Exception:
            return None

    def preprocess(self, nb, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        EVENTS.clear()
        TIMING.kernel_start_s = TIMING.cells_s = None
        FAULTS.clear()
        self._stored, self._truncated = 0, set()
        start = time.monotonic()
        self._deadline = start + self.notebook_timeout
        stopped = None  # why the remaining cells are not run
        cell_seconds = 0.0
        with self._started_kernel(start):
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                if stopped is None and time.monotonic() >= self._deadline:
                    stopped = (
                        f"the notebook reached its time limit ({self.notebook_timeout} s) "
                        "before this cell"
                    )
                    EVENTS.append(Event("notebook_timeout", index))
                if stopped is not None:
                    cell.outputs = [_error("NotRun", f"not run: {stopped}.")]
                    continue
                t0 = time.monotonic()
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    reason = _death_reason(self._returncode())
                    cell.outputs.append(_error("KernelDied", f"{reason} while running this cell."))
                    stopped = f"{reason} in an earlier cell (cell {index})"
                    EVENTS.append(Event("kernel_died", index, reason))
                    if self._returncode() == -signal.SIGKILL:  # no limit of ours sends it
                        FAULTS.append(f"cell {index}: {reason}")
                except CellTimeoutError:
                    # Interrupted but still busy: a loop that ignores KeyboardInterrupt.
                    cell.outputs.append(
                        _error("KernelHung", "the kernel ignored the interrupt after the timeout.")
                    )
                    stopped = f"the kernel hung in an earlier cell (cell {index}) and was stopped"
                    EVENTS.append(Event("kernel_hung", index))
                    self.shutdown_kernel = "immediate"
                else:
                    if any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                        EVENTS.append(Event("cell_timeout", index))
                cell_seconds += time.monotonic() - t0
            if stopped is not None:
                self.shutdown_kernel = "immediate"
        TIMING.cells_s = cell_seconds
        if not self.partial_credit:
            self._no_partial_credit()
        self.set_widgets_metadata()
        return self.nb, self.resources

    @contextlib.contextmanager
    def _started_kernel(self, start: float):
        """``setup_kernel`` whose start-up failures are the grader's, never the student's.

        No student code runs before the first cell, so a kernel that dies or never answers
        while starting is a fault of the machine (before the ipc transport, a TCP port taken
        by another process between choosing and binding it): ``GraderFault`` says so.
        """
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.setup_kernel())
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
            except Exception as err:
                FAULTS.append(f"the kernel did not start: {type(err).__name__}: {err}"[:300])
                raise GraderFault(FAULTS[-1]) from err
            TIMING.kernel_start_s = time.monotonic() - start
            yield

    def _no_partial_credit(self):
        """A value a test cell shows is displayed, never read as a score (nbgrader fails open)."""
        for cell in self.nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                for output in cell.outputs:
                    if output.get("output_type") == "execute_result":
                        output.output_type = "display_data"
                        output.pop("execution_count", None)


def kernelspec(policy: dict) -> dict:
    """kernel.json of the grading kernel: ipykernel started through the sandbox with ``policy``."""
    return {
        "argv": [
            sys.executable,
            "-m",
            "rnncourse_grader.sandbox",
            "--",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        "display_name": "rnncourse grader (sandboxed)",
        "language": "python",
        "metadata": {"debugger": False},
        "interrupt_mode": "signal",
        "env": {"RNNCOURSE_SANDBOX": json.dumps(policy)},
    }
