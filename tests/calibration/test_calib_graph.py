"""Node scopes and selections, Q/DQ surgery, the AutoCast cleanup replacement, keep-lists."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from calib_fixtures import mlp_model, qdq_by_hand

from calibration.data import Windows
from calibration.errors import KeepListError
from calibration.graph import (
    TOP_BLOCK,
    Selector,
    block_of,
    blocks,
    exact_name_regex,
    node_infos,
    select,
)
from calibration.keeplist import load_keep_list, parse_keep_list
from calibration.parity import open_session
from calibration.qdq import keep_quantized, qdq_counts, quantized_nodes


def _run(model, x):
    return open_session(model).run(None, {"x": x})[0]


def test_node_infos_blocks_and_selectors():
    infos = {i.name: i for i in node_infos(mlp_model())}
    assert infos["mm1"].module == "backbone.layers.0.fc"
    assert infos["act"].module == ""
    assert block_of(infos["mm1"].module, 2) == "backbone.layers"
    assert block_of("", 3) == TOP_BLOCK
    assert blocks(list(infos.values()), 1) == {"backbone": ["mm1"], TOP_BLOCK: ["act"],
                                                "head": ["mm2"]}
    chosen = select(list(infos.values()), [
        Selector("mm", op_types=("MatMul",)), Selector("head", module=r"head\..*"),
        Selector("top", module=""), Selector("both", op_types=("MatMul",), module="backbone.*")])
    assert chosen == {"mm": {"mm1", "mm2"}, "head": {"mm2"}, "top": {"act"}, "both": {"mm1"}}
    import re
    assert re.match(exact_name_regex({"a.b", "c"}), "a.b") and not re.match(
        exact_name_regex({"a.b"}), "axb")


def _attention_model() -> onnx.ModelProto:
    """x -> q = x·Wq, k = x·Wk -> logits = q·k^T * scale + bias -> Softmax -> ·x -> y."""
    h = onnx.helper
    rng = np.random.default_rng(3)
    inits = [onnx.numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), n)
             for n in ("wq", "wk")]
    inits += [onnx.numpy_helper.from_array(np.float32([0.5]), "scale"),
              onnx.numpy_helper.from_array(np.zeros(3, np.float32), "bias")]
    nodes = [h.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
             h.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
             h.make_node("Transpose", ["k"], ["kt"], perm=[1, 0], name="kt"),
             h.make_node("MatMul", ["q", "kt"], ["qk"], name="logits"),
             h.make_node("Mul", ["qk", "scale"], ["scaled"], name="scale"),
             h.make_node("Add", ["scaled", "bias"], ["biased"], name="bias"),
             h.make_node("Softmax", ["biased"], ["p"], axis=-1, name="softmax"),
             h.make_node("MatMul", ["p", "x"], ["y"], name="pv")]
    graph = h.make_graph(nodes, "a", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                               [3, 4])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 4])], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def test_feeds_tells_attention_logits_from_projections():
    infos = node_infos(_attention_model())
    feeds = {i.name: i.feeds for i in infos}
    assert feeds["logits"] == {"Softmax"}  # through the scale Mul and the bias Add
    assert feeds["q_proj"] == {"MatMul"} and feeds["k_proj"] == {"Transpose"}
    assert feeds["pv"] == frozenset()  # a graph output
    logits = Selector("attention_logits", op_types=("MatMul",), feeds=("Softmax",))
    assert select(infos, [logits]) == {"attention_logits": {"logits"}}


@pytest.mark.parametrize("name, options", [("ifc", {"two_stage": True}), ("vistr", {})])
def test_keep_lists_keep_exactly_the_attention_logits_out_of_int8(tiny_exports, name, options):
    """One logits MatMul per attention of the transformer; its Q/K/V and output projections
    (MatMuls of the same attention module) stay INT8 candidates."""
    infos = node_infos(onnx.load(str(tiny_exports(name, **options).onnx_path)))
    rule = next(s for s in load_keep_list(name).int8_exclude if s.name == "attention_logits")
    chosen = select(infos, [rule])["attention_logits"]
    attention = [i for i in infos if i.module and i.module.endswith("_attn")]
    assert len(chosen) == sum(i.op_type == "Softmax" for i in attention) >= 6
    assert {i.op_type for i in infos if i.name in chosen} == {"MatMul"}
    others = [i for i in attention if i.op_type == "MatMul" and i.name not in chosen]
    assert len(others) >= 2 * len(chosen)  # projections and softmax x V are not touched


def test_keep_quantized_removes_qdq_exactly():
    fp32 = mlp_model()
    q = qdq_by_hand(fp32)
    x = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    assert quantized_nodes(q) == {"mm1", "mm2"}
    assert not np.allclose(_run(q, x), _run(fp32, x), atol=1e-4)  # quantization is visible
    none = keep_quantized(q, fp32, set())
    assert qdq_counts(none) == {"QuantizeLinear": 0, "DequantizeLinear": 0, "quantized_nodes": 0}
    np.testing.assert_array_equal(_run(none, x), _run(fp32, x))
    only2 = keep_quantized(q, fp32, {"mm2"})
    assert quantized_nodes(only2) == {"mm2"}
    assert qdq_counts(only2)["QuantizeLinear"] == 2
    onnx.checker.check_model(only2, full_check=True)


def test_keep_quantized_restores_prequantized_weights_from_fp32():
    """onnxruntime's QDQ stores weights as int8 initializers -> DQ; the FP32 weight comes back."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(2)
            self.it = iter([{"x": rng.normal(size=(4, 8)).astype(np.float32)} for _ in range(3)])

        def get_next(self):
            return next(self.it, None)

    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = mlp_model(bias=True)  # onnxruntime names the bias DQ output like the bias
        onnx.save(fp32, f"{tmp}/m.onnx")
        # Asymmetric activations would let onnxruntime drop the Relu (absorbed by the range).
        quantize_static(f"{tmp}/m.onnx", f"{tmp}/q.onnx", Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, extra_options={"ActivationSymmetric": True})
        q = onnx.load(str(Path(tmp) / "q.onnx"))
        quantize_static(f"{tmp}/m.onnx", f"{tmp}/q_asym.onnx", Reader(),
                        quant_format=QuantFormat.QDQ)
        asym = onnx.load(str(Path(tmp) / "q_asym.onnx"))
    assert {"mm1", "mm2"} <= quantized_nodes(q)
    x = np.random.default_rng(3).normal(size=(5, 8)).astype(np.float32)
    restored = keep_quantized(q, fp32, set())
    assert qdq_counts(restored)["DequantizeLinear"] == 0
    np.testing.assert_array_equal(_run(restored, x), _run(fp32, x))
    if "act" not in {n.name for n in asym.graph.node}:
        with pytest.raises(ValueError, match="removed 1 nodes"):
            keep_quantized(asym, fp32, set())


def test_linear_cleanup_matches_modelopt_rule():
    pytest.importorskip("modelopt.onnx.autocast")
    from modelopt.onnx.autocast.precisionconverter import PrecisionConverter

    from calibration.fp16 import _linear_dead_node_cleanup

    model = mlp_model()
    model.graph.node.append(onnx.helper.make_node("Cast", ["h"], ["dead1"], to=10, name="c1"))
    model.graph.node.append(onnx.helper.make_node("Relu", ["dead1"], ["dead2"], name="r2"))

    class Holder:
        pass

    ours, theirs = Holder(), Holder()
    ours.model, theirs.model = onnx.ModelProto(), onnx.ModelProto()
    ours.model.CopyFrom(model)
    theirs.model.CopyFrom(model)
    _linear_dead_node_cleanup(ours)
    PrecisionConverter._cleanup_no_consumer_nodes(theirs)
    assert [n.name for n in ours.model.graph.node] == [n.name for n in theirs.model.graph.node]
    assert [n.name for n in ours.model.graph.node] == ["mm1", "act", "mm2", "c1"]


def test_keep_list_validation(tmp_path):
    good = {"format": "visdeploy.precision/1", "fp16": {"groups": []}, "int8": {}}
    assert parse_keep_list(good, tmp_path / "k.json").int8_op_types
    logits = {"name": "l", "op_types": ["MatMul"], "feeds": ["Softmax"]}
    parsed = parse_keep_list({**good, "int8": {"exclude": [logits]}}, tmp_path / "k.json")
    assert parsed.int8_exclude[0].feeds == ("Softmax",)
    bad_rules = [
        {**good, "format": "x"},
        {**good, "fp16": {"groups": [{"name": "g", "op_types": ["Softmax"]}]}},  # no keep_fp32
        {**good, "int8": {"exclude": [{"name": "e"}]}},  # selects nothing
        {**good, "int8": {"quantize_op_types": ["Add"]}},
        {**good, "int8": {"exclude": [{"name": "e", "op_types": ["MatMul"], "feeds": "Softmax"}]}},
    ]
    for data in bad_rules:
        with pytest.raises(KeepListError):
            parse_keep_list(data, tmp_path / "k.json")
    with pytest.raises(KeepListError, match="no precision keep-list"):
        load_keep_list("nomodel", tmp_path / "missing.json")
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(KeepListError, match="cannot read"):
        load_keep_list("x", path)


def test_repository_keep_lists_parse():
    tevit = load_keep_list("tevit")
    assert {g.selector.name for g in tevit.fp16_groups} >= {"layer_norm", "softmax",
                                                            "roi_level_map"}
    assert json.loads(tevit.path.read_text())["model"] == "tevit"


def _frames_gemm_model() -> onnx.ModelProto:
    """uint8 frames [B, T, 2, 2, 3] -> Cast -> Reshape [-1, 12] -> Gemm(w, bias) -> y [N, 4]."""
    rng = np.random.default_rng(5)
    inits = [onnx.numpy_helper.from_array(np.array([-1, 12], np.int64), "shape"),
             onnx.numpy_helper.from_array(rng.normal(size=(12, 4)).astype(np.float32), "w"),
             onnx.numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "bias")]
    nodes = [onnx.helper.make_node("Cast", ["frames"], ["x"], to=onnx.TensorProto.FLOAT, name="cast"),
             onnx.helper.make_node("Reshape", ["x", "shape"], ["x2"], name="flat"),
             onnx.helper.make_node("Gemm", ["x2", "w", "bias"], ["y"], name="gemm")]
    graph = onnx.helper.make_graph(
        nodes, "g", [onnx.helper.make_tensor_value_info("frames", onnx.TensorProto.UINT8,
                                                        ["B", "T", 2, 2, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])], inits)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])


def test_onnxruntime_int8_keeps_biases_float_for_tensorrt(tmp_path):
    """Issue 21 item 3: onnxruntime's quantizer would store the Gemm bias as INT32 behind a
    DequantizeLinear, which TensorRT refuses; the fallback engine keeps it float."""
    from calibration.int8 import quantize_int8
    from export.trt_support import lint_onnx, load_support_table

    onnx.save(_frames_gemm_model(), tmp_path / "m.onnx")
    windows = Windows.unpadded(np.random.default_rng(6).integers(0, 255, (3, 2, 2, 2, 3),
                                                                 dtype=np.uint8))
    quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", windows, engine="onnxruntime",
                  candidates={"gemm"}, op_types=("Gemm",), exclude=set())
    q = onnx.load(str(tmp_path / "q.onnx"))
    assert "gemm" in quantized_nodes(q)
    types = {i.name: i.data_type for i in q.graph.initializer}
    dq_inputs = [n.input[0] for n in q.graph.node if n.op_type == "DequantizeLinear"]
    assert dq_inputs and onnx.TensorProto.INT32 not in {types.get(n) for n in dq_inputs}
    gemm = next(n for n in q.graph.node if n.name == "gemm")
    assert types[gemm.input[2]] == onnx.TensorProto.FLOAT  # the bias itself, not a DQ output
    for major in (10, 11):
        report = lint_onnx(tmp_path / "q.onnx", load_support_table(major))
        assert report.ok, report.format()


def test_fp16_high_precision_is_modelopt_only_and_validated(tmp_path):
    """Issue 21 item 8: FP16 for the unquantized layers of a TensorRT INT8 graph needs ModelOpt
    (onnxruntime's quantizer keeps FP32); the CLI passes the choice through."""
    from calibration.__main__ import options_from, parse_args
    from calibration.errors import CalibrationError
    from calibration.int8 import check_high_precision, quantize_int8

    check_high_precision("fp16", "modelopt")
    with pytest.raises(CalibrationError, match="needs the ModelOpt engine"):
        check_high_precision("fp16", "onnxruntime")
    with pytest.raises(CalibrationError, match="high precision must be one of"):
        check_high_precision("bf16", "modelopt")
    onnx.save(_frames_gemm_model(), tmp_path / "m.onnx")
    windows = Windows.unpadded(np.zeros((1, 2, 2, 2, 3), np.uint8))
    with pytest.raises(CalibrationError, match="needs the ModelOpt engine"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", windows, method="percentile",
                      candidates={"gemm"}, op_types=("Gemm",), exclude=set(),
                      high_precision="fp16")
    assert not (tmp_path / "q.onnx").exists()
    args = parse_args(["art", "--precision", "int8", "--data", "x", "--high-precision", "fp16"])
    assert options_from(args).high_precision == "fp16"
