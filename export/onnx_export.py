"""Trace a visdeploy model into ONNX with the dynamo exporter: uint8 frames in, contract out.

The dynamo exporter is used at opset 18: the legacy one bakes sequence lengths of attention
into the graph, and opset 23 emits RoiAlign-22, which onnxruntime cannot run (toolchain.md §3).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from export.graph_fixes import apply_trt_fixes
from models.base import OUTPUT_NAMES, VISModel

DEFAULT_OPSET = 18
SUPPORTED_OPSETS = (18, 19, 20)
log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """The model could not be exported or the exported graph failed a check."""


def sample_frames(model: VISModel, batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    """A deterministic uint8 Tensor[batch, frames, H, W, 3] at the model's input size."""
    h, w = model.spec.input_hw
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, frames, h, w, 3), dtype=torch.uint8, generator=gen)


def _dynamic_shapes(model: VISModel) -> dict:
    spec = model.spec
    batch = torch.export.Dim("B", min=spec.batch[0], max=max(spec.batch[2], 2))
    if spec.fixed_frames:
        return {"frames": {0: batch}}
    frames = torch.export.Dim("T", min=spec.frames[0], max=max(spec.frames[2], 2))
    return {"frames": {0: batch, 1: frames}}


def export_onnx(model: VISModel, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` to ``path`` (one self-contained file) with dynamic B (and T unless fixed).

    The trace sample uses B=2 and T=3 (or the fixed T) so that no dimension is specialised to 1.
    """
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"opset {opset} is not supported; use one of {SUPPORTED_OPSETS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = model.spec.fixed_frames or min(3, model.spec.frames[2])
    sample = sample_frames(model, 2, t)
    model = model.eval()
    # torchvision's ops (roi_align) must be registered with torch before the exporter builds its
    # op registry, or their ONNX translations (RoiAlign) are silently left out of it.
    import torchvision  # noqa: F401
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter deprecation chatter; failures still raise
        try:
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=["frames"],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=_dynamic_shapes(model),
                external_data=False,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many types; wrap with context
            raise ExportError(f"ONNX export of {model.spec.name}/{model.spec.preset} failed: {err}") from err
    apply_trt_fixes(str(path))
    return path
