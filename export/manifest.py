"""Build the manifest (docs/contract.md §2) of an exported model; the schema lives in ``runtime.manifest``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import torch

from models.base import VISModel
from plugins import plugins_of_onnx
from runtime.manifest import MANIFEST_FORMAT, sha256_file


def artifact_entry(directory: Path, file: str, *, kind: str, precision: str, **extra) -> dict:
    """Manifest entry for ``directory/file`` with its sha256 and size; an ONNX entry also lists
    the TensorRT plugins its ops need (``plugins.plugins_of_onnx``; empty for most graphs)."""
    path = directory / file
    if kind == "onnx":
        extra = {"tensorrt_plugins": plugins_of_onnx(path), **extra}
    return {"file": file, "kind": kind, "precision": precision, "sha256": sha256_file(path),
            "size_bytes": path.stat().st_size, **extra}


def build_manifest(model: VISModel, directory: Path, artifacts: list[dict], *,
                   checkpoint: str | None, parity: dict) -> dict:
    """The manifest dict for ``model`` exported into ``directory``."""
    spec = model.spec
    frames = (spec.fixed_frames,) * 3 if spec.fixed_frames else spec.frames
    window_length, window_stride = spec.window
    return {
        "format": MANIFEST_FORMAT,
        "model": spec.name,
        "preset": spec.preset,
        "classes": list(spec.classes),
        "input": {
            "height": spec.input_hw[0],
            "width": spec.input_hw[1],
            "frames": dict(zip(("min", "opt", "max"), frames)),
            "batch": dict(zip(("min", "opt", "max"), spec.batch)),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "layout": "BTHW3 uint8 RGB; letterbox keep-ratio, pad bottom/right with the mean colour",
        },
        "outputs": {"K": spec.num_outputs, "embedding_dim": spec.embedding_dim, "mask_stride": 4,
                    **({"pasted_mask_cells": model.pasted_mask_cells}
                       if model.pasted_mask_cells else {})},
        "window": {"length": window_length, "stride": window_stride,
                   "pad": "cyclic" if spec.fixed_frames else "none"},
        "artifacts": artifacts,
        "source": {
            "checkpoint": checkpoint or "random-init (outputs are meaningless)",
            "checkpoint_sha256": sha256_file(checkpoint) if checkpoint else None,
            "torch": torch.__version__,
            "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "model_extra": spec.extra,
        "parity": {"onnxruntime": parity},
    }
