"""The integrity pass (DESIGN.md §10): check graded functions outside the student's kernel.

Everything a test cell does runs in the student's kernel, after the student's code, which can
patch torch, numpy, builtins, the check modules or ``sys.modules``. So after autograde, for
every graded function whose test passed in the kernel, the grader:

1. runs the lesson's locked setup cell and the student's answer cells (plus the imports,
   functions and classes of cells the student added) in a fresh, sandboxed interpreter
   (``integrity_runner``: memory and CPU limits, a private home, the course's answers and
   the gradebooks hidden, an unprivileged user where possible);
2. feeds each function inputs generated here, from a seed the student cannot know, and reads
   back plain arrays (JSON with base64 data; no pickle);
3. computes the expected values here, with PyTorch's modules, in this process, which never ran
   student code, and compares.

A function that passed in the kernel but fails here loses the points of its tests: the worker
sets a manual score of 0 in the gradebook (nbgrader's override), comments on the answer cell,
flags the submission, and the report lists it. The checks are the same properties as the
notebook's tests (no stricter), so an honest solution never loses points here. A runner
that dies, hangs or garbles its reply before it answered every function is the grader's
failure (``GraderFault``): no verdict is made up, and the batch retries the submission.

A lesson's manifest names its probe module (``integrity = "..."``): a module whose
``PROBES`` map an answer to its ``Method``: a recipe, which runs in the student's process, and
``cases``/``expected``/``compare``, which run in the grader (see ``integrity_rnn_forward`` for
lesson 01). Which tests lose their points, and what the function may not call, come from the
manifest. An answer graded by several test cells, each for its own property, may map to a
tuple of Methods, each naming the tests it judges (``Method.tests``): a failure then costs
those tests only, as in the notebook (lesson 06's ``sample``: priming and seeding, and the
temperature and top-k draws).
"""

import base64
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import numbers
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnncourse_grader.outcome import GraderFault, Verdict

MAX_REPLY_BYTES = 50_000_000


@dataclasses.dataclass(frozen=True)
class Method:
    """How a lesson's probe module checks one answer outside the kernel."""

    recipe: str  # function of the probe module, run in the student's process
    cases: Callable[[np.random.Generator], list[dict]]  # grader: inputs (numpy arrays, ints)
    expected: Callable[[dict], Any]  # grader: the reference result for one case
    compare: Callable[[Any, Any, dict], str | None]  # grader: None when equal, else why not
    tests: tuple[str, ...] = ()  # the test cells whose property it checks (default: all)


@dataclasses.dataclass(frozen=True)
class Probe:
    """How to check one graded function outside the kernel."""

    function: str  # the answer cell's function (and grade id)
    tests: tuple[str, ...]  # grade ids of the test cells whose points depend on it
    recipe: str  # function of the lesson module, run in the student's process
    cases: Callable[[np.random.Generator], list[dict]]  # grader: inputs (numpy arrays, ints)
    expected: Callable[[dict], Any]  # grader: the reference result for one case
    compare: Callable[[Any, Any, dict], str | None]  # grader: None when equal, else why not
    forbid: str | None = None  # what it may not call (guards.FORBIDDEN): "rnn", ..., "autograd"
    key: str = ""  # names it among the probes of one function (its runner reply's key)

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", self.function)


@dataclasses.dataclass(frozen=True)
class LessonIntegrity:
    module: str
    probes: tuple[Probe, ...]


@dataclasses.dataclass
class Report:
    verdicts: list[Verdict]
    seconds: float = 0.0
    cell_errors: list[dict] = dataclasses.field(default_factory=list)
    problem: str = ""  # the run itself went wrong (crash, timeout, garbled reply)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "fail"]


def lesson_spec(lesson_id: str, root: Path | None = None) -> LessonIntegrity | None:
    """The lesson's probes: its manifest's module's ``PROBES``, with the manifest's facts."""
    from rnncourse_grader import manifest

    facts = manifest.load(lesson_id, root or manifest.ROOT)
    if facts.integrity is None:
        return None
    methods: dict[str, Method | tuple[Method, ...]] = importlib.import_module(
        facts.integrity
    ).PROBES
    probes = []
    for function, entry in methods.items():
        several = isinstance(entry, tuple)
        for method in entry if several else (entry,):
            tests = method.tests or facts.tests_of(function)
            unknown = set(tests) - set(facts.tests_of(function))
            if unknown:
                raise ValueError(f"{function}'s probe judges {sorted(unknown)}, not its tests")
            key = f"{function}:{'+'.join(tests)}" if several else function
            forbid = facts.answers[function].forbid
            recipe = (method.recipe, method.cases, method.expected, method.compare)
            probes.append(Probe(function, tests, *recipe, forbid=forbid, key=key))
    return LessonIntegrity(facts.integrity, tuple(probes))


def seed_for(salt: str, student: str, lesson_id: str) -> int:
    digest = hashlib.sha256(f"{salt}\0{student}\0{lesson_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


# ----------------------------------------------------------------------------- encoding
def encode(value):
    """Inputs for the runner: numpy arrays become base64 with dtype and shape."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {
            "__array__": base64.b64encode(array.tobytes()).decode(),
            "dtype": str(array.dtype),
            "shape": list(array.shape),
        }
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class Opaque:
    """A value the student's function returned that is not plain data (shown by type name)."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self):
        return self.what


def decode_reply(value):
    """The runner's plain JSON back into torch tensors, numbers, lists and dicts."""
    import torch

    if isinstance(value, dict):
        if "__array__" in value:
            dtype = value.get("dtype")
            if dtype not in {"float64", "float32", "int64", "bool"}:
                return Opaque(f"an array of {dtype}")
            raw = base64.b64decode(value["__array__"])
            shape = [int(n) for n in value["shape"]]
            if int(np.prod(shape)) * np.dtype(dtype).itemsize != len(raw):
                return Opaque("a garbled array")
            return torch.from_numpy(np.frombuffer(raw, dtype=dtype).reshape(shape).copy())
        if "__seq__" in value:
            items = [decode_reply(v) for v in value["__seq__"]]
            return tuple(items) if value.get("kind") == "tuple" else items
        if "__dict__" in value:
            return {k: decode_reply(v) for k, v in value["__dict__"].items()}
        if "__type__" in value:
            return Opaque(f"a {value['__type__']}")
        return Opaque("an unexpected object")
    return value


# ----------------------------------------------------------------------------- comparing
def describe(value) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, Opaque):
        return repr(value)
    return f"{type(value).__name__} {value!r}"[:80]


def compare_tensor(
    name: str, got, want, *, exact_dtype: bool = True, rtol=None, atol=None
) -> str | None:
    """None when ``got`` is a tensor like ``want`` (shape, dtype, values within tolerance).

    The tolerance is the tests' (``rnncourse.checks``' ``tolerances``) unless a probe passes
    the looser one its test uses: the integrity pass is never stricter than the test.
    """
    import torch

    if not isinstance(got, torch.Tensor):
        return f"{name} is {describe(got)}; expected a tensor of shape {tuple(want.shape)}"
    if tuple(got.shape) != tuple(want.shape):
        return f"{name} has shape {tuple(got.shape)}; expected {tuple(want.shape)}"
    if exact_dtype and got.dtype != want.dtype:
        return f"{name} has dtype {got.dtype}; expected {want.dtype}"
    if want.dtype == torch.bool or not want.is_floating_point():
        ok = torch.equal(got.to(want.dtype), want)
    else:
        tol = 1e-10 if want.dtype == torch.float64 else 1e-5
        rtol, atol = tol if rtol is None else rtol, tol if atol is None else atol
        ok = bool(torch.isclose(got.to(want.dtype), want, rtol=rtol, atol=atol).all())
    if ok:
        return None
    if want.is_floating_point():
        diff = (got.to(torch.float64) - want.to(torch.float64)).abs().nan_to_num(float("inf"))
        return f"{name}: largest difference {diff.max().item():.3g} from the reference"
    return f"{name} differs from the reference"


# ----------------------------------------------------------------------------- for probe modules
# What every lesson's probe module needs (integrity_rnn_forward, _bptt, _lstm, _gru, _imdb).
def call(ns, function, case):
    """The plain recipe, shared by every probe module (the runner looks here when a module has
    no recipe of that name): the student's function on the case's arguments."""
    return ns[function](*case["args"])


def as_tensor(array):
    """A numpy array (or nested lists, dicts, None) of a case as torch tensors, in the grader."""
    import torch

    if array is None:
        return None
    if isinstance(array, dict):
        return {k: as_tensor(v) for k, v in array.items()}
    if isinstance(array, list | tuple):
        return [as_tensor(v) for v in array]
    return torch.from_numpy(np.asarray(array).copy())


def sizes(rng: np.random.Generator, n: int, high: int = 7) -> list[int]:
    """``n`` random sizes in 1 .. high - 1."""
    return [int(v) for v in rng.integers(1, high, size=n)]


def case_sizes(rng: np.random.Generator, fixed: list[dict], drawn: int = 1, high: int = 8):
    """The sizes of a probe's cases, each with the ``label`` a failure's message names it by.

    ``fixed``: the cases that catch known bugs (B = 1, T = 1, D != H, float32, no initial
    state: e.g. ``{"B": 1, "D": 7, "H": 2}``; a string names a variant: ``"upstream": "last"``);
    then ``drawn`` cases of random sizes, with the int keys of the first. Each dict has
    ``dtype`` (float64 unless given) and ``zero_state`` (False).
    """
    keys = [k for k, v in fixed[0].items() if type(v) is int]
    out = [dict(f) for f in fixed]
    out += [dict(zip(keys, sizes(rng, len(keys), high), strict=True)) for _ in range(drawn)]
    for s in out:
        s.setdefault("dtype", np.float64)
        s.setdefault("zero_state", False)
        words = [f"{k} = {v}" for k, v in s.items() if type(v) in (int, str)]
        words += [np.dtype(s["dtype"]).name] + (["no initial state"] if s["zero_state"] else [])
        s["label"] = ", ".join(words)
    return out


def gated_params(rng, kind: str, D: int, H: int, dtype=np.float64) -> dict:
    """nn.LSTMCell / nn.GRUCell tensors (``kind`` "lstm" or "gru"), large enough that no gate
    works in its linear range: the checks' ``random_cell_params``, in numpy, same scales."""
    from rnncourse.checks.gated import GATES, HH_SCALE

    gates, hh_scale = GATES[kind], HH_SCALE[kind]
    shapes = {"weight_ih": (gates * H, D), "weight_hh": (gates * H, H)}
    shapes |= {"bias_ih": (gates * H,), "bias_hh": (gates * H,)}
    scale = {"weight_ih": 0.6, "weight_hh": hh_scale, "bias_ih": 0.5, "bias_hh": 0.5}
    return {k: (rng.standard_normal(s) * scale[k]).astype(dtype) for k, s in shapes.items()}


def fields_of(run) -> list:
    """A recipe's typed record (a dataclass) as the plain list the runner can send."""
    return [getattr(run, f.name) for f in dataclasses.fields(run)]


def record_from(cls, got):
    """The grader's side of ``fields_of``: the record again, or None if the reply is not one."""
    if not isinstance(got, list | tuple) or len(got) != len(dataclasses.fields(cls)):
        return None
    return cls(*got)


@contextlib.contextmanager
def swapped(ns: dict, name: str, value):
    """``ns[name]`` is ``value`` inside the block, then what it was: a recipe that checks a
    training step with the reference loss must not leave it to the probes after it."""
    missing = object()
    before = ns.get(name, missing)
    ns[name] = value
    try:
        yield
    finally:
        if before is missing:
            ns.pop(name, None)
        else:
            ns[name] = before


def recorder(params, lr: float):
    """An SGD optimizer that keeps, in ``.applied``, the gradients each ``step()`` applied
    (for recipes that hand the student's training code an optimizer)."""
    import torch

    class Recorder(torch.optim.SGD):
        def __init__(self):
            super().__init__(params, lr=lr)
            self.applied = []

        def step(self, closure=None):
            ps = [p for group in self.param_groups for p in group["params"]]
            self.applied.append([None if p.grad is None else p.grad.detach().clone() for p in ps])
            return super().step(closure)

    return Recorder()


def compare_all(function: str, names, got, want) -> str | None:
    """``got`` a sequence of tensors like ``want``, named ``names`` in the messages."""
    if not isinstance(got, tuple | list) or len(got) != len(names):
        return f"{function} returned {describe(got)}; expected {', '.join(names)}"
    for name, g, w in zip(names, got, want, strict=True):
        problem = compare_tensor(name, g, w)
        if problem:
            return problem
    return None


# ----------------------------------------------------------------------------- the pass
def cells_to_run(nb, template) -> list[dict]:
    """The lesson's locked non-test code cells, the answer cells, the student's own cells,
    and the lesson's other cells (try-it cells, training loops, given helpers).

    The student's own cells and the lesson's other cells contribute their definitions only
    (imports, functions, classes, literal constants: see ``integrity_runner``): a graded
    function may call a helper the lesson gives (``layer_params``), but nothing slow runs.
    The hosted-runtime cell (``hosted.GRADE_ID``, which may install packages) never runs here.
    """
    from rnncourse_grader.hosted import GRADE_ID as HOSTED

    template_sources = {
        c.source for c in template.cells if c.cell_type == "code" and "nbgrader" not in c.metadata
    }
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        name = meta.get("grade_id") or f"cell {i}"
        if name == HOSTED:
            continue
        if meta.get("grade"):  # test cells do not run (their logic is what we do not trust):
            cells.append({"kind": "test", "name": name, "source": ""})  # probes go here
            continue
        if meta.get("solution"):
            cells.append({"kind": "answer", "name": name, "source": cell.source})
        elif meta.get("locked"):
            cells.append({"kind": "setup", "name": name, "source": cell.source})
        else:
            kind = "given" if cell.source in template_sources else "added"
            cells.append({"kind": kind, "name": name, "source": cell.source})
    return cells


def _read_limited(proc, data: bytes, timeout: float) -> tuple[bytes, str]:
    """Send ``data`` to the process, read its stdout up to a cap and a deadline."""
    deadline = time.monotonic() + timeout
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    chunks, size = [], 0
    fd = proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), f"it ran past its {timeout:.0f} s time limit"
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), ""
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            return b"", "its reply was over the size limit"
        chunks.append(chunk)


def run_pass(
    lesson_id: str,
    nb,
    template,
    passed_tests: set[str],
    *,
    seed: int,
    policy: dict,
    timeout: float = 120,
    root: Path | None = None,
) -> Report | None:
    """Check every function whose tests passed in the kernel; None if the lesson has no probes."""
    spec = lesson_spec(lesson_id, root)
    if spec is None:
        return None
    start = time.monotonic()
    present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
    report, probes, checked = Report([]), [], []
    rng = np.random.default_rng(seed)
    for probe in spec.probes:
        tests = tuple(t for t in probe.tests if t in present)
        if not tests:
            continue
        checked.append(probe)
        if set(tests) & passed_tests:
            probes.append((probe, probe.cases(rng)))
            report.verdicts.append(Verdict(probe.function, tests, "pass"))
        else:
            report.verdicts.append(
                Verdict(probe.function, tests, "not checked", "its tests failed")
            )
    if probes:
        results = ask(spec.module, nb, template, probes, policy, timeout, report)
        by_key = {p.key: v for p, v in zip(checked, report.verdicts, strict=True)}
        for probe, cases in probes:
            why = judge(probe, cases, results.get(probe.key), report.problem)
            if why:
                by_key[probe.key].status = "fail"
                by_key[probe.key].message = why
    report.seconds = time.monotonic() - start
    return report


def ask(module, nb, template, probes, policy, timeout, report) -> dict[str, list]:
    """Run the student's side once for every probe: its key -> its outcomes, one per case."""
    request = {
        "module": module,
        "cells": cells_to_run(nb, template),
        "probes": [
            {
                "function": p.function,
                "key": p.key,
                "tests": list(p.tests),
                "recipe": p.recipe,
                "forbid": p.forbid,
                "cases": [encode(c) for c in cases],
            }
            for p, cases in probes
        ],
    }
    messages, report.problem = _spawn(request, policy, timeout)
    results = {}
    for message in messages:
        if "cell_error" in message:
            report.cell_errors.append(message["cell_error"])
        elif "function" in message:
            key = message.get("key") or message["function"]
            results.setdefault(key, message.get("outcomes", []))
    report.cell_errors = report.cell_errors[:20]
    return results


def safely(compare):
    """The compare, with a rule that crashes on a malformed reply (a tensor of another dtype or
    shape than any honest run sends) turned into the reason the case failed."""

    @functools.wraps(compare)
    def guarded(got, want, case):
        try:
            return compare(got, want, case)
        except Exception as err:  # the rules expect what an honest run sends
            return f"the reply could not be judged ({type(err).__name__}: {str(err)[:160]})"

    return guarded


def plain_real(value):
    """A number the checks accept (``numbers.Real``: numpy floats too) as a Python float, so
    that it can come back from the runner; anything else as it is."""
    return float(value) if isinstance(value, numbers.Real) else value


def judge(probe: Probe, cases: list[dict], outcomes: list | None, problem: str = "") -> str | None:
    """None when the student's answers to every case are right, else why not (the first case
    that is wrong, named by its label: "on the grader's case T = 1: ...").

    Outcomes missing for any case mean the runner died, hung or garbled its reply: the
    grader's failure (``GraderFault``), never a zero.
    """
    if outcomes is None or len(outcomes) != len(cases):
        raise GraderFault(
            f"the integrity runner {problem or 'gave no answer'} before it checked {probe.function}"
        )
    for case, outcome in zip(cases, outcomes, strict=True):
        if isinstance(outcome, dict) and "error" in outcome:
            why = str(outcome["error"])
        else:
            got = decode_reply(outcome.get("value") if isinstance(outcome, dict) else None)
            why = probe.compare(got, probe.expected(case), case)
        if why:
            return f"on the grader's case {case['label']}: {why}" if case.get("label") else why
    return None


def _spawn(request: dict, policy: dict, timeout: float) -> tuple[list[dict], str]:
    """Run the student's side; return the messages it sent and what went wrong, if anything."""
    cmd = [sys.executable, "-m", "rnncourse_grader.sandbox", "--"]
    cmd += [sys.executable, "-I", "-m", "rnncourse_grader.integrity_runner"]
    env = {**os.environ, "RNNCOURSE_SANDBOX": json.dumps(policy)}
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        raw, problem = _read_limited(proc, json.dumps(request).encode(), timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    messages = []
    for line in raw.split(b"\n"):
        try:
            message = json.loads(line.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(message, dict):
            messages.append(message)
    if not problem and not any(m.get("done") for m in messages):
        code = proc.returncode
        how = f"exit status {code}" if code is not None and code >= 0 else f"signal {-code}"
        problem = f"ended early ({how})"
    return messages, problem
