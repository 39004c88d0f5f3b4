"""VisTR's deformable conv as the ONNX DeformConv op (``--deform-conv onnx``, issue 21 item 5):
opset 19, onnxruntime parity within the FP32 tolerances (export_artifacts raises otherwise), the
TensorRT lint (DeformConv from 10.1), the plugin it needs, and the manifest record."""

from __future__ import annotations

import onnx
import pytest
import torch

from export.parity import FP32_TOLERANCES
from export.trt_support import lint_onnx, load_support_table
from models.vistr.deform_conv import DeformConv2d, use_deform_conv


@pytest.fixture(scope="module")
def deform_export(tiny_exports):
    return tiny_exports("vistr", deform_conv="onnx")


def test_graph_has_one_deform_conv_at_opset_19(deform_export, tiny_exports):
    ops = onnx.load(str(deform_export.onnx_path)).graph.node
    default_ops = onnx.load(str(tiny_exports("vistr").onnx_path)).graph.node
    count = lambda nodes, op: sum(n.op_type == op for n in nodes)  # noqa: E731
    assert count(ops, "DeformConv") == 1 and count(default_ops, "DeformConv") == 0
    # the tiny preset samples all 3x3 taps with one GridSample (models/vistr/deform_conv.py)
    assert count(default_ops, "GridSample") - count(ops, "GridSample") == 1
    assert deform_export.graph["opset"] == 19
    manifest = deform_export.manifest
    assert manifest["model_extra"]["deform_conv"] == "onnx"
    assert manifest["artifacts"][0]["opset"] == 19
    assert manifest["artifacts"][0]["tensorrt_plugins"] == [
        {"op": "DeformConv", "plugin": "ModulatedDeformConv2d"}]


def test_parity_within_fp32_tolerances(deform_export):
    assert not deform_export.parity.failures and deform_export.parity.cases == [(2, 6)]
    for name, tol in FP32_TOLERANCES.items():
        assert deform_export.parity.max_abs[name] <= tol, name


def test_tensorrt_lint_accepts_it_from_10_1(deform_export):
    for major, version in ((10, "10.3"), (11, "11.4")):
        report = lint_onnx(deform_export.onnx_path, load_support_table(major, version))
        assert report.ok, report.format()
    old = lint_onnx(deform_export.onnx_path, load_support_table(10, "10.0"))
    assert any(i.op == "DeformConv" and "supported only from TensorRT 10.1" in i.message
               for i in old.errors)


def test_forms_agree_in_eager_and_unknown_forms_are_refused(tmp_path):
    torch.manual_seed(0)
    conv = DeformConv2d(4, 3).eval()
    x, offset = torch.randn(2, 4, 6, 8), torch.randn(2, 18, 6, 8)
    with torch.no_grad():
        ours = conv(x, offset)
        assert use_deform_conv(conv, "onnx") == 1 and conv.form == "onnx"
        torch.testing.assert_close(conv(x, offset), ours, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown deformable-conv form 'dcnv2'"):
        use_deform_conv(conv, "dcnv2")
    from export.artifacts import export_artifacts
    from export.onnx_export import ExportError

    with pytest.raises(ExportError, match="deformable conv \\(VisTR\\), not ifc"):
        export_artifacts("ifc", "tiny", tmp_path / "ifc", deform_conv="onnx")


def test_int8_keep_list_leaves_the_sampling_and_its_matmul_in_fp32(tiny_exports):
    """The default form's GridSample and the MatMul that projects its input onto the taps stay
    out of INT8 (models/vistr/precision.json ``dcn_sampling``): OpenVINO runs that MatMul
    (weight on the left) in FP32 anyway, so INT8 there would only add Q/DQ passes."""
    from calibration.graph import node_infos, select
    from calibration.keeplist import load_keep_list

    model = onnx.load(str(tiny_exports("vistr").onnx_path))
    keep = load_keep_list("vistr")
    chosen = select(node_infos(model), list(keep.int8_exclude))["dcn_sampling"]
    nodes = {n.name: n for n in model.graph.node}
    assert sorted(nodes[name].op_type for name in chosen) == ["GridSample", "MatMul"]
    producer = {out: n for n in model.graph.node for out in n.output}
    (sample,) = [nodes[name] for name in chosen if nodes[name].op_type == "GridSample"]
    # the projection reaches the GridSample through one Reshape ([N, 9·O, H·W] -> [N·9, O, H, W])
    reshape = producer[sample.input[0]]
    assert reshape.op_type == "Reshape" and producer[reshape.input[0]].name in chosen
