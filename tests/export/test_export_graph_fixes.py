"""The exact graph rewrites applied after export (TensorRT parser compatibility)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from export.graph_fixes import add_squeeze_axes


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


def test_tiny_tevit_export_has_no_axesless_squeeze_and_casts_frames_first(tiny_tevit_artifacts):
    model = onnx.load(str(tiny_tevit_artifacts / "model.onnx"))
    assert all(len(n.input) == 2 for n in model.graph.node if n.op_type == "Squeeze")
    consumers = [n.op_type for n in model.graph.node if "frames" in n.input]
    assert set(consumers) <= {"Cast", "Shape"}, consumers
