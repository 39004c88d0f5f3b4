"""Loading official (and visdeploy-trained) checkpoints strictly, with key reports by name.

Official mmcv/detectron2/DETR checkpoints wrap the weights in ``state_dict`` or ``model`` and may
carry a ``module.`` prefix (DDP). We unwrap, optionally rename through a model's key map, and load
with ``strict=True``; any mismatch raises ``CheckpointError`` naming the keys.

Files are read without running code, in the forms the official projects publish:
- ``torch.save`` zip files (mmcv, DETR/VisTR ``main.py``, IFC): ``torch.load(weights_only=True)``
  with a few data-only types allowed besides tensors: ``argparse.Namespace`` (VisTR saves its
  ``args`` beside ``model``) and numpy arrays (state dicts of numpy arrays are converted).
- detectron2 ``.pkl`` files (a plain pickle of ``{"model": {name: ndarray}, "__author__": ...,
  "matching_heuristics": ...}``): a restricted unpickler that admits only numpy arrays and dtypes,
  dicts, lists, tuples, strings and numbers.
Anything else in a pickle is refused, naming what was refused; ``--trust-checkpoint`` lifts that
for files you trust (full unpickling runs the file's code).
"""

from __future__ import annotations

import argparse
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from models.errors import CheckpointError

_WRAPPER_KEYS = ("state_dict", "model", "model_state")
_MAX_LISTED = 20
# (module, name) a plain-pickle checkpoint may reference: numpy arrays, dtypes and scalars (numpy
# 1 pickles name ``numpy.core``, numpy 2 ``numpy._core``), ordered dicts, and ``_codecs.encode``,
# which protocol-2 pickles use to rebuild ``bytes`` (numpy's array payload; torch's own
# weights-only unpickler allows it for the same reason, torch/_weights_only_unpickler.py).
_PICKLE_ALLOWED = {("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}


class RefusedPickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the data-only allow-list."""


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes, containers, strings and numbers; refuses everything else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED and not (
                module in ("numpy", "numpy.dtypes") and name.endswith("DType")):
            raise RefusedPickleError(f"{module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # numpy 2 renamed it
            module = module.replace("numpy.core.", "numpy._core.", 1)
        return super().find_class(module, name)


def _numpy_safe_globals() -> list:
    """Data-only globals ``torch.load(weights_only=True)`` may meet besides tensors."""
    core = getattr(np, "_core", None) or np.core
    return [argparse.Namespace, OrderedDict, core.multiarray._reconstruct, core.multiarray.scalar,
            np.ndarray, np.dtype, *{type(np.dtype(t)) for t in "?bBhHiIlLqQefdgFD"}]


def _torch_load(path: Path, trust: bool):
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def _refused(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path} needs unpickling of arbitrary Python objects, which is refused by default: it "
        f"references {what}, which could run code while loading (only tensors, numpy arrays, "
        "argparse.Namespace, containers, strings and numbers are read without trust). If you "
        "trust the file, pass --trust-checkpoint (make export TRUST_CHECKPOINT=1).")


def _load_blob(path: Path, trust: bool) -> object:
    """The unpickled content of a torch zip, a legacy torch file or a plain (detectron2) pickle."""
    if zipfile.is_zipfile(path):
        return _torch_load(path, trust)
    data = path.read_bytes()
    try:
        blob = _DataOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedPickleError as err:
        if not trust:
            raise _refused(path, str(err)) from err
        blob = pickle.loads(data, encoding="latin1")  # the user vouched for the file
    if isinstance(blob, int):  # legacy (non-zip) torch.save files start with a magic number
        return _torch_load(path, trust)
    return blob


def read_state_dict(path: str | Path, *, trust: bool = False) -> dict[str, torch.Tensor]:
    """Read ``path`` and return its bare state dict (wrappers and ``module.`` stripped).

    With ``trust=False`` the file is read with ``torch.load(weights_only=True)``; a checkpoint
    that needs arbitrary unpickling is refused with a message naming ``--trust-checkpoint``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (pass the path of a .pth/.pt/.pkl file)")
    try:
        blob = _load_blob(path, trust)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):  # torch's weights-only unpickler names the global
            found = re.search(r"GLOBAL ([\w.]+)", str(err))
            raise _refused(path, found.group(1) if found else "a type outside the allowed ones") from err
        raise CheckpointError(f"cannot read checkpoint {path}: {err} (is it a complete .pth, "
                              ".pt or detectron2 .pkl file?)") from err
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err} (is it a complete .pth, "
                              ".pt or detectron2 .pkl file?)") from err
    return unwrap_state_dict(blob, source=str(path))


def unwrap_state_dict(blob: object, *, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Strip ``state_dict``/``model`` wrappers and a leading ``module.`` from every key."""
    while isinstance(blob, Mapping):
        inner = next((blob[k] for k in _WRAPPER_KEYS if isinstance(blob.get(k), Mapping)), None)
        if inner is None:
            break
        blob = inner
    if not isinstance(blob, Mapping) or not all(isinstance(v, torch.Tensor | np.ndarray)
                                                  for v in blob.values()):
        raise CheckpointError(f"{source} holds no state dict of tensors or numpy arrays")
    return {k.removeprefix("module."): torch.as_tensor(v) if isinstance(v, np.ndarray) else v
            for k, v in blob.items()}


def _listed(keys: list[str]) -> str:
    head = ", ".join(keys[:_MAX_LISTED])
    return head + (f", … ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def check_keys(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise ``CheckpointError`` listing missing, unexpected and wrongly shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} keys with another shape: {_listed(wrong_shape)}")
    if problems:
        raise CheckpointError(
            f"checkpoint does not fit {type(model).__name__} "
            f"(preset {getattr(model, 'preset', '?')!r}): " + "; ".join(problems)
            + ". Check that the checkpoint and --preset belong to the same model."
        )


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    trust: bool = False,
    key_map: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load ``path`` into ``model`` strictly, after the model family's optional ``key_map``."""
    state = read_state_dict(path, trust=trust)
    if key_map is not None:
        state = key_map(state)
    check_keys(model, state)
    model.load_state_dict(state, strict=True)
