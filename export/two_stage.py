"""Two-stage ONNX export (DESIGN §4) for models whose backbone is per frame (IFC, VisTR).

The frame stage maps ``frames`` uint8 [B, T, H, W, 3] to per-frame features (each [B, T, ...]);
the clip stage maps the features of one window to the six contract outputs. The runtime runs the
frame stage once per new frame, caches its features and feeds the last T of them to the clip
stage, so overlapping windows never recompute the backbone.

Model-agnostic: the model provides ``frame_stage(frames) -> tuple[Tensor, ...]``,
``clip_stage(*features, content_hw=None) -> dict`` (contract outputs) and
``frame_feature_names``; the composition must equal ``forward`` (tested per model). A model that
reads the image size (``uses_content_hw``) takes ``content_hw`` in its clip stage: the backbone
ignores padding, the clip stage masks it.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from export.onnx_export import DEFAULT_OPSET, ExportError, sample_content_hw
from export.reproducible import make_reproducible
from models.base import CONTENT_HW, OUTPUT_NAMES

log = logging.getLogger(__name__)

FRAME_STAGE_FILE = "frame_stage.onnx"
CLIP_STAGE_FILE = "clip_stage.onnx"


class TwoStageUnsupportedError(ValueError):
    """The model has no separable per-frame stage (e.g. TeViT, whose backbone mixes frames)."""


@dataclass(frozen=True)
class TwoStageExport:
    """Paths and I/O names of the two exported stages."""

    frame_path: Path
    clip_path: Path
    feature_names: tuple[str, ...]
    takes_content_hw: bool = False

    @property
    def clip_inputs(self) -> tuple[str, ...]:
        """The clip stage's graph inputs: the features, then ``content_hw`` when declared."""
        return self.feature_names + ((CONTENT_HW,) if self.takes_content_hw else ())

    def manifest_stages(self, *, opset: int = DEFAULT_OPSET) -> list[dict]:
        """Manifest ``artifacts`` entries (sha256, size), frame stage first, with stage I/O names."""
        from export.manifest import artifact_entry

        directory = self.frame_path.parent
        return [
            artifact_entry(directory, self.frame_path.name, kind="onnx", precision="fp32",
                           opset=opset, stage="frame", inputs=["frames"],
                           outputs=list(self.feature_names)),
            artifact_entry(directory, self.clip_path.name, kind="onnx", precision="fp32",
                           opset=opset, stage="clip", inputs=list(self.clip_inputs),
                           outputs=list(OUTPUT_NAMES)),
        ]


class TwoStageSession:
    """onnxruntime frame + clip stage sessions behind the one-graph ``session.run`` call (for parity)."""

    def __init__(self, exported: TwoStageExport):
        from export.parity import ort_session

        self.feature_names = list(exported.feature_names)
        self.frame = ort_session(exported.frame_path)
        self.clip = ort_session(exported.clip_path)

    def run(self, output_names: list[str], feeds: dict):
        features = self.frame.run(self.feature_names, {"frames": feeds["frames"]})
        clip_feeds = dict(zip(self.feature_names, features, strict=True))
        if CONTENT_HW in feeds:
            clip_feeds[CONTENT_HW] = feeds[CONTENT_HW]
        return self.clip.run(output_names, clip_feeds)


class FrameStage(nn.Module):
    """frames uint8 [B, T, H, W, 3] -> tuple of per-frame features [B, T, ...]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.frame_stage(frames))


class ClipStage(nn.Module):
    """features of one window -> contract outputs as a tuple in ``OUTPUT_NAMES`` order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``inputs``: the frame features, then ``content_hw`` when the model takes it."""
        if self.model.uses_content_hw:
            out = self.model.clip_stage(*inputs[:-1], content_hw=inputs[-1])
        else:
            out = self.model.clip_stage(*inputs)
        return tuple(out[name] for name in OUTPUT_NAMES)


def supports_two_stage(model: nn.Module) -> bool:
    """Whether ``model`` has a separable per-frame stage (IFC yes; TeViT and VisTR no)."""
    return all(hasattr(model, a) for a in ("frame_stage", "clip_stage", "frame_feature_names"))


def check_two_stage(model: nn.Module) -> tuple[str, ...]:
    """Return the model's feature names, or raise ``TwoStageUnsupportedError`` saying what is missing."""
    missing = [a for a in ("frame_stage", "clip_stage", "frame_feature_names") if not hasattr(model, a)]
    if missing:
        raise TwoStageUnsupportedError(
            f"{type(model).__name__} cannot be exported in two stages: it lacks {', '.join(missing)}. "
            "Export it as one graph instead (export.onnx)."
        )
    return tuple(model.frame_feature_names)


def _export(module: nn.Module, args: tuple, path: Path, *, input_names: list[str],
            output_names: list[str], opset: int, batch_max: int, frames_max: int) -> None:
    dim_b = torch.export.Dim("B", min=1, max=batch_max)
    dim_t = torch.export.Dim("T", min=1, max=frames_max)
    # features are [B, T, ...]; content_hw is [B, 2]
    per_input = tuple({0: dim_b} if name == CONTENT_HW else {0: dim_b, 1: dim_t} for name in input_names)
    # ClipStage.forward(*features) is one variadic parameter for torch.export.
    dynamic = per_input if isinstance(module, FrameStage) else (per_input,)
    start = time.perf_counter()
    log.info("Exporting %s …", path.name)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter; failures still raise
        try:
            torch.onnx.export(
                module, args, str(path), dynamo=True, opset_version=opset,
                input_names=input_names, output_names=output_names, dynamic_shapes=dynamic,
                external_data=False, verbose=False,
            )
        except Exception as err:  # the exporter raises many types; wrap with context
            raise ExportError(f"two-stage export of {path.name} failed: {err}") from err
    make_reproducible(path)
    log.info("Exported %s in %.1f s (%.1f MB)", path.name, time.perf_counter() - start,
             path.stat().st_size / 1e6)


def export_two_stage(
    model: nn.Module, out_dir: str | Path, *, opset: int = DEFAULT_OPSET
) -> TwoStageExport:
    """Export ``model`` (eval mode) as ``frame_stage.onnx`` + ``clip_stage.onnx`` in ``out_dir``.

    B and T are dynamic in both stages within ``model.spec.batch`` / ``model.spec.frames`` maxima;
    H and W are fixed at ``model.spec.input_hw``. The sample batch is B=2, T=3 (sizes 0 and 1 would
    be specialised by torch.export).
    """
    names = check_two_stage(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = model.spec
    h, w = spec.input_hw
    sample = torch.randint(0, 256, (2, 3, h, w, 3), dtype=torch.uint8)
    limits = {"opset": opset, "batch_max": max(spec.batch[2], 2), "frames_max": max(spec.frames[2], 2)}
    frame_path, clip_path = out_dir / FRAME_STAGE_FILE, out_dir / CLIP_STAGE_FILE
    _export(FrameStage(model), (sample,), frame_path, input_names=["frames"],
            output_names=list(names), **limits)
    with torch.no_grad():
        features = tuple(model.frame_stage(sample))
    if len(features) != len(names):
        raise TwoStageUnsupportedError(
            f"frame_stage returned {len(features)} tensors but frame_feature_names lists {len(names)}"
        )
    exported = TwoStageExport(frame_path, clip_path, names, bool(model.uses_content_hw))
    clip_args = features + ((sample_content_hw(model, 2),) if exported.takes_content_hw else ())
    _export(ClipStage(model), clip_args, clip_path, input_names=list(exported.clip_inputs),
            output_names=list(OUTPUT_NAMES), **limits)
    return exported
