"""Pure parts of an engine build: plan file name, optimisation profile, manifest entry.

Nothing here needs TensorRT, a GPU or torch.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from runtime.manifest import MANIFEST_NAME, Manifest, sha256_file, write_manifest

PRECISIONS = ("fp32", "fp16", "int8")
ONNX_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
VENDOR_WORDS = {"nvidia", "geforce", "tesla", "quadro", "jetson", "agx", "developer", "kit"}


class PlanConfigError(ValueError):
    """The manifest or the request cannot describe an engine build (ranges, names, precision)."""


def gpu_slug(name: str) -> str:
    """Short GPU name for plan files: ``NVIDIA H100 80GB HBM3`` -> ``h100``, ``NVIDIA GeForce
    RTX 4090`` -> ``rtx4090``, ``Orin (nvgpu)`` -> ``orin``."""
    words = [w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in VENDOR_WORDS]
    if not words:
        raise PlanConfigError(f"cannot derive a short GPU name from {name!r}; pass --gpu-name")
    if words[0] in ("rtx", "gtx") and len(words) > 1:
        return words[0] + words[1]
    return words[0]


def plan_file_name(precision: str, gpu: str) -> str:
    """``model.<precision>.<gpu>.trt.plan``."""
    if precision not in PRECISIONS:
        raise PlanConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", gpu):
        raise PlanConfigError(f"GPU name {gpu!r} must be lower-case letters, digits, - or _")
    return f"model.{precision}.{gpu}.trt.plan"


def onnx_entry(manifest: Manifest, precision: str) -> dict:
    """The manifest's ONNX entry at ``precision``, with a message naming how to make it."""
    try:
        return manifest.artifact("onnx", precision)
    except Exception as err:  # ArtifactError: say which command produces the file
        make = ("make export" if precision == "fp32" else
                f"python -m calibration {manifest.directory} --precision {precision} --data SOURCE")
        raise PlanConfigError(f"{err}. The {precision} engine is built from "
                              f"{ONNX_FILES[precision]}; create it first: {make}") from err


def profile_shapes(inputs: list[tuple[str, list]], manifest: Manifest) -> dict[str, tuple]:
    """One optimisation profile ``{input: (min, opt, max)}`` from the manifest's B and T ranges.

    ``inputs``: ``[(name, dims)]`` of the ONNX graph; dims are ints or symbolic names. Axis 0 is
    B and axis 1 is T for every input (DESIGN §4); any other dynamic axis cannot be profiled.
    """
    ranges = {0: manifest.batch_range, 1: manifest.frames_range}
    shapes = {}
    for name, dims in inputs:
        triple = ([], [], [])
        for axis, dim in enumerate(dims):
            if isinstance(dim, int) and dim > 0:
                values = (dim, dim, dim)
            elif axis in ranges:
                values = ranges[axis]
            else:
                raise PlanConfigError(f"input {name!r} axis {axis} is dynamic ({dim!r}); only B "
                                      "(axis 0) and T (axis 1) may be, re-export with fixed H, W")
            for shape, value in zip(triple, values):
                shape.append(int(value))
        shapes[name] = tuple(tuple(s) for s in triple)
    return shapes


def plan_entry(directory: Path, file: str, *, precision: str, tensorrt: str,
               compute_capability: str, gpu: str, source: dict,
               profiles: dict[str, tuple], workspace_mb: int, layers: dict) -> dict:
    """Manifest entry (DESIGN §5) of a built plan, with its sha256 and build facts."""
    path = directory / file
    return {
        "file": file, "kind": "tensorrt", "precision": precision,
        "tensorrt": tensorrt, "compute_capability": compute_capability, "gpu": gpu,
        "source": {"file": source["file"], "sha256": source["sha256"]},
        "profiles": [{name: dict(zip(("min", "opt", "max"), map(list, triple)))
                      for name, triple in profiles.items()}],
        "workspace_mb": workspace_mb, "layer_precisions": layers,
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
    }


def record_plan(directory: Path, entry: dict) -> Path:
    """Add ``entry`` to ``directory/manifest.json`` (replacing one for the same file)."""
    data = json.loads((Path(directory) / MANIFEST_NAME).read_text())
    data["artifacts"] = [e for e in data["artifacts"] if e["file"] != entry["file"]] + [entry]
    return write_manifest(directory, data)
