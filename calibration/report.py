"""Recording a precision conversion: ``calibration_report.json`` and the manifest entry.

The report holds one section per precision (``fp16``, ``int8``): data used, the keep-list rules
and node counts, the sensitivity table, fallback steps and the final deltas. The manifest gets an
artifact entry (file, kind, precision, sha256, size, opset, TensorRT plugins) with a short
``calibration`` summary (INT8: which high precision the unquantized layers use),
replacing an older entry of the same kind and precision. Torch-free: ``export.manifest`` imports
torch, so the entry is built here from ``runtime.manifest`` helpers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx

from plugins import plugins_of_onnx
from runtime.backends.cpu_isa import int8_kernel_family
from runtime.manifest import load_manifest, sha256_file, write_manifest

REPORT_NAME = "calibration_report.json"


def onnx_entry(directory: Path, file: str, *, precision: str, **extra) -> dict:
    """Manifest artifact entry for ``directory/file`` (sha256, size, opset, graph inputs)."""
    path = directory / file
    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    weights = {i.name for i in model.graph.initializer}
    inputs = [v.name for v in model.graph.input if v.name not in weights]
    return {"file": file, "kind": "onnx", "precision": precision, "opset": opset, "inputs": inputs,
            "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
            "tensorrt_plugins": plugins_of_onnx(model), **extra}


def update_manifest(directory: Path, entry: dict) -> None:
    """Add ``entry`` to the manifest's artifacts, replacing the same kind + precision."""
    data = dict(load_manifest(directory).data)
    data["artifacts"] = [a for a in data["artifacts"]
                         if not (a["kind"] == entry["kind"] and a["precision"] == entry["precision"]
                                 and a.get("stage") == entry.get("stage"))]
    data["artifacts"].append(entry)
    write_manifest(directory, data)


def write_report(directory: Path, precision: str, section: dict) -> Path:
    """Merge ``section`` into ``directory/calibration_report.json`` under ``precision``."""
    path = directory / REPORT_NAME
    report = {}
    if path.is_file():
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            report = {}
    report[precision] = section
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)
    return path


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the calibration report")


def check_record(check) -> dict:
    """``check.describe()`` (a ``ParityCheck`` or ``MetricCheck``) and, when the check ran its
    graphs on OpenVINO, the INT8 kernel family of this CPU (``cpu``): OpenVINO's INT8 results
    differ between families, so the budget holds for the family it was measured with
    (runtime.backends.cpu_isa)."""
    described = check.describe()
    if described.get("backend") == "openvino":
        described["cpu"] = int8_kernel_family()
    return described


def checked_on(check: dict) -> dict:
    """The manifest's record of where a budget was measured, from a ``check_record``:
    ``check_backend`` (onnxruntime, openvino; None for a metric that does not say) and
    ``check_cpu`` (OpenVINO's INT8 kernel family), which the OpenVINO backend compares with
    the CPU it runs on."""
    return {"check_backend": check.get("backend"), "check_cpu": check.get("cpu")}


def manifest_summary(section: dict) -> dict:
    """The short ``calibration`` block of the manifest entry."""
    final = section.get("final", {})
    keys = ("tool", "method", "engine", "high_precision")
    return {key: section[key] for key in keys if key in section} | {
        "data": section.get("data", {}).get("source"),
        "windows": section.get("data", {}).get("windows"),
        "check": section.get("check", {}).get("kind"),
        **checked_on(section.get("check", {})),
        "value": final.get("value"),
        "within_budget": final.get("within_budget"),
        "report": REPORT_NAME,
    }
