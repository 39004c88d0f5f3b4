"""Trace a visdeploy model into ONNX with the dynamo exporter: uint8 frames in, contract out.

The dynamo exporter is used at opset 18: the legacy one bakes sequence lengths of attention
into the graph, and opset 23 emits RoiAlign-22, which onnxruntime 1.32 cannot run
(docs/architecture.md, "Export").

Models whose official inference reads the image size (``VISModel.uses_content_hw``) get a second
input ``content_hw`` int32 [B, 2] with the same dynamic B as ``frames``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from export.graph_fixes import apply_trt_fixes
from export.reproducible import make_reproducible
from models.base import CONTENT_HW, OUTPUT_NAMES, VISModel

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


def model_inputs(model: VISModel) -> list[str]:
    """The graph inputs of ``model``'s export: ``frames`` and, when it reads the image size,
    ``content_hw`` (the manifest lists these per artifact)."""
    return ["frames", CONTENT_HW] if model.uses_content_hw else ["frames"]


def sample_content_hw(model: VISModel, batch: int) -> torch.Tensor:
    """int32 Tensor[batch, 2]: row 0 the whole input, then letterboxes of a 4:3 and a 16:9
    source in turn (real sizes a camera produces), so parity covers padded and unpadded clips."""
    h, w = model.spec.input_hw
    shapes = [(h, w), (h, min(w, round(h * 4 / 3))), (min(h, round(w * 9 / 16)), w)]
    return torch.tensor([shapes[i % len(shapes)] for i in range(batch)], dtype=torch.int32)


def sample_inputs(model: VISModel, batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The positional inputs of ``model`` (``model_inputs`` order) for a (batch, frames) case."""
    sample = sample_frames(model, batch, frames, seed)
    return (sample, sample_content_hw(model, batch)) if model.uses_content_hw else (sample,)


def _dynamic_shapes(model: VISModel) -> dict:
    spec = model.spec
    batch = torch.export.Dim("B", min=spec.batch[0], max=max(spec.batch[2], 2))
    shapes = {"frames": {0: batch}}
    if not spec.fixed_frames:
        shapes["frames"][1] = torch.export.Dim("T", min=spec.frames[0], max=max(spec.frames[2], 2))
    if model.uses_content_hw:
        shapes[CONTENT_HW] = {0: batch}
    return shapes


def export_onnx(model: VISModel, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` to ``path`` (one self-contained file) with dynamic B (and T unless fixed).

    The trace sample uses B=2 and T=3 (or the fixed T) so that no dimension is specialised to 1.
    """
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"opset {opset} is not supported; use one of {SUPPORTED_OPSETS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = model.spec.fixed_frames or min(3, model.spec.frames[2])
    sample = sample_inputs(model, 2, t)
    model = model.eval()
    # torchvision's ops (roi_align) must be registered with torch before the exporter builds its
    # op registry, or their ONNX translations (RoiAlign) are silently left out of it.
    import torchvision  # noqa: F401
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter deprecation chatter; failures still raise
        try:
            torch.onnx.export(
                model,
                sample,
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=model_inputs(model),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=_dynamic_shapes(model),
                external_data=False,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many types; wrap with context
            raise ExportError(f"ONNX export of {model.spec.name}/{model.spec.preset} failed: {err}") from err
    apply_trt_fixes(str(path))
    make_reproducible(path)
    return path
