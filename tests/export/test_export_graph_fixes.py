"""The exact graph rewrites applied after export (TensorRT parser compatibility)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from export.graph_fixes import add_squeeze_axes, shapes_from_cast


def test_axesless_squeeze_gets_explicit_axes_and_same_result():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
        helper.make_node("Squeeze", ["s"], ["t"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T"])],
                              [helper.make_tensor_value_info("t", TensorProto.INT64, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.zeros((2, 7), np.float32)})[0]
    assert add_squeeze_axes(model) == 1
    onnx.checker.check_model(model, full_check=True)
    squeeze = next(n for n in model.graph.node if n.op_type == "Squeeze")
    assert len(squeeze.input) == 2
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.zeros((2, 7), np.float32)})[0]
    assert before == after == 7


def test_shapes_of_a_uint8_input_are_read_from_its_cast():
    """The Shape reads the Cast's output (same shape), and the Cast moves first (topo order)."""
    nodes = [
        helper.make_node("Shape", ["frames"], ["s"], start=1, end=2),
        helper.make_node("Cast", ["frames"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "sf"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["B", "T", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    frames = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"frames": frames})[0]
    assert shapes_from_cast(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node if "frames" in n.input] == ["Cast"]
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"frames": frames})[0]
    np.testing.assert_array_equal(before, after)
    assert shapes_from_cast(model) == 0  # idempotent


def test_tiny_tevit_export_has_no_axesless_squeeze_and_casts_frames_first(tiny_tevit_artifacts):
    model = onnx.load(str(tiny_tevit_artifacts / "model.onnx"))
    assert all(len(n.input) == 2 for n in model.graph.node if n.op_type == "Squeeze")
    consumers = [n.op_type for n in model.graph.node if "frames" in n.input]
    assert consumers == ["Cast"], consumers
