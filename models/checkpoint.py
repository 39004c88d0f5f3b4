"""Loading official (and visdeploy-trained) checkpoints strictly, with key reports by name.

Official mmcv/detectron2/DETR checkpoints wrap the weights in ``state_dict`` or ``model`` and may
carry a ``module.`` prefix (DDP). We unwrap, optionally rename through a model's key map, and load
with ``strict=True``; any mismatch raises ``CheckpointError`` naming the keys.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from models.errors import CheckpointError

_WRAPPER_KEYS = ("state_dict", "model", "model_state")
_MAX_LISTED = 20


def read_state_dict(path: str | Path, *, trust: bool = False) -> dict[str, torch.Tensor]:
    """Read ``path`` and return its bare state dict (wrappers and ``module.`` stripped).

    With ``trust=False`` the file is read with ``torch.load(weights_only=True)``; a checkpoint
    that needs arbitrary unpickling is refused with a message naming ``--trust-checkpoint``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (pass the path of a .pth/.pt file)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} needs unpickling of arbitrary Python objects, which is refused by default "
            f"({str(err).splitlines()[0]}). If you trust the file, pass --trust-checkpoint."
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    return unwrap_state_dict(blob, source=str(path))


def unwrap_state_dict(blob: object, *, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Strip ``state_dict``/``model`` wrappers and a leading ``module.`` from every key."""
    while isinstance(blob, Mapping):
        inner = next((blob[k] for k in _WRAPPER_KEYS if isinstance(blob.get(k), Mapping)), None)
        if inner is None:
            break
        blob = inner
    if not isinstance(blob, Mapping) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise CheckpointError(f"{source} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in blob.items()}


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
