"""``python -m evaluation.report`` end to end on a two-video synthetic set with the tiny TeViT:
every variant/mode row runs the real pipeline and the real scorers."""

from __future__ import annotations

import pytest

from evaluation import report
from evaluation.synthetic import generate_dataset


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_val")
    generate_dataset(root, preset="tiny", videos=2, frames=10, height=96, width=160, png=True)
    return root


@pytest.mark.parametrize("variant,mode", [("fp32", "offline"), ("fp32", "streaming"),
                                          ("fp32", "streaming-latest"), ("eager", "near-online")])
def test_report_rows(tiny_tevit_artifacts, two_videos, variant, mode):
    row = report.evaluate_variant(tiny_tevit_artifacts, variant, mode, two_videos, [1, 2])
    assert (row.model, row.variant, row.mode) == ("tevit", variant, mode)
    assert 0.0 <= row.ap50 <= 1.0 and 0.0 <= row.ap <= row.ap50 + 1e-9
    assert row.idsw >= 0 and 0.0 <= row.idf1 <= 1.0
    expected = {"offline": "T=10, S=9", "near-online": "T=5, S=1"}.get(mode)
    if expected:
        assert row.window == expected


def test_report_cli_writes_the_table(tiny_tevit_artifacts, two_videos, tmp_path, capsys):
    out = tmp_path / "table.md"
    assert report.main(["--artifacts", str(tiny_tevit_artifacts), "--data", str(two_videos),
                        "--variants", "fp32", "int8", "--modes", "streaming", "--out", str(out)]) == 0
    table = out.read_text()
    assert "| tevit | fp32 | streaming |" in table
    assert "int8" not in table  # not calibrated in this artifact: skipped, not faked


def test_openvino_rows_score_like_onnxruntime(tiny_tevit_artifacts, two_videos):
    rows = {backend: report.evaluate_variant(tiny_tevit_artifacts, "fp32", "streaming",
                                             two_videos, [1, 2], backend=backend)
            for backend in ("onnxruntime", "openvino")}
    assert rows["openvino"].variant == "fp32 (openvino)" and rows["onnxruntime"].variant == "fp32"
    for metric in ("ap", "ap50", "idf1"):  # same tracks: same scores
        assert abs(getattr(rows["openvino"], metric) - getattr(rows["onnxruntime"], metric)) < 1e-6
    assert rows["openvino"].idsw == rows["onnxruntime"].idsw


def test_ifc_one_and_two_stage_rows_are_equal(tiny_exports, two_videos):
    """IFC's two-stage export (frame stage + clip stage with cached features) scores exactly as
    its whole-model graph: same tracks, so the same AP, ID switches and IDF1."""
    artifacts = tiny_exports("ifc", two_stage=True).directory
    rows = {stages: report.evaluate_variant(artifacts, "fp32", "near-online", two_videos, [1, 2],
                                            stages=stages) for stages in ("one", "two")}
    assert rows["one"].variant == "fp32, one-stage" and rows["two"].variant == "fp32, two-stage"
    for metric in ("ap", "ap50", "idf1"):
        assert abs(getattr(rows["one"], metric) - getattr(rows["two"], metric)) < 1e-6
    assert rows["one"].idsw == rows["two"].idsw


def test_two_stage_rows_are_skipped_with_a_note_where_a_precision_has_no_stage_graphs(
        tiny_exports, tiny_tevit_artifacts, capsys):
    """Asking for two-stage rows of a whole-model-only precision (the calibration's FP16/INT8)
    or of a model without stages must not end the report after the rows already measured."""
    ifc = tiny_exports("ifc", two_stage=True).directory
    assert report.runs_of(ifc, "fp32", ["onnxruntime"], ["one", "two"]) == [
        ("onnxruntime", "one"), ("onnxruntime", "two")]
    assert report.runs_of(ifc, "eager", ["openvino"], ["two"]) == [("pytorch", "auto")]
    assert report.runs_of(tiny_tevit_artifacts, "fp32", ["onnxruntime", "openvino"],
                          ["one", "two"]) == [("onnxruntime", "one"), ("openvino", "one")]
    assert "fp32 two-stage rows skipped" in capsys.readouterr().err
