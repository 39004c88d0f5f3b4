"""Small, exact rewrites of exported graphs that TensorRT's ONNX parser needs.

- ``add_squeeze_axes``: axes-less ``Squeeze`` gets explicit axes (the parser wants them < 11.5).
- ``shapes_from_cast``: ``Shape`` nodes that read a uint8 graph input read its ``Cast`` instead.
  TensorRT accepts a UINT8 network input only when it feeds a Cast layer directly ("All UINT8
  inputs must directly feed into a cast layer in TensorRT. No other layers support UINT8 inputs",
  NVIDIA/TensorRT issue 3985; the Shape row of onnx-tensorrt docs/operators.md lists no UINT8).
  A Cast keeps its input's shape, so every ``Shape`` yields the same values.
"""

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


def uint8_inputs(model: onnx.ModelProto) -> list[str]:
    """Names of the graph's uint8 inputs (``frames``)."""
    return [v.name for v in model.graph.input
            if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8]


def shapes_from_cast(model: onnx.ModelProto) -> int:
    """Make ``Shape`` nodes that read a uint8 graph input read that input's ``Cast`` (in place);
    return how many were rewired. ``Shape``'s ``start``/``end`` attributes are kept, and a Cast
    output has its input's shape, so the values are unchanged. Inputs with no Cast consumer are
    left alone (the TensorRT lint reports them)."""
    rewired = 0
    for name in uint8_inputs(model):
        cast = next((n for n in model.graph.node if n.op_type == "Cast" and n.input[0] == name), None)
        if cast is None:
            continue
        shapes = [n for n in model.graph.node if n.op_type == "Shape" and n.input[0] == name]
        for node in shapes:
            node.input[0] = cast.output[0]
        if shapes:  # the Cast reads only a graph input: first in the node list keeps topo order
            model.graph.node.remove(cast)
            model.graph.node.insert(0, cast)
        rewired += len(shapes)
    return rewired


def apply_trt_fixes(path: str) -> dict[str, int]:
    """Apply every rewrite to the ONNX file at ``path`` and save it back; counts per rewrite."""
    model = onnx.load(path)
    counts = {"squeeze_axes": add_squeeze_axes(model), "shapes_from_cast": shapes_from_cast(model)}
    if any(counts.values()):
        onnx.save(model, path)
    return counts


__all__ = ["add_squeeze_axes", "apply_trt_fixes", "shapes_from_cast", "uint8_inputs"]
