"""TeViT exported with ``--roi-align onnx``: the graph uses the standard RoiAlign op (half_pixel,
no GridSample), matches PyTorch within the FP32 tolerances, passes the TensorRT 10/11 lint, and
the manifest records the form."""

from __future__ import annotations

import onnx
import pytest

from export.trt_support import lint_onnx, load_support_table


@pytest.fixture(scope="module")
def roi_onnx_export(tmp_path_factory):
    from export.artifacts import export_artifacts

    return export_artifacts("tevit", "tiny", tmp_path_factory.mktemp("roi") / "tevit",
                            parity_cases=((1, 1), (1, 5), (2, 3)), roi_align="onnx")


def test_graph_uses_roi_align_with_half_pixel(roi_onnx_export):
    graph = onnx.load(str(roi_onnx_export.onnx_path)).graph
    ops = [n.op_type for n in graph.node]
    # 4 levels x (6 box stages + the mask head) RoiAligns; the one GridSample left is the mask
    # paste into the frame (models.common.box_ops.paste_masks), not a RoIAlign
    assert ops.count("RoiAlign") == 28 and ops.count("GridSample") == 1
    for node in (n for n in graph.node if n.op_type == "RoiAlign"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["coordinate_transformation_mode"] == b"half_pixel"
        assert attrs["sampling_ratio"] == 2 and attrs.get("mode", b"avg") == b"avg"


def test_parity_and_manifest(roi_onnx_export):
    assert not roi_onnx_export.parity.failures
    assert roi_onnx_export.parity.max_abs["scores"] <= 1e-4
    assert roi_onnx_export.manifest["model_extra"]["roi_align"] == "onnx"


def test_tensorrt_lint_is_clean(roi_onnx_export):
    for major in (10, 11):
        report = lint_onnx(roi_onnx_export.onnx_path, load_support_table(major))
        assert report.ok, report.format()


def test_roi_align_option_is_refused_for_models_without_it(tmp_path):
    from export.artifacts import export_artifacts
    from export.onnx_export import ExportError

    with pytest.raises(ExportError, match="TeViT"):
        export_artifacts("vistr", "tiny", tmp_path / "v", roi_align="onnx")
