"""The student's side of the integrity pass: ``python -I -m rnncourse_grader.integrity_runner``.

Runs in a fresh, sandboxed interpreter (see ``sandbox``). Reads one JSON request on stdin:
the cells to run in notebook order (the lesson's locked setup, the student's answer cells,
the imports, functions and classes of cells the student added, and markers where test cells
stand), and probes: a recipe (a function of the lesson's integrity module, run here) and the
inputs the grader generated. Writes JSON lines on the original stdout: for every case the
plain arrays the student's code returned, or the error it raised. No pickle anywhere; the
expected values never reach this process.

Nothing here is trusted by the grader: the student's code runs in this process and can change
anything in it. What it cannot do is learn the expected values, which exist only in the grader
process, or change the comparison, which happens there.
"""

import ast
import base64
import contextlib
import importlib
import json
import os
import sys
import types

ALLOWED_DTYPES = {"float64", "float32", "int64", "bool"}
# The ATen operators behind each built-in module, refused at the torch-function level too: this
# also catches references the student's code captured before the guard was installed
# (``f = torch._VF.rnn_tanh``) and calls through ``torch.ops.aten``.
BUILTIN_OPS = {
    "rnn": {"rnn_tanh", "rnn_tanh_cell", "rnn_relu", "rnn_relu_cell"},
    "lstm": {"lstm", "lstm_cell"},
    "gru": {"gru", "gru_cell"},
}


@contextlib.contextmanager
def no_builtin(kind: str, who: str):
    """Refuse the ATen operators of ``BUILTIN_OPS[kind]`` inside the block."""
    from torch.overrides import TorchFunctionMode

    names = BUILTIN_OPS.get(kind, set())  # autograd has no operator: guards.forbid catches it

    class Refuse(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "").split(".")[0]
            if name in names:
                raise RuntimeError(f"{who} calls PyTorch's built-in {kind.upper()} ({name})")
            return func(*args, **(kwargs or {}))

    with Refuse():
        yield


def encode(value, depth=0):
    """Plain JSON for tensors, arrays, numbers, tuples, lists and dicts of them."""
    import numpy as np
    import torch

    if depth > 6:
        return {"__type__": "too deeply nested"}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in ALLOWED_DTYPES:
            return {"__type__": f"tensor of {dtype}"}
        array = value.contiguous().numpy()
        return {
            "__array__": base64.b64encode(array.tobytes()).decode(),
            "dtype": dtype,
            "shape": list(array.shape),
            "tensor": True,
        }
    if isinstance(value, np.ndarray):
        return {"__type__": "numpy.ndarray"}
    if isinstance(value, bool) or value is None:
        return value
    if type(value) is str:  # an answer like gru_convention's label; long ones are cut
        return value[:200]
    if isinstance(value, int | float) and type(value) in (int, float):
        return value
    if isinstance(value, tuple | list):
        return {"__seq__": [encode(v, depth + 1) for v in value], "kind": type(value).__name__}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode(v, depth + 1) for k, v in value.items()}}
    return {"__type__": type(value).__name__}


def decode(value):
    """Inverse of the grader's encoding of inputs: arrays become tensors."""
    import numpy as np
    import torch

    if isinstance(value, dict) and "__array__" in value:
        if value["dtype"] not in ALLOWED_DTYPES:
            raise ValueError(f"dtype {value['dtype']} not allowed")
        raw = base64.b64decode(value["__array__"])
        array = np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"]).copy()
        return torch.from_numpy(array)
    if isinstance(value, dict) and "__seq__" in value:
        return [decode(v) for v in value["__seq__"]]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def definitions_only(source: str) -> str:
    """Imports, functions, classes and literal constants (``EPS = 1e-6``, ``NAMES = ("a",)``)
    of a cell (a student's helper cell, a helper the lesson gives), nothing that runs."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree.body = [node for node in tree.body if isinstance(node, keep) or _literal(node)]
    return ast.unparse(tree)


def _literal(node) -> bool:
    """A plain assignment of a literal to names: safe to run, and functions may read it."""
    if not isinstance(node, ast.Assign) or not all(isinstance(t, ast.Name) for t in node.targets):
        return False
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _short(err: BaseException) -> str:
    text = str(err)
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__)[:400]


def answer(module, namespace, probe) -> dict:
    """The student's outcome for every case of one probe: a value, or the error it raised."""
    from rnncourse_grader import integrity  # the shared recipes (call)
    from rnncourse_grader.guards import forbid

    recipe = getattr(module, probe["recipe"], None) or getattr(integrity, probe["recipe"])
    outcomes = []
    for case in probe["cases"]:
        try:
            args = decode(case)
            if probe.get("forbid"):
                kind, who = probe["forbid"], probe["function"]
                with forbid(kind, who), no_builtin(kind, who):
                    got = recipe(namespace, probe["function"], args)
            else:
                got = recipe(namespace, probe["function"], args)
            outcomes.append({"value": encode(got)})
        except BaseException as err:
            outcomes.append({"error": _short(err)})
    key = probe.get("key") or probe["function"]
    return {"function": probe["function"], "key": key, "outcomes": outcomes}


class Withheld(types.ModuleType):
    """Stands in for a module that holds this lesson's answers (``WITHHELD`` of the lesson's
    integrity module): any use of it raises ImportError with the reason."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"{self.__name__} holds this lesson's answers (for later lessons); it is not "
            "available while your own answers are graded"
        )


def withhold(names) -> None:
    """Make the modules ``names`` unusable from here on: imports and attribute access fail."""
    for name in names:
        sys.modules[name] = Withheld(name)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            with contextlib.suppress(AttributeError):
                delattr(sys.modules[parent], child)


def run(request: dict, send) -> None:
    """Run the cells in notebook order; probe each function where its first test cell stands.

    Each result is sent as soon as it exists: if the student's code ends the process later
    (``os._exit`` in a later cell), the functions checked before keep their verdicts, as in
    the notebook, where a dead kernel costs only the cells after it.
    """
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    module = importlib.import_module(request["module"])
    withhold(getattr(module, "WITHHELD", ()))  # after the grader's own imports, which use them
    waiting = list(request["probes"])
    for cell in request["cells"]:
        if cell["kind"] == "test":
            due = [p for p in waiting if cell["name"] in p["tests"]]
            for probe in due:
                waiting.remove(probe)
                send(answer(module, namespace, probe))
            continue
        source = cell["source"]
        if cell["kind"] in ("added", "given"):
            source = definitions_only(source)
        try:
            exec(compile(source, f"<{cell['name']}>", "exec"), namespace)
        except BaseException as err:  # SystemExit and KeyboardInterrupt too: the cell failed
            send({"cell_error": {"cell": cell["name"], "error": _short(err)}})
    for probe in waiting:
        send(answer(module, namespace, probe))


def main() -> None:
    reply_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the student's prints go nowhere
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    request = json.load(sys.stdin)
    out = os.fdopen(reply_fd, "w")

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    run(request, send)
    send({"done": True})
    os._exit(0)  # skip the student's atexit handlers and finalizers


if __name__ == "__main__":
    main()
