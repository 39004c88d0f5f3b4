"""TensorRT support lint: the sourced tables, hand-built graphs that break a documented rule,
and the tiny TeViT export (every op supported; the remaining findings are known model issues)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.graph_fixes import shapes_from_cast
from export.trt_support import (
    SupportTableError,
    lint_model,
    lint_onnx,
    load_support_table,
)

F, U8, I64 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT64


def _model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def _t(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def _const(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _errors(model, major=10, version=None):
    return [str(i) for i in lint_model(model, load_support_table(major, version)).errors]


def test_tables_are_sourced_dated_and_resolve_versions():
    t10, t11 = load_support_table(10), load_support_table(11)
    assert (t10.version, t11.version) == ("10.3", "11.4")
    for table in (t10, t11):
        sources = " ".join(table.source_lines())
        assert "onnx/onnx-tensorrt" in sources and "retrieved: 2026-11-25" in sources
        assert table.ops["TopK"].checks == ("attr:sorted=1", "const:1", "lt:1=3840")
    assert t10.opset_range == (9, 20) and load_support_table(10, "10.15").opset_range == (9, 24)
    assert load_support_table(11, "11.5").opset_range == (9, 25)
    assert "Attention" in t10.added_later and load_support_table(10, "10.14").ops["Attention"].supported
    assert load_support_table(11, "11.0").added_later["DFT"] == "11.2"
    assert "Swish" in t11.ops and "Swish" not in load_support_table(10, "10.16").ops
    with pytest.raises(SupportTableError, match="no support table for TensorRT 12.x"):
        load_support_table(12)
    with pytest.raises(SupportTableError, match="not TensorRT 10.x"):
        load_support_table(10, "11.4")


def test_topk_sorted_and_k_limit():
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], sorted=0)
    model = _model([node], [_t("x", F, [1, 8000])], [_t("v", F, None), _t("i", I64, None)],
                   [_const("k", [5000])])
    errors = _errors(model)
    assert any("sorted=0" in e and "needs 1" in e for e in errors)
    assert any("input 1 is 5000; TensorRT needs < 3840" in e for e in errors)


def test_topk_k_must_be_a_build_time_constant():
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
             helper.make_node("TopK", ["x", "s"], ["v", "i"])]
    model = _model(nodes, [_t("x", F, [1, "N"])], [_t("v", F, None), _t("i", I64, None)])
    assert any("build-time constant" in e for e in _errors(model))


def test_unsupported_op_and_custom_domain():
    nodes = [helper.make_node("Unique", ["x"], ["u"]),
             helper.make_node("MyOp", ["x"], ["y"], domain="com.example")]
    model = _model(nodes, [_t("x", F, [4])], [_t("u", F, None), _t("y", F, None)])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    errors = _errors(model)
    assert any("Unique" in e and "not supported by the 10.x parser" in e for e in errors)
    assert any("com.example::MyOp" in e and "plugin" in e for e in errors)


def test_grid_sample_rank_follows_the_version():
    node = helper.make_node("GridSample", ["x", "grid"], ["y"])
    model = _model([node], [_t("x", F, [1, 2, 4, 4, 4]), _t("grid", F, [1, 3, 3, 3, 3])],
                   [_t("y", F, None)])
    assert any("rank 5; TensorRT needs rank 4" in e for e in _errors(model, 10))
    assert any("rank 5" in e for e in _errors(model, 11, "11.0"))
    assert _errors(model, 11, "11.4") == []  # 5-D GridSample since 11.2


def test_squeeze_without_axes_needs_11_5():
    model = _model([helper.make_node("Squeeze", ["x"], ["y"])], [_t("x", F, [1, 3])],
                   [_t("y", F, None)])
    assert any("input 1 (axes) is omitted" in e for e in _errors(model, 10))
    assert _errors(model, 11, "11.5") == []


def test_resize_mode_roialign_modes_and_attribute_defaults():
    resize = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic")
    model = _model([resize], [_t("x", F, [1, 1, 4, 4])], [_t("y", F, None)],
                   [_const("scales", [1, 1, 2, 2], np.float32)])
    assert any("mode='cubic'" in e and "nearest or linear" in e for e in _errors(model))
    roi = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"],
                           coordinate_transformation_mode="half_pixel", output_height=2,
                           output_width=2, sampling_ratio=2)
    model = _model([roi], [_t("x", F, [1, 1, 8, 8]), _t("rois", F, [3, 4]),
                           _t("idx", I64, [3])], [_t("y", F, None)])
    assert _errors(model) == []


def test_quantize_zero_point_layer_norm_outputs_and_uint8():
    dq = helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["d"])
    model = _model([dq], [], [_t("d", F, None)],
                   [_const("q", [1, 2], np.int8), _const("s", 0.1, np.float32),
                    _const("zp", [3], np.int8)])
    assert any("input 2 (x_zero_point) = 'zp' must be all zeros" in e for e in _errors(model))
    ln = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y", "mean"])
    model = _model([ln], [_t("x", F, [2, 4])], [_t("y", F, None), _t("mean", F, None)],
                   [_const("g", np.ones(4), np.float32), _const("b", np.zeros(4), np.float32)])
    assert any("output(s) [1] are used" in e for e in _errors(model))
    nodes = [helper.make_node("Transpose", ["frames"], ["t"], perm=[1, 0]),
             helper.make_node("Cast", ["t"], ["y"], to=F)]
    model = _model(nodes, [_t("frames", U8, [2, 3])], [_t("y", F, None)])
    assert any("UINT8 is only supported as a network input or output" in e
               for e in _errors(model))


def test_uint8_input_may_feed_only_a_cast():
    """NVIDIA/TensorRT issue 3985: a UINT8 input must feed a Cast directly; a Shape beside the
    Cast is refused too (the exporter's ``frames.shape`` did that before graph_fixes)."""
    nodes = [helper.make_node("Shape", ["frames"], ["s"]),
             helper.make_node("Cast", ["frames"], ["x"], to=F),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    model = _model(nodes, [_t("frames", U8, ["B", 3])], [_t("y", F, None)])
    errors = _errors(model)
    assert len(errors) == 1 and errors[0].startswith("[error] Shape") and "only a Cast" in errors[0]
    assert shapes_from_cast(model) == 1 and _errors(model) == []


def _qdq_graph(zp_type=np.int8, data_type=np.int8):
    """x -> Q(scale, zp) -> DQ -> Add(DQ(weights, scale, zp)): ModelOpt's and onnxruntime's forms."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "s", "zw"], ["wd"]),
             helper.make_node("Add", ["xd", "wd"], ["y"])]
    inits = [_const("s", 0.1, np.float32), _const("zp", 0, zp_type), _const("zw", 0, data_type),
             _const("w", [1, 2], data_type)]
    return _model(nodes, [_t("x", F, [2])], [_t("y", F, None)], inits)


def test_int8_zero_points_are_part_of_explicit_quantization():
    """Issue 21 item 1: INT8 zero points (input 2 of Q/DQ) are not stray INT8 tensors."""
    for major in (10, 11):
        assert _errors(_qdq_graph(), major) == []


def test_int32_and_uint8_qdq_are_refused():
    """Biases quantized to INT32 (onnxruntime's default) and UINT8 zero points are not TensorRT
    Q/DQ types (onnx-tensorrt QuantDequantLinearHelper: INT8/FP8/INT4)."""
    errors = _errors(_qdq_graph(data_type=np.int32))
    assert any("DequantizeLinear" in e and "input 0 (x)" in e and "is INT32" in e for e in errors)
    errors = _errors(_qdq_graph(zp_type=np.uint8))
    assert any("QuantizeLinear" in e and "(y_zero_point)" in e and "is UINT8" in e for e in errors)


def test_input_types_outside_the_documented_ones_warn():
    model = _model([helper.make_node("Sqrt", ["x"], ["y"])], [_t("x", I64, [2])],
                   [_t("y", I64, None)])
    report = lint_model(model, load_support_table(10))
    assert report.ok and any("input 'x' is INT64; the documented types are FP32 FP16 BF16"
                             in str(w) for w in report.warnings)


def test_opset_outside_the_parsers_range():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_t("x", F, [2])],
                   [_t("y", F, None)], opset=21)
    assert any("opset 21 is outside 9..20" in e for e in _errors(model, 10, "10.3"))
    assert _errors(model, 10, "10.15") == []


def test_tiny_tevit_every_op_is_in_both_tables(tiny_tevit_artifacts):
    model = onnx.load(str(tiny_tevit_artifacts / "model.onnx"))
    for major in (10, 11):
        report = lint_model(model, load_support_table(major))
        assert len(report.op_counts) > 30 and "GridSample" in report.op_counts
        unsupported = [i for i in report.errors if "not supported" in i.message
                       or "custom-domain" in i.message]
        assert unsupported == [], report.format()


def test_tiny_tevit_lint_is_clean(tiny_tevit_artifacts):
    for major in (10, 11):
        report = lint_onnx(tiny_tevit_artifacts / "model.onnx", load_support_table(major))
        assert report.ok, report.format()
