"""Read each layer's precision back from a built engine and compare it with the request.

TensorRT 11 ignores precision builder flags, and other tools have silently produced FP32 engines
there; so after every build the engine inspector's JSON (``ProfilingVerbosity.DETAILED``) is read,
each layer's output tensor types are classified, and the build fails when they contradict the
requested precision:

- ``fp32``: no layer produces FP16/BF16/INT8/FP8/FP4/INT4 tensors;
- ``fp16``: at least one layer produces FP16 tensors, none INT8/FP8/FP4/INT4;
- ``int8``: at least one layer produces INT8 tensors.

The JSON parsing is pure (tested on CPU with 10.x- and 11.x-shaped documents); only
``engine_layer_information`` touches TensorRT.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

# Ordered: longer names first ("BFLOAT16" before "FLOAT16" before "FLOAT", "UINT8" before "INT8").
TYPE_KEYWORDS = (
    ("BFLOAT16", "bf16"), ("BF16", "bf16"), ("FLOAT8", "fp8"), ("FP8", "fp8"), ("E4M3", "fp8"),
    ("FLOAT4", "fp4"), ("FP4", "fp4"), ("FLOAT16", "fp16"), ("HALF", "fp16"), ("FP16", "fp16"),
    ("UINT8", "uint8"), ("INT8", "int8"), ("INT4", "int4"), ("INT32", "int32"),
    ("INT64", "int64"), ("BOOL", "bool"), ("FLOAT", "fp32"), ("FP32", "fp32"),
)
REDUCED = {"fp16", "bf16", "int8", "fp8", "fp4", "int4"}
QUANTIZED = {"int8", "fp8", "fp4", "int4"}


class PrecisionMismatchError(RuntimeError):
    """The built engine's layer precisions contradict the requested precision."""


def classify_type(text: str) -> str:
    """Canonical type (``fp32``, ``fp16``, ``int8``, ...) of an inspector type string."""
    upper = text.upper()
    return next((name for key, name in TYPE_KEYWORDS if key in upper), "unknown")


@dataclass
class LayerPrecisions:
    """Per-layer output types and their totals over the engine."""

    layers: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # name, type, dtypes
    counts: Counter = field(default_factory=Counter)
    unverified: str = ""  # why the types could not be read (then nothing is checked)

    @property
    def verified(self) -> bool:
        return not self.unverified

    def describe(self) -> str:
        """``fp16 120, fp32 40, int32 5`` over all layer outputs (or why they are unknown)."""
        if self.unverified:
            return f"unverified: {self.unverified}"
        return ", ".join(f"{k} {v}" for k, v in self.counts.most_common()) or "no tensors"

    def as_manifest(self) -> dict:
        """The manifest's ``layer_precisions``: per-type counts, or ``{"unverified": why}``."""
        return {"unverified": self.unverified} if self.unverified else dict(self.counts)


def _tensor_type(tensor: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        if tensor.get(key):
            return classify_type(str(tensor[key]))
    return "unknown"


def parse_layer_information(info: dict, type_keys: tuple[str, ...]) -> LayerPrecisions:
    """``LayerPrecisions`` from ``IEngineInspector.get_engine_information`` JSON (as a dict).

    ``type_keys`` name the data-type field of a tensor entry (``TrtFlavor.inspector_type_keys``).
    Raises ``PrecisionMismatchError`` when the engine carries no per-layer detail.
    """
    layers = info.get("Layers")
    if not layers or not all(isinstance(layer, dict) for layer in layers):
        raise PrecisionMismatchError(
            "the engine has no detailed layer information (needs ProfilingVerbosity.DETAILED); "
            "layer precisions cannot be verified — rebuild with python -m export.tensorrt")
    result = LayerPrecisions()
    for layer in layers:
        dtypes = tuple(_tensor_type(t, type_keys) for t in layer.get("Outputs") or [])
        result.layers.append((layer.get("Name", "?"), layer.get("LayerType", "?"), dtypes))
        result.counts.update(dtypes)
    if result.counts and set(result.counts) == {"unknown"}:
        keys = sorted({k for layer in layers for t in layer.get("Outputs") or [] for k in t})
        result.unverified = (f"no output tensor has a type key {list(type_keys)} (keys seen: "
                             f"{keys[:8]}); this TensorRT writes its inspector JSON differently")
    return result


def check_precision(found: LayerPrecisions, requested: str) -> None:
    """Raise ``PrecisionMismatchError`` when ``found`` contradicts ``requested``; an unverified
    read-back (no type key found) checks nothing (the build logs and records it)."""
    if not found.verified:
        return
    present = {k for k, v in found.counts.items() if v}
    if requested == "fp32":
        bad = sorted(present & REDUCED)
        problem = f"layers produce {bad} tensors in an fp32 engine" if bad else ""
    elif requested == "fp16":
        bad = sorted(present & QUANTIZED)
        problem = ("no layer runs in FP16" if "fp16" not in present else
                   f"layers produce quantized {bad} tensors in an fp16 engine" if bad else "")
    elif requested == "int8":
        problem = "no layer runs in INT8 (the Q/DQ nodes were not honoured)" if "int8" not in present else ""
    else:
        raise ValueError(f"precision must be fp32, fp16 or int8, got {requested!r}")
    if problem:
        examples = [f"{name} [{kind}] -> {', '.join(types)}" for name, kind, types in found.layers[:5]]
        raise PrecisionMismatchError(
            f"requested {requested}, but {problem} (layer outputs: {found.describe()}; first "
            f"layers: {'; '.join(examples)}). Check that model.{requested}.onnx holds the "
            "precision (python -m calibration) — TensorRT 11 takes precision only from the ONNX")


def engine_layer_information(engine, trt) -> dict:
    """The engine inspector's JSON for all layers, as a dict."""
    inspector = engine.create_engine_inspector()
    return json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
