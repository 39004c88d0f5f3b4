"""PyTorch definitions of the VIS models visdeploy deploys, behind one factory.

``build_model(name, preset=..., checkpoint=...)`` returns an eval-mode ``VISModel`` whose
``forward(frames)`` takes the engine contract's uint8 ``frames`` (B, T, H, W, 3) and returns the
contract's outputs (DESIGN §4). Each model package registers a ``ModelEntry`` in ``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from models.errors import UnknownModelError

__all__ = ["available", "build_model", "UnknownModelError"]


@dataclass(frozen=True)
class ModelEntry:
    """Where a model family lives: ``module`` must expose ``PRESETS`` (dict) and ``build(preset)``."""

    module: str


# name -> entry; the module is imported only when the model is built (keeps imports light).
_REGISTRY: dict[str, ModelEntry] = {
    "tevit": ModelEntry("models.tevit.model"),
    "ifc": ModelEntry("models.ifc.model"),
    "vistr": ModelEntry("models.vistr.model"),
}


def _family(name: str):
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; available models: {', '.join(sorted(_REGISTRY))}"
        )
    try:
        return importlib.import_module(_REGISTRY[name].module)
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith(f"models.{name}"):
            raise UnknownModelError(f"model {name!r} is registered but not implemented yet") from err
        raise


def available() -> dict[str, list[str]]:
    """Model names with their presets, e.g. ``{"tevit": ["msgshift", "tiny"]}`` (implemented only)."""
    names = {}
    for name in sorted(_REGISTRY):
        try:
            names[name] = sorted(_family(name).PRESETS)
        except UnknownModelError:
            continue
    return names


def build_model(
    name: str,
    preset: str = "tiny",
    checkpoint: str | Path | None = None,
    *,
    trust_checkpoint: bool = False,
    input_hw: tuple[int, int] | None = None,
):
    """Build model ``name`` at ``preset``, load ``checkpoint`` strictly when given, return it in eval mode.

    ``input_hw`` (multiples of 32) replaces the preset's input size: the weights of every family
    are size-free, so an artifact can be exported for a camera's aspect ratio (no letterbox
    padding: exactly the official computation, which never pads).

    Raises:
        UnknownModelError: the name or preset does not exist (the message lists what does).
        CheckpointError: the checkpoint is unreadable or its keys do not match (listed by name).
    """
    family = _family(name)
    if preset not in family.PRESETS:
        raise UnknownModelError(
            f"unknown preset {preset!r} for model {name!r}; presets: {', '.join(sorted(family.PRESETS))}"
        )
    model = family.build(preset)
    if input_hw is not None:
        model.set_input_size(*input_hw)
    if checkpoint is not None:
        from models.checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint, trust=trust_checkpoint, key_map=getattr(family, "KEY_MAP", None))
        model.checkpoint_path = str(checkpoint)
    return model.eval()
