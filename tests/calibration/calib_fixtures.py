"""Small generated ONNX graphs and manifests for the calibration tests (no binaries in the repo).

- ``mlp_model()``: x float[N, 8] -> MatMul(mm1) (or Gemm with bias) -> Relu(act) -> MatMul(mm2)
  -> y, with dynamo-style
  ``pkg.torch.onnx.name_scopes`` metadata (mm1 in ``backbone.layers.0.fc``, mm2 in
  ``head.fc``, act at top level).
- ``qdq_by_hand(model)``: ModelOpt-style explicit Q/DQ (``W -> Q -> DQ`` and ``x -> Q -> DQ``) in
  front of both MatMuls.
- ``manifest_dict(...)``: a valid manifest (docs/contract.md §2) for an input size, with no artifacts.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SCOPES = {"mm1": "['', 'backbone', 'backbone.layers.0', 'backbone.layers.0.fc', 'matmul']",
          "act": "['', 'relu']",
          "mm2": "['', 'head', 'head.fc', 'matmul_1']"}


def _scoped(node: onnx.NodeProto) -> onnx.NodeProto:
    entry = node.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", SCOPES[node.name]
    return node


def mlp_model(seed: int = 0, *, bias: bool = False) -> onnx.ModelProto:
    """``bias=True`` makes mm1 a Gemm with a bias initializer ``b1``."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(size=(8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(16, 4)).astype(np.float32), "w2")
    b1 = numpy_helper.from_array(rng.normal(size=(16,)).astype(np.float32), "b1")
    first = (helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="mm1") if bias else
             helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"))
    nodes = [_scoped(first),
             _scoped(helper.make_node("Relu", ["h"], ["r"], name="act")),
             _scoped(helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2"))]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [w1, w2, b1] if bias else [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _qdq(tensor: str, scale: float, inits: list, nodes: list) -> str:
    inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{tensor}_scale"),
              numpy_helper.from_array(np.array(0, np.int8), f"{tensor}_zp")]
    nodes += [helper.make_node("QuantizeLinear", [tensor, f"{tensor}_scale", f"{tensor}_zp"],
                               [f"{tensor}_q"], name=f"{tensor}_Q"),
              helper.make_node("DequantizeLinear", [f"{tensor}_q", f"{tensor}_scale",
                                                    f"{tensor}_zp"],
                               [f"{tensor}_dq"], name=f"{tensor}_DQ")]
    return f"{tensor}_dq"


def qdq_by_hand(model: onnx.ModelProto, scale: float = 0.05) -> onnx.ModelProto:
    """Q/DQ on both inputs of every MatMul, ModelOpt style (weights stay FP32 initializers)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits, new_nodes = [], []
    for node in out.graph.node:
        if node.op_type == "MatMul":
            for slot, tensor in enumerate(list(node.input)):
                node.input[slot] = _qdq(tensor, scale, inits, new_nodes)
        new_nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    out.graph.initializer.extend(inits)
    return out


def manifest_dict(height: int = 64, width: int = 96, *, window=(4, 2)) -> dict:
    return {
        "format": "visdeploy.manifest/1", "model": "tevit", "preset": "test",
        "classes": ["a", "b"],
        "input": {"height": height, "width": width, "frames": {"min": 1, "opt": 4, "max": 8},
                  "batch": {"min": 1, "opt": 1, "max": 1},
                  "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
        "outputs": {"K": 3, "embedding_dim": 4},
        "window": {"length": window[0], "stride": window[1]},
        "artifacts": [],
    }
