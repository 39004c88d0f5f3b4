"""Official IFC checkpoint keys -> visdeploy keys.

The module tree mirrors the official ``Ifc`` meta-architecture (``detr.backbone.0.backbone.stem…``,
``detr.transformer.encoder.enc_layers.N…``, ``detr.mask_head…``), so every weight keeps its
official name. The one difference: the training criterion's class-weight buffer
``criterion.empty_weight`` [C+1] is saved in official checkpoints but is not part of an
inference model, so it is dropped here. Nothing else is renamed or silently discarded.
"""

from __future__ import annotations

import torch

TRAINING_ONLY_KEYS = ("criterion.empty_weight",)


def KEY_MAP(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # noqa: N802 (registry name)
    """Return ``state`` without the training-only keys (other keys untouched)."""
    return {k: v for k, v in state.items() if k not in TRAINING_ONLY_KEYS}
