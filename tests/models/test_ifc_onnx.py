"""IFC tiny: onnxruntime vs PyTorch, one-stage and two-stage exports, at T = 1, 3, 5, 12, on
whole inputs (``content_hw`` fed as the full input) and on letterboxed clips of a 4:3, a 16:9 and
a small source in one batch (``content_hw`` per row; the graphs mask the padding).

Tolerances (fp32, CPU; measured max errors over T ∈ {1, 3, 5, 12}, both variants, in brackets):
- scores, embeddings: 1e-5 abs — softmax / L2-norm of the same fp32 math, op order differs
  [scores 3.0e-7, embeddings 1.8e-7].
- masks: 5e-5 abs — sigmoid of mask logits of magnitude ~10 that sum 32-term dot products after
  a conv stack; fp32 reassociation in ORT's fused convs (BatchNorm folded) [4.2e-6].
- labels, query_index: exact. boxes: exact, except where a mask probability lies within the mask
  tolerance of the 0.5 threshold (a legitimately flippable cell).
The exports use B=2, T=3 samples; the parity inputs use other T (and B=1).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from padded_clips import TINY_CONTENTS, letterboxed

from export.onnx_export import export_onnx
from export.two_stage import (
    TwoStageExport,
    TwoStageUnsupportedError,
    check_two_stage,
    export_two_stage,
)
from models import build_model
from models.base import CONTENT_HW, OUTPUT_NAMES
from runtime.backends.base import engine_feeds

SCORE_ATOL = 1e-5  # softmax/normalize of identical fp32 inputs, different op order
MASK_ATOL = 5e-5  # sigmoid of |logit| ~ 10 after conv stacks; measured 4.2e-6
FRAMES = (1, 3, 5, 12)


def _lively_tiny():
    """Tiny IFC with random weights scaled so scores and masks are not all ~uniform."""
    torch.manual_seed(0)
    model = build_model("ifc", "tiny")
    with torch.no_grad():
        for layer in (model.detr.mask_head.convert_to_weight.layers[-1], model.detr.class_embed.layers[-1]):
            layer.weight.mul_(10)
            layer.bias.mul_(10)
    return model


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def model():
    return _lively_tiny()


@pytest.fixture(scope="module")
def one_stage(model, tmp_path_factory):
    return _session(export_onnx(model, tmp_path_factory.mktemp("ifc_one") / "model.onnx"))


@pytest.fixture(scope="module")
def two_stage(model, tmp_path_factory):
    exported = export_two_stage(model, tmp_path_factory.mktemp("ifc_two"))
    return exported, _session(exported.frame_path), _session(exported.clip_path)


def _frames(t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, t, 192, 320, 3), dtype=torch.uint8, generator=g)


def _run_one_stage(session, frames: np.ndarray, content_hw: np.ndarray | None = None):
    feeds = engine_feeds([i.name for i in session.get_inputs()], frames, content_hw)
    return dict(zip(OUTPUT_NAMES, session.run(None, feeds), strict=True))


def _run_clip_stage(two_stage, features: list[np.ndarray], content_hw: np.ndarray) -> dict:
    exported, _, clip_sess = two_stage
    feeds = dict(zip(exported.feature_names, features, strict=True))
    feeds[CONTENT_HW] = content_hw
    return dict(zip(OUTPUT_NAMES, clip_sess.run(None, feeds), strict=True))


def _run_two_stage(two_stage, frames: np.ndarray, content_hw: np.ndarray | None = None):
    _, frame_sess, _ = two_stage
    features = frame_sess.run(None, {"frames": frames})
    if content_hw is None:
        content_hw = engine_feeds([CONTENT_HW], frames, None)[CONTENT_HW]  # the whole input
    return _run_clip_stage(two_stage, features, content_hw)


def assert_parity(ref: dict[str, torch.Tensor], out: dict[str, np.ndarray]) -> dict[str, float]:
    """Compare contract outputs; return the max abs error per float output."""
    ref = {k: v.numpy() for k, v in ref.items()}
    for name in OUTPUT_NAMES:
        assert out[name].shape == ref[name].shape and out[name].dtype == ref[name].dtype, name
    np.testing.assert_array_equal(out["query_index"], ref["query_index"])
    np.testing.assert_array_equal(out["labels"], ref["labels"])
    errors = {k: float(np.abs(out[k] - ref[k]).max()) for k in ("scores", "masks", "embeddings")}
    assert errors["scores"] <= SCORE_ATOL and errors["embeddings"] <= SCORE_ATOL, errors
    assert errors["masks"] <= MASK_ATOL, errors
    differs = np.any(out["boxes"] != ref["boxes"], axis=-1)  # [B, K, T]
    near = np.abs(ref["masks"] - 0.5).min(axis=(-1, -2)) <= MASK_ATOL
    assert not np.any(differs & ~near), "boxes differ although no mask cell is near 0.5"
    return errors


@pytest.mark.parametrize("t", FRAMES)
def test_one_stage_parity(model, one_stage, t):
    frames = _frames(t, seed=t)
    with torch.no_grad():
        ref = model(frames)
    assert_parity(ref, _run_one_stage(one_stage, frames.numpy()))


@pytest.mark.parametrize("t", FRAMES)
def test_two_stage_parity(model, two_stage, t):
    frames = _frames(t, seed=100 + t)
    with torch.no_grad():
        ref = model(frames)
    assert_parity(ref, _run_two_stage(two_stage, frames.numpy()))


@pytest.mark.parametrize("variant", ["one_stage", "two_stage"])
def test_letterboxed_clips_parity(model, one_stage, two_stage, variant):
    """Three clips of different real sizes in one batch (B=3 is not the export sample's 2)."""
    frames, content = letterboxed(model, TINY_CONTENTS, 5, seed=11)
    with torch.no_grad():
        ref = model(frames, content)
    run = _run_one_stage if variant == "one_stage" else _run_two_stage
    got = run(one_stage if variant == "one_stage" else two_stage, frames.numpy(), content.numpy())
    assert_parity(ref, got)


def test_two_stage_streaming_reuses_cached_frame_features(model, two_stage):
    """Runtime use: frame stage once per frame (T=1 calls), clip stage on the cached window of a
    letterboxed 4:3 source."""
    _, frame_sess, _ = two_stage
    frames, content = letterboxed(model, TINY_CONTENTS[:1], 6, seed=7)
    frames = frames.numpy()
    cache = [frame_sess.run(None, {"frames": frames[:, i : i + 1]}) for i in range(6)]
    for start in (0, 1):  # windows [0, 5) and [1, 6) of T=5, stride 1
        window = [np.concatenate(parts, axis=1) for parts in zip(*cache[start : start + 5], strict=True)]
        out = _run_clip_stage(two_stage, window, content.numpy())
        with torch.no_grad():
            ref = model(torch.from_numpy(frames[:, start : start + 5]), content)
        assert_parity(ref, out)


def test_two_stage_inputs_are_dynamic_and_listed(two_stage):
    exported, frame_sess, clip_sess = two_stage
    assert isinstance(exported, TwoStageExport)
    clip_inputs = {i.name: i for i in clip_sess.get_inputs()}
    assert list(clip_inputs) == [*exported.feature_names, CONTENT_HW]
    assert [o.name for o in clip_sess.get_outputs()] == list(OUTPUT_NAMES)
    for tensor in (*frame_sess.get_inputs(), *clip_sess.get_inputs()):
        dynamic = tensor.shape[:1] if tensor.name == CONTENT_HW else tensor.shape[:2]
        assert all(isinstance(d, str) for d in dynamic), tensor.shape
    content = clip_inputs[CONTENT_HW]
    assert content.type == "tensor(int32)" and content.shape[1] == 2
    stages = exported.manifest_stages()
    assert [s["stage"] for s in stages] == ["frame", "clip"]
    assert stages[0]["outputs"] == ["src", "fpn1", "fpn2"]
    assert stages[1]["inputs"] == ["src", "fpn1", "fpn2", CONTENT_HW]
    assert stages[0]["file"] == exported.frame_path.name and len(stages[1]["sha256"]) == 64


def test_model_without_frame_stage_is_refused():
    with pytest.raises(TwoStageUnsupportedError, match="frame_stage"):
        check_two_stage(torch.nn.Linear(2, 2))
