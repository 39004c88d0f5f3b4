"""Static checks of an exported ONNX graph: full checker, shape inference, domains, op histogram."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from export.onnx_export import ExportError
from models.base import OUTPUT_NAMES
from plugins import load_custom_plugins

STANDARD_DOMAINS = ("", "ai.onnx")


def check_graph(path: str | Path, *, inputs: list[str] | None = None,
                outputs: list[str] | None = None) -> dict:
    """Run ``onnx.checker`` (full check) and strict shape inference on ``path``.

    The I/O names must be ``inputs`` -> ``outputs`` (default: the engine contract, ``frames`` ->
    ``OUTPUT_NAMES``; a two-stage export's stages pass their own).

    Returns a report: ``{"ops": {op_type: count}, "opset": int, "inputs": [...], "outputs": [...]}``.
    Raises ``ExportError`` on a custom-domain op that ``plugins/custom.json`` does not declare, a
    checker failure or an unexpected I/O signature.
    """
    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"{path} fails the ONNX checker/shape inference: {err}") from err
    graph = model.graph
    ops = Counter(node.op_type for node in graph.node)
    declared = {(c.domain, c.op) for c in load_custom_plugins()}
    custom = sorted({f"{node.domain}::{node.op_type}" for node in graph.node
                     if node.domain not in STANDARD_DOMAINS
                     and (node.domain, node.op_type) not in declared})
    if custom:
        raise ExportError(f"{path} uses custom-domain ops {custom} that plugins/custom.json does "
                          "not declare; TensorRT can parse them only through a registered plugin")
    if model.functions:
        raise ExportError(f"{path} contains ONNX local functions; inline them before deployment")
    want_in, want_out = inputs or ["frames"], outputs or list(OUTPUT_NAMES)
    got_out = [o.name for o in graph.output]
    if [i.name for i in graph.input] != want_in or got_out != want_out:
        raise ExportError(f"{path}: I/O names {[i.name for i in graph.input]} -> {got_out} break the "
                          f"contract {want_in} -> {want_out}")
    opset = next(o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS)
    return {
        "ops": dict(sorted(ops.items())),
        "opset": opset,
        "inputs": [_describe(v) for v in graph.input],
        "outputs": [_describe(v) for v in graph.output],
    }


def _describe(value: onnx.ValueInfoProto) -> dict:
    tensor = value.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"name": value.name, "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type).lower(), "shape": dims}


def format_histogram(ops: dict[str, int], per_line: int = 6) -> str:
    """Op histogram as aligned text lines, most frequent first."""
    items = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    cells = [f"{name:<18}{count:>5}" for name, count in items]
    return "\n".join("  " + "  ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line))
