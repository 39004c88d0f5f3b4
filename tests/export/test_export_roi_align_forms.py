"""TeViT's RoIAlign forms. The default export writes the standard RoiAlign op (half_pixel, no
GridSample for RoIAlign): the tiny TeViT session export is that form. ``--roi-align
grid_sample`` keeps the pure-tensor-op form for runtimes without RoiAlign. Both match PyTorch
within the FP32 tolerances, pass the TensorRT 10/11 lint, and the manifest records the form and
the TensorRT plugin the RoiAlign form needs (ROIAlign_TRT)."""

from __future__ import annotations

import onnx
import pytest

from export.trt_support import lint_onnx, load_support_table


@pytest.fixture(scope="module")
def grid_sample_export(tiny_exports):
    return tiny_exports("tevit", roi_align="grid_sample")


def test_default_export_uses_roi_align_with_half_pixel(tiny_tevit_export):
    graph = onnx.load(str(tiny_tevit_export.onnx_path)).graph
    ops = [n.op_type for n in graph.node]
    # 4 levels x (6 box stages + the mask head) RoiAligns; the one GridSample left is the mask
    # paste into the frame (models.common.box_ops.paste_masks), not a RoIAlign
    assert ops.count("RoiAlign") == 28 and ops.count("GridSample") == 1
    for node in (n for n in graph.node if n.op_type == "RoiAlign"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["coordinate_transformation_mode"] == b"half_pixel"
        assert attrs["sampling_ratio"] == 2 and attrs.get("mode", b"avg") == b"avg"
    manifest = tiny_tevit_export.manifest
    assert manifest["model_extra"]["roi_align"] == "onnx"
    entry = manifest["artifacts"][0]
    assert entry["tensorrt_plugins"] == [{"op": "RoiAlign", "plugin": "ROIAlign_TRT"}]
    assert not tiny_tevit_export.parity.failures
    assert tiny_tevit_export.parity.max_abs["scores"] <= 1e-4


def test_grid_sample_form_stays_selectable(grid_sample_export):
    ops = [n.op_type for n in onnx.load(str(grid_sample_export.onnx_path)).graph.node]
    assert "RoiAlign" not in ops and ops.count("GridSample") > 1
    assert not grid_sample_export.parity.failures
    assert grid_sample_export.manifest["model_extra"]["roi_align"] == "grid_sample"
    assert grid_sample_export.manifest["artifacts"][0]["tensorrt_plugins"] == []


@pytest.mark.parametrize("form", ["default", "grid_sample"])
def test_tensorrt_lint_is_clean(form, tiny_tevit_export, request):
    export = tiny_tevit_export if form == "default" else request.getfixturevalue("grid_sample_export")
    for major in (10, 11):
        report = lint_onnx(export.onnx_path, load_support_table(major))
        assert report.ok, report.format()


def test_roi_align_option_is_refused_for_models_without_it(tmp_path):
    from export.artifacts import export_artifacts
    from export.onnx_export import ExportError

    with pytest.raises(ExportError, match="TeViT"):
        export_artifacts("vistr", "tiny", tmp_path / "v", roi_align="onnx")
