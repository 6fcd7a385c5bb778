"""Reading a saved model safely: a checkpoint is data (tensors, lists, numbers), never code.

``torch.load(path, weights_only=True)`` unpickles only tensors and plain containers; a file
that holds a pickled ``nn.Module`` or any other object is refused instead of being run. This
is how the course (and its grader) reads every checkpoint a person hands in.

The checkpoint of lesson 05 is a dict::

    {"state_dict": {name: tensor},          # model.state_dict(), on the CPU
     "vocab": ["<pad>", "<unk>", ...],      # token of every id, in id order
     "model_config": {...},                 # the model's constructor arguments
     "max_len": int}                        # reviews were clipped to this many tokens
"""

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

MAX_BYTES = 100 * 1024 * 1024  # nbgrader leaves out submitted files above 100 MB
REQUIRED = {"state_dict": dict, "vocab": list, "model_config": dict, "max_len": int}
SPECIALS = ("<pad>", "<unk>")


class CheckpointError(ValueError):
    """A checkpoint is missing, unsafe or malformed; the message says which and what to do."""


def read_checkpoint(
    path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, max_len: bool = True
) -> dict:
    """Load a lesson-05 checkpoint with ``weights_only=True`` and check its structure.

    ``max_len=False`` reads a language model's checkpoint (lesson 07), which has no clip
    length: the same structure without ``max_len``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"No checkpoint at {path}: train the model and save it there with save_checkpoint "
            "(hand it in next to the notebook)."
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(
            f"{path} is {size / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB "
            "(nbgrader drops larger files): use a smaller vocabulary or embedding."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects that a safe load (weights_only=True) refuses to run: "
            "save model.state_dict() and plain lists, dicts, str, int and float, not the "
            f"model object.{_refused_global(err)}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or not written by "
            f"torch.save?): {type(err).__name__}: {err}"
        ) from None
    return validate_checkpoint(checkpoint, str(path), max_len=max_len)


def _refused_global(err: Exception) -> str:
    """The name torch's safe unpickler refused, e.g. " (refused: torch.nn.Linear)"."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f" (refused: {found.group(1)})" if found else ""


def validate_checkpoint(checkpoint, name: str = "the checkpoint", *, max_len: bool = True) -> dict:
    """Check the lesson-05 structure (without ``max_len`` if False); return it unchanged."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{name} holds a {type(checkpoint).__name__}; expected a dict.")
    required = REQUIRED if max_len else {k: v for k, v in REQUIRED.items() if k != "max_len"}
    missing = sorted(set(required) - set(checkpoint))
    if missing:
        raise CheckpointError(
            f"{name} lacks {', '.join(missing)}; it has {sorted(map(str, checkpoint))}."
        )
    for key, kind in required.items():
        value = checkpoint[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(
                f"{name}: {key} is a {type(value).__name__}; expected a {kind.__name__}."
            )
    state = checkpoint["state_dict"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if not state or bad:
        raise CheckpointError(f"{name}: state_dict must map parameter names to tensors.")
    vocab = checkpoint["vocab"]
    if not all(isinstance(token, str) for token in vocab) or tuple(vocab[:2]) != SPECIALS:
        raise CheckpointError(
            f"{name}: vocab must be the list of tokens in id order, starting with "
            f"{list(SPECIALS)}; it starts with {vocab[:3]!r}."
        )
    if len(set(vocab)) != len(vocab):
        raise CheckpointError(f"{name}: vocab lists a token twice.")
    config = checkpoint["model_config"]
    if not all(isinstance(k, str) and _plain_argument(v) for k, v in config.items()):
        raise CheckpointError(
            f"{name}: model_config must map argument names to numbers, strings, booleans, "
            "None or lists of integers."
        )
    if max_len and checkpoint["max_len"] < 1:
        raise CheckpointError(f"{name}: max_len must be positive.")
    return checkpoint


def _plain_argument(value) -> bool:
    """A constructor argument a checkpoint may hold: a number, string, boolean or None, or a
    list of integers (a language model's adaptive-softmax cutoffs)."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )
