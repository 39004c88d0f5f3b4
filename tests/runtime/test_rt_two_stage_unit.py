"""Unit tests of the two-stage pieces that need no exported model: the feature cache, the
manifest's stage entries and the onnxruntime backend factory."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from runtime.backends import OnnxRuntimeBackend, open_backend
from runtime.backends.two_stage import FeatureCache, frame_digest
from runtime.errors import ConfigError
from runtime.manifest import ManifestError, load_manifest, validate_manifest


def test_frame_digest_depends_on_content_only():
    a = np.zeros((4, 6, 3), np.uint8)
    b = a.copy()
    assert frame_digest(a) == frame_digest(b)
    b[0, 0, 0] = 1
    assert frame_digest(a) != frame_digest(b)
    assert frame_digest(np.asfortranarray(a)) == frame_digest(a)


def test_feature_cache_is_bounded_lru():
    cache = FeatureCache(2)
    cache.put(b"a", (np.zeros(1),))
    cache.put(b"b", (np.ones(1),))
    assert cache.get(b"a") is not None  # a becomes most recent
    cache.put(b"c", (np.ones(1),))  # evicts b
    assert cache.get(b"b") is None and cache.get(b"a") is not None and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def _with_stage(manifest_data: dict, **entry) -> dict:
    data = copy.deepcopy(manifest_data)
    base = dict(data["artifacts"][0])
    base.update(entry)
    data["artifacts"].append(base)
    return data


def test_manifest_stage_entries_are_validated(contract_artifacts):
    data = load_manifest(contract_artifacts).data
    validate_manifest(_with_stage(data, stage="frame", inputs=["frames"], outputs=["src"]))
    with pytest.raises(ManifestError, match="stage must be one of"):
        validate_manifest(_with_stage(data, stage="backbone", inputs=["frames"], outputs=["src"]))
    with pytest.raises(ManifestError, match="outputs"):
        validate_manifest(_with_stage(data, stage="clip", inputs=["src"], outputs=[]))


def test_whole_model_entry_is_never_a_stage(contract_artifacts):
    manifest = load_manifest(contract_artifacts)
    data = _with_stage(manifest.data, stage="frame", inputs=["frames"], outputs=["src"], file="frame_stage.onnx")
    data["artifacts"] = data["artifacts"][::-1]  # the stage entry first
    staged = type(manifest)(manifest.directory, data)
    assert staged.artifact("onnx", "fp32")["file"] == manifest.data["artifacts"][0]["file"]
    assert staged.artifact("onnx", "fp32", stage="frame")["file"] == "frame_stage.onnx"
    assert not staged.has_stages()  # a frame stage alone is not a two-stage export


def test_factory_picks_one_graph_without_stages_and_checks_the_mode(contract_artifacts):
    manifest = load_manifest(contract_artifacts)
    assert type(open_backend(manifest, "onnxruntime")) is OnnxRuntimeBackend
    with pytest.raises(ConfigError, match="stages must be one of"):
        open_backend(manifest, "onnxruntime", stages="three")


# -- issue 20 item 4: the two-stage backend runs the same activation check as the one graph ---
def test_two_stage_contract_equals_one_graph(tmp_path):
    import rt_fixtures as F

    from runtime import Pipeline

    artifacts = F.build_two_stage_contract_artifacts(tmp_path / "two", clip_content_hw=True)
    frames, _ = F.make_clip(9)
    results = {}
    for stages in ("one", "two"):
        with Pipeline(artifacts, device="cpu", stages=stages) as pipeline:
            results[stages] = pipeline.process(frames) + pipeline.flush()
    for a, b in zip(results["one"], results["two"], strict=True):
        assert a.track_ids.tolist() == b.track_ids.tolist() and (a.masks == b.masks).all()


@pytest.mark.parametrize("edit,match", [
    (lambda d: d["outputs"].update(K=5), r"scores .*K=5"),
    (lambda d: d["artifacts"][2].update(inputs=["feat"]),
     r"manifest declares inputs \['feat'\] for clip_stage.onnx.*\['feat', 'content_hw'\]"),
    (lambda d: d["artifacts"][1].update(outputs=["features"]),
     r"frame stage.* gives \['feat'\].*manifest says \['features'\]"),
])
def test_two_stage_outputs_and_inputs_are_checked_on_activation(tmp_path, edit, match):
    import rt_fixtures as F

    from runtime.errors import ArtifactError
    from runtime.manifest import write_manifest

    artifacts = F.build_two_stage_contract_artifacts(tmp_path / "two", clip_content_hw=True)
    data = F.json_manifest(artifacts)
    edit(data)
    write_manifest(artifacts, data)
    with pytest.raises(ArtifactError, match=match):
        open_backend(load_manifest(artifacts), "onnxruntime", device="cpu", stages="two").activate()
