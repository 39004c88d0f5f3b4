"""Advice for an artifact whose export form is slower on CPU runtimes than an equivalent one.

TeViT's RoIAlign has two ONNX forms with the same outputs (docs/architecture.md): ``onnx``, the
exporter's default, pools every RoI on all four FPN levels with fixed shapes, the form
TensorRT's ``ROIAlign_TRT`` plugin builds; ``onnx_gathered`` pools each RoI on its own level
only (data-dependent shapes inside the graph), which onnxruntime and OpenVINO run faster
(docs/benchmarks.md: msgshift OpenVINO INT8 1744 -> 1342 ms a window, tiny onnxruntime FP32
208 -> 135 ms). The default stays TensorRT's form because no TensorRT engine has been built from
the per-level form (docs/tensorrt.md); a CPU user is told how to get the faster one.
"""

from __future__ import annotations

import logging

from runtime.manifest import Manifest

log = logging.getLogger("runtime.backends")


def cpu_export_form_advice(manifest: Manifest) -> str | None:
    """A sentence naming the faster CPU export of the same model, or None when the artifact is
    already in its fastest CPU form (or its form is not recorded: manifests before the
    ``model_extra.roi_align`` record)."""
    if manifest.model != "tevit" or manifest.data.get("model_extra", {}).get("roi_align") != "onnx":
        return None
    return (f"{manifest.directory} pools every TeViT RoI on all four FPN levels (--roi-align "
            "onnx, the form for TensorRT); on CPU the per-level form gives the same outputs in "
            "23-35 % less time a window: make export MODEL=tevit "
            f"PRESET={manifest.data.get('preset', 'tiny')} ROI_ALIGN=onnx_gathered")


def log_cpu_export_form_advice(manifest: Manifest) -> None:
    """Log ``cpu_export_form_advice`` at INFO when there is one (a CPU backend activating)."""
    advice = cpu_export_form_advice(manifest)
    if advice is not None:
        log.info("%s", advice)
