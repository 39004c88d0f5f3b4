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
