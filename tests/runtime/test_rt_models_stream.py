"""Every exported model streams through the runtime: TeViT (dynamic T), VisTR (fixed T, cyclic
padding of the short final window) and IFC, each from its real ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

from runtime import Pipeline
from runtime.manifest import load_manifest


def _clip(num_frames: int, size=(120, 200)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    return [np.roll(base, 3 * t, axis=1) for t in range(num_frames)]


@pytest.fixture(scope="module")
def model_artifacts(request, tmp_path_factory):
    from export.artifacts import export_artifacts

    name = request.param
    return export_artifacts(name, "tiny", tmp_path_factory.mktemp(name) / name,
                            parity_cases=((1, 6),) if name == "vistr" else ((1, 3),)).directory


@pytest.mark.parametrize("model_artifacts", ["vistr", "ifc"], indirect=True)
def test_other_models_stream_end_to_end(model_artifacts):
    manifest = load_manifest(model_artifacts)
    length, stride = manifest.window
    frames = _clip(length + stride + 2)  # the last window is short for VisTR: padded cyclically
    with Pipeline(model_artifacts, mode="benchmark", keep_images=False) as pipeline:
        results = pipeline.process(frames) + pipeline.flush()
    assert [r.index for r in results] == list(range(len(frames)))
    assert all(r.size == (120, 200) for r in results)
    if manifest.model == "vistr":
        assert manifest.fixed_frames and manifest.data["window"]["pad"] == "cyclic"


def test_tiny_tevit_streams_end_to_end(tiny_tevit_artifacts):
    frames = _clip(11)
    with Pipeline(tiny_tevit_artifacts, window=5, stride=3, mode="benchmark", keep_images=False) as pipeline:
        results = pipeline.process(frames) + pipeline.flush()
    assert [r.index for r in results] == list(range(11))


@pytest.mark.parametrize("model_artifacts", ["ifc"], indirect=True)
def test_ifc_manifest_lists_both_stages_with_parity(model_artifacts):
    manifest = load_manifest(model_artifacts)
    assert manifest.has_stages("onnx", "fp32")
    frame = manifest.artifact("onnx", "fp32", stage="frame")
    clip = manifest.artifact("onnx", "fp32", stage="clip")
    assert frame["inputs"] == ["frames"] and frame["outputs"] == ["src", "fpn1", "fpn2"]
    assert clip["inputs"] == ["src", "fpn1", "fpn2", "content_hw"]  # the clip stage masks padding
    assert manifest.artifact("onnx", "fp32")["file"] == "model.onnx"  # the whole graph stays the default entry
    parity = manifest.data["parity"]["onnxruntime_two_stage"]
    assert parity["scores_max_abs"] <= 1e-4 and parity["masks_max_abs"] <= 1e-3


@pytest.mark.parametrize("model_artifacts", ["ifc"], indirect=True)
def test_ifc_two_stage_streaming_equals_one_stage_and_computes_each_frame_once(model_artifacts):
    from runtime.backends import OnnxRuntimeBackend, TwoStageOnnxBackend

    frames = _clip(12)
    runs = {}
    for stages in ("one", "two"):
        with Pipeline(model_artifacts, window=5, stride=1, mode="benchmark", keep_images=False,
                      stages=stages) as pipeline:
            results = pipeline.process(frames) + pipeline.flush()
            backend = pipeline.backend
            runs[stages] = (results, backend, getattr(backend, "frames_computed", None),
                            getattr(getattr(backend, "cache", None), "hits", None))
    one, two = runs["one"][0], runs["two"][0]
    assert type(runs["one"][1]) is OnnxRuntimeBackend
    backend = runs["two"][1]
    assert isinstance(backend, TwoStageOnnxBackend)
    computed, hits = runs["two"][2:]
    assert computed == len(frames)  # 8 windows of 5 frames, each frame once
    assert hits == 8 * 5 - len(frames)
    assert [r.index for r in two] == [r.index for r in one] == list(range(12))
    for a, b in zip(one, two, strict=True):
        assert [t.track_id for t in a] == [t.track_id for t in b]
        for ta, tb in zip(a, b, strict=True):
            assert ta.label == tb.label and abs(ta.score - tb.score) < 1e-4
            assert np.abs(np.asarray(ta.box) - np.asarray(tb.box)).max() < 0.5
            assert (ta.mask != tb.mask).mean() < 1e-3


@pytest.mark.parametrize("model_artifacts", ["ifc"], indirect=True)
def test_stages_two_without_stage_artifacts_is_a_clear_error(model_artifacts, tmp_path):
    import json
    import shutil

    from runtime.errors import ArtifactError

    copy = tmp_path / "one_only"
    shutil.copytree(model_artifacts, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["artifacts"] = [a for a in data["artifacts"] if "stage" not in a]
    (copy / "manifest.json").write_text(json.dumps(data))
    with Pipeline(copy, stages="auto", keep_images=False) as pipeline:  # auto falls back to one graph
        assert type(pipeline.backend).__name__ == "OnnxRuntimeBackend"
    with pytest.raises(ArtifactError, match="frame stage"):
        Pipeline(copy, stages="two", keep_images=False)


@pytest.mark.parametrize("model_artifacts", ["ifc", "vistr"], indirect=True)
def test_fp16_graph_with_the_models_keep_list_stays_within_parity_and_streams(model_artifacts):
    """IFC and VisTR have their own keep-lists (models/<name>/precision.json): the FP16 graph
    converts, stays within the parity budget on held-out synthetic windows and streams.
    Runs last in this module (it adds model.fp16.onnx to the shared artifact directory)."""
    from calibration.calibrate import CalibrationOptions, calibrate_artifacts

    options = CalibrationOptions(windows=2, eval_windows=1, reference_windows=1, progress=False)
    section = calibrate_artifacts(model_artifacts, precision="fp16", data="synthetic:tiny:2",
                                  options=options)
    manifest = load_manifest(model_artifacts)
    assert section["final"]["within_budget"] and "fallback" not in section, section["final"]
    assert section["keep_list"].endswith(f"models/{manifest.model}/precision.json")
    assert section["kept_fp32_groups"] and "postprocess" in section["kept_fp32_groups"]
    length, stride = manifest.window
    frames = _clip(length + stride)
    with Pipeline(model_artifacts, precision="fp16", mode="benchmark", keep_images=False,
                  stages="one") as pipeline:
        results = pipeline.process(frames) + pipeline.flush()
    assert [r.index for r in results] == list(range(len(frames)))
