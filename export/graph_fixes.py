"""Small, exact rewrites of exported graphs that TensorRT's ONNX parser needs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def add_squeeze_axes(model: onnx.ModelProto) -> int:
    """Give every axes-less ``Squeeze`` an explicit ``axes`` input (in place); return how many.

    The dynamo exporter writes ``sym_size`` (a dynamic B or T) as Shape -> Squeeze without axes;
    TensorRT's parser accepts that only from 11.5 on. Axes come from the input's static shape
    (the size-1 dimensions); nodes whose input shape is not static are left alone.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    fixed = 0
    for node in model.graph.node:
        if node.op_type != "Squeeze" or len(node.input) != 1:
            continue
        dims = shapes.get(node.input[0])
        if dims is None or any(d is None for d in dims):
            continue
        axes_name = f"{node.name or node.output[0]}_axes"
        axes = np.array([i for i, d in enumerate(dims) if d == 1], dtype=np.int64)
        model.graph.initializer.append(numpy_helper.from_array(axes, axes_name))
        node.input.append(axes_name)
        fixed += 1
    return fixed


def apply_trt_fixes(path: str) -> dict[str, int]:
    """Apply every rewrite to the ONNX file at ``path`` and save it back; counts per rewrite."""
    model = onnx.load(path)
    counts = {"squeeze_axes": add_squeeze_axes(model)}
    if any(counts.values()):
        onnx.save(model, path)
    return counts


__all__ = ["add_squeeze_axes", "apply_trt_fixes"]
