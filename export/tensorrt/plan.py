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


def parse_range(text: str, what: str) -> tuple[int, int, int]:
    """``"1,5,8"`` -> ``(1, 5, 8)`` (``"5"`` -> ``(5, 5, 5)``); ``PlanConfigError`` unless
    1 <= min <= opt <= max."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as err:
        raise PlanConfigError(f"--{what} must be MIN,OPT,MAX (integers), got {text!r}") from err
    values = values * 3 if len(values) == 1 else values
    if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
        raise PlanConfigError(f"--{what} must be MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX, "
                              f"got {text!r}")
    return values


def _narrowed(requested, exported: tuple[int, int, int], what: str) -> tuple[int, int, int]:
    """``requested`` (or the manifest's ``exported`` range) after checking it lies inside."""
    if requested is None:
        return exported
    lo, hi = exported[0], exported[2]
    if requested[0] < lo or requested[2] > hi:
        fixed = " (fixed by the export)" if lo == hi else ""
        raise PlanConfigError(f"--{what} {','.join(map(str, requested))} leaves the range "
                              f"{lo}..{hi}{fixed} the ONNX graph was exported for; pick values "
                              "inside it or re-export with a wider range")
    return tuple(requested)


def profile_shapes(inputs: list[tuple[str, list]], manifest: Manifest, *,
                   frames: tuple[int, int, int] | None = None,
                   batch: tuple[int, int, int] | None = None) -> dict[str, tuple]:
    """One optimisation profile ``{input: (min, opt, max)}`` for every graph input.

    ``inputs``: ``[(name, dims)]`` of the ONNX graph; dims are ints or symbolic names. Axis 0 is
    B for every input (``frames`` [B, T, H, W, 3], ``content_hw`` [B, 2], the clip stage's
    features [B, T, ...]) and axis 1 is T where it is dynamic. ``frames`` / ``batch`` narrow the
    manifest's ranges (``--frames``, ``--batch``: a Jetson that runs T=5, B=1 need not reserve
    activation memory for T=36, B=4); any other dynamic axis cannot be profiled.
    """
    ranges = {0: _narrowed(batch, manifest.batch_range, "batch"),
              1: _narrowed(frames, manifest.frames_range, "frames")}
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
               profiles: dict[str, tuple], workspace_mb: int, layers: dict,
               plugins: list[dict] | None = None, dla: dict | None = None) -> dict:
    """Manifest entry of a built plan (docs/tensorrt.md "Manifest entry"), with its sha256 and
    build facts: the profile, the TensorRT plugins it needs (name, version, namespace; the
    runtime checks they are registered before deserialising) and the DLA settings if any."""
    path = directory / file
    entry = {
        "file": file, "kind": "tensorrt", "precision": precision,
        "tensorrt": tensorrt, "compute_capability": compute_capability, "gpu": gpu,
        "source": {"file": source["file"], "sha256": source["sha256"]},
        "inputs": list(profiles),
        "profiles": [{name: dict(zip(("min", "opt", "max"), map(list, triple)))
                      for name, triple in profiles.items()}],
        "workspace_mb": workspace_mb, "layer_precisions": layers,
        "tensorrt_plugins": list(plugins or []),
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
    }
    if dla:
        entry["dla"] = dla
    return entry


def record_plan(directory: Path, entry: dict) -> Path:
    """Add ``entry`` to ``directory/manifest.json`` (replacing one for the same file)."""
    data = json.loads((Path(directory) / MANIFEST_NAME).read_text())
    data["artifacts"] = [e for e in data["artifacts"] if e["file"] != entry["file"]] + [entry]
    return write_manifest(directory, data)
