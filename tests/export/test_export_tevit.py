"""ONNX export of the tiny TeViT: graph contract, parity at other frame counts, manifest."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from export.parity import ParityError, check_parity, ort_session
from runtime.manifest import ArtifactError, ManifestError, load_manifest, validate_manifest


def test_graph_contract(tiny_tevit_export):
    graph = tiny_tevit_export.graph
    assert graph["opset"] == 18
    assert graph["inputs"] == [{"name": "frames", "dtype": "uint8", "shape": ["B", "T", 192, 320, 3]},
                               {"name": "content_hw", "dtype": "int32", "shape": ["B", 2]}]
    shapes = {o["name"]: (o["dtype"], o["shape"]) for o in graph["outputs"]}
    assert shapes == {
        "scores": ("float", ["B", 10]),
        "labels": ("int32", ["B", 10]),
        "masks": ("float", ["B", 10, "T", 48, 80]),
        "boxes": ("float", ["B", 10, "T", 4]),
        "embeddings": ("float", ["B", 10, 64]),
        "query_index": ("int32", ["B", 10]),
    }
    ops = graph["ops"]
    assert {"RoiAlign", "GridSample", "TopK", "LayerNormalization"} <= set(ops)
    # RoIAlign as the standard op (the default export form; TensorRT's ROIAlign_TRT plugin); the
    # one GridSample pastes masks. The pure-tensor form: tests/export/test_export_roi_align_forms.py
    model = onnx.load(str(tiny_tevit_export.onnx_path))
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}


def test_parity_recorded_in_manifest(tiny_tevit_artifacts):
    manifest = load_manifest(tiny_tevit_artifacts)
    parity = manifest.data["parity"]["onnxruntime"]
    assert parity["frames"] == [1, 2, 5]
    assert [2, 5] in parity["batch_frames"]
    assert parity["scores_max_abs"] <= 1e-4 and parity["boxes_max_abs"] <= 1e-2
    assert parity["index_mismatches"] == 0


@pytest.mark.parametrize("batch,frames", [(1, 7), (3, 3)])
def test_parity_at_frame_counts_other_than_the_export_sample(tiny_tevit_export, batch, frames):
    report = check_parity(tiny_tevit_export.model, tiny_tevit_export.onnx_path, cases=((batch, frames),))
    assert report.max_abs["boxes"] < 1e-2 and report.index_mismatches == 0


def test_parity_fails_loudly_when_weights_differ(tiny_tevit_export):
    model = copy.deepcopy(tiny_tevit_export.model)
    with torch.no_grad():
        model.roi_head.bbox_head[5].fc_reg.bias += 0.5  # the ONNX file no longer matches
    with pytest.raises(ParityError, match="boxes: max abs error"):
        check_parity(model, tiny_tevit_export.onnx_path, cases=((1, 2),))


def test_manifest_schema_and_checksums(tiny_tevit_artifacts):
    manifest = load_manifest(tiny_tevit_artifacts)
    assert manifest.model == "tevit" and manifest.input_hw == (192, 320)
    assert manifest.frames_range == (1, 5, 36) and manifest.batch_range == (1, 1, 4)
    entry = manifest.artifact("onnx", "fp32")
    assert manifest.verified_path(entry).name == "model.onnx"
    assert len(manifest.data["source"]["torch"]) > 0 and manifest.data["source"]["exported"]


def test_manifest_rejects_broken_fields(tiny_tevit_artifacts):
    data = json.loads((tiny_tevit_artifacts / "manifest.json").read_text())
    for path, value, message in [
        (("format",), "other/1", "format"),
        (("input", "height"), 190, "multiple of 32"),
        (("input", "frames", "min"), 0, "min <= opt <= max"),
        (("window", "stride"), 5, "stride < length"),
        (("artifacts", 0, "sha256"), "abc", "64 hex"),
    ]:
        broken = copy.deepcopy(data)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ManifestError, match=message):
            validate_manifest(broken)


def test_truncated_onnx_fails_the_checksum(tiny_tevit_artifacts_copy):
    onnx_file = tiny_tevit_artifacts_copy / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    manifest = load_manifest(tiny_tevit_artifacts_copy)
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        manifest.verified_path(manifest.artifact())
    with pytest.raises(ArtifactError, match="no onnx artifact at int8"):
        manifest.artifact("onnx", "int8")


def test_frames_outside_the_manifest_range_are_refused(tiny_tevit_artifacts):
    manifest = load_manifest(tiny_tevit_artifacts)
    manifest.check_input_shape((1, 36, 192, 320, 3))
    with pytest.raises(ManifestError, match=r"T=37 is outside the range \[1, 36\]"):
        manifest.check_input_shape((1, 37, 192, 320, 3))
    with pytest.raises(ManifestError, match=r"B=5 is outside"):
        manifest.check_input_shape((5, 2, 192, 320, 3))
    with pytest.raises(ManifestError, match=r"frames must be"):
        manifest.check_input_shape((1, 2, 320, 192, 3))


def test_onnx_runs_with_the_extended_optimisation_level(tiny_tevit_artifacts):
    session = ort_session(tiny_tevit_artifacts / "model.onnx")
    frames = np.zeros((1, 4, 192, 320, 3), dtype=np.uint8)
    feeds = {"frames": frames, "content_hw": np.array([[180, 320]], np.int32)}
    masks = session.run(["masks"], feeds)[0]
    assert masks.shape == (1, 10, 4, 48, 80) and np.isfinite(masks).all()


def test_cli_reports_unknown_model_and_preset():
    for args, message in [(["maskformer"], "unknown model 'maskformer'"), (["tevit", "--preset", "xl"], "unknown preset 'xl'")]:
        proc = subprocess.run([sys.executable, "-m", "export", *args, "--out", "/tmp/never"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr
