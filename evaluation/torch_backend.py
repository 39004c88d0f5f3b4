"""A runtime backend that runs the PyTorch model itself: the eager reference row of the accuracy
table. Lives outside ``runtime/`` because it imports torch (lazily, on activation)."""

from __future__ import annotations

import numpy as np

from runtime.backends.base import Backend
from runtime.manifest import Manifest


class TorchEagerBackend(Backend):
    """``infer(frames)`` through ``models.build_model`` with the manifest's model, preset and
    checkpoint (fp32, CPU, ``torch.inference_mode``)."""

    name = "pytorch-eager"

    def __init__(self, manifest: Manifest, checkpoint: str | None = None) -> None:
        super().__init__(manifest)
        source = manifest.data.get("source", {})
        self.checkpoint = checkpoint or (source.get("checkpoint") if source.get("checkpoint_sha256") else None)
        self.model = None

    def activate_impl(self) -> None:
        import torch

        from models import build_model

        torch.manual_seed(0)  # the exporter's seed, for random-init artifacts
        self.model = build_model(self.manifest.model, self.manifest.data["preset"], self.checkpoint)

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(frames), torch.from_numpy(content_hw))
        return {name: value.numpy() for name, value in outputs.items()}

    def deactivate_impl(self) -> None:
        self.model = None
