"""bench/graph_flops.py counts a graph's convolution and matrix-product FLOPs exactly: a small
ONNX graph with every counted op, against the formulas worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from graph_flops import graph_flops, onnx_op_counts  # noqa: E402


def _weight(name: str, shape) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


@pytest.fixture()
def graph_path(tmp_path):
    """x [B, 3, 8, 8] -> Conv 3x3 (3->4, pad 1) -> grouped Conv 3x3 (groups 2, 4->4) ->
    ConvTranspose 2x2 stride 2 (4->2) -> Reshape [B, 2*16, 16] -> MatMul [16, 5] -> Gemm on
    [B*32, 5] x [5, 6] (transB)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("ConvTranspose", ["c2", "w3"], ["c3"], strides=[2, 2]),
        helper.make_node("Reshape", ["c3", "s1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "w4"], ["m1"]),
        helper.make_node("Reshape", ["m1", "s2"], ["r2"]),
        helper.make_node("Gemm", ["r2", "w5"], ["y"], transB=1),
    ]
    inits = [_weight("w1", (4, 3, 3, 3)), _weight("w2", (4, 2, 3, 3)), _weight("w3", (4, 2, 2, 2)),
             numpy_helper.from_array(np.array([-1, 32, 16], np.int64), "s1"),
             _weight("w4", (16, 5)), numpy_helper.from_array(np.array([-1, 5], np.int64), "s2"),
             _weight("w5", (6, 5))]
    graph = helper.make_graph(
        nodes, "flops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = tmp_path / "flops.onnx"
    onnx.save(model, path)
    return path


def test_every_counted_op_matches_its_formula(graph_path):
    b = 2
    conv = 2 * (b * 4 * 8 * 8) * (3 * 3 * 3)  # output elements x (C_in x k x k)
    grouped = 2 * (b * 4 * 8 * 8) * (2 * 3 * 3)  # C_in / groups = 2
    transposed = 2 * (b * 4 * 8 * 8) * (2 * 2 * 2)  # input elements x (C_out x k x k)
    matmul = 2 * (b * 32 * 5) * 16  # output elements x K
    gemm = 2 * (b * 32 * 6) * 5
    counts = graph_flops(graph_path, {"x": [b, 3, 8, 8]})
    assert counts == {"Conv": conv + grouped, "ConvTranspose": transposed,
                      "MatMul": matmul + gemm, "total": conv + grouped + transposed + matmul + gemm}
    assert onnx_op_counts(graph_path) == {"Conv": 2, "ConvTranspose": 1, "MatMul": 1, "Gemm": 1}


def test_the_count_follows_the_input_shape(graph_path):
    one = graph_flops(graph_path, {"x": [1, 3, 8, 8]})["total"]
    assert graph_flops(graph_path, {"x": [3, 3, 8, 8]})["total"] == 3 * one
