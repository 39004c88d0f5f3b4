"""NNCF INT8 (calibration/nncf_int8.py) on a small real graph: Q/DQ where NNCF puts them for
OpenVINO's CPU, none on the excluded node, outputs near FP32 on onnxruntime and OpenVINO, INT8
kernels in OpenVINO, and a clear error without nncf."""

from __future__ import annotations

import importlib.abc
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibration.errors import CalibrationError, QuantizerUnavailableError
from calibration.nncf_int8 import nncf_method, only_qdq_added, quantize_nncf
from calibration.qdq import quantized_nodes


@pytest.fixture()
def conv_graph(tmp_path):
    """x [1, 3, 16, 16] -> conv_a (3->8) -> Relu -> conv_b (8->8, excluded later) -> Relu ->
    GlobalAveragePool -> Flatten -> head (MatMul 8->4) -> y [1, 4]."""
    rng = np.random.default_rng(0)
    init = lambda name, *shape: numpy_helper.from_array(  # noqa: E731
        rng.standard_normal(shape).astype(np.float32) * 0.3, name)
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
        helper.make_node("Conv", ["ar", "wb", "bb"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["b"], ["br"], name="relu_b"),
        helper.make_node("GlobalAveragePool", ["br"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "wh"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [init("wa", 8, 3, 3, 3), init("ba", 8), init("wb", 8, 8, 3, 3), init("bb", 8),
         init("wh", 8, 4)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = tmp_path / "fp32.onnx"
    onnx.save(model, path)
    return path


def _feeds(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(n)]


def _run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["y"], f)[0] for f in feeds])


def test_nncf_quantizes_for_the_cpu_and_keeps_excluded_nodes_fp32(conv_graph, tmp_path):
    import openvino as ov

    from runtime.backends.openvino import compile_config, kernel_precisions

    dst = tmp_path / "int8.onnx"
    result = quantize_nncf(conv_graph, dst, _feeds(8, 0), exclude={"conv_b"})
    assert result.engine == "nncf" and result.windows == 8 and dst.is_file()
    quantized = quantized_nodes(onnx.load(str(dst)))
    assert only_qdq_added(onnx.load(str(conv_graph)), onnx.load(str(dst)))  # fallback-ready
    assert {"conv_a", "head"} <= quantized and "conv_b" not in quantized
    held = _feeds(4, 1)
    reference, got = _run(conv_graph, held), _run(dst, held)
    assert np.abs(got - reference).max() < 0.05 * np.abs(reference).max()  # 8-bit ranges
    compiled = ov.Core().compile_model(str(dst), "CPU", compile_config(1))
    kernels = kernel_precisions(compiled)
    assert sum(n for (_, p), n in kernels.items() if p in ("i8", "u8")) >= 1, kernels
    request = compiled.create_infer_request()
    ov_out = np.concatenate([request.infer(f)[compiled.output(0)] for f in held])
    assert np.abs(ov_out - got).max() < 0.05 * np.abs(reference).max()


def _weight_levels(path) -> dict[str, int]:
    """Quantized node -> the largest |integer| of its weight (127: 8 bits, 64: NNCF's 7-bit
    weights), whether the graph stores the weight as float -> QuantizeLinear or as integers."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumer = {i: n.name for n in model.graph.node for i in n.input}
    producer = {o: n for n in model.graph.node for o in n.output}
    levels = {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        source = node.input[0]
        if source in inits:  # integers stored
            level = np.abs(inits[source].astype(np.int64)).max()
        elif source in producer and producer[source].input[0] in inits:  # float -> Q
            quantize = producer[source]
            weight, scale = inits[quantize.input[0]], inits[quantize.input[1]]
            axis = next((a.i for a in quantize.attribute if a.name == "axis"), 1)
            shape = [1] * weight.ndim
            if scale.size > 1:
                shape[axis] = -1
            level = np.abs(np.round(weight / scale.reshape(shape))).max()
        else:
            continue  # an activation's Q/DQ
        levels[consumer[node.output[0]]] = int(level)
    return levels


@pytest.mark.parametrize("fix, expected", [
    ("enable", {"conv_a": 64, "conv_b": 64, "head": 64}),
    ("first_layer", {"conv_a": 64, "conv_b": 127, "head": 127}),
    ("disable", {"conv_a": 127, "conv_b": 127, "head": 127}),
])
def test_the_overflow_fix_puts_weights_in_7_bits(conv_graph, tmp_path, fix, expected):
    dst = tmp_path / f"int8_{fix}.onnx"
    result = quantize_nncf(conv_graph, dst, _feeds(8, 0), overflow_fix=fix)
    assert _weight_levels(dst) == expected
    assert result.method == nncf_method("performance", fix)


def test_an_unknown_overflow_fix_is_refused(conv_graph, tmp_path):
    with pytest.raises(CalibrationError, match="overflow fix must be one of"):
        quantize_nncf(conv_graph, tmp_path / "int8.onnx", _feeds(2, 0), overflow_fix="7bit")


class _HideNNCF(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nncf":
            raise ImportError(f"{name} is hidden in this test")
        return None


def test_without_nncf_the_error_says_how_to_install_it(conv_graph, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "nncf"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_HideNNCF(), *sys.meta_path])
    with pytest.raises(QuantizerUnavailableError, match="pip install nncf"):
        quantize_nncf(conv_graph, tmp_path / "int8.onnx", _feeds(2, 0))
