"""``FrameResult.to_supervision()``: real pipeline results into supervision's Detections,
and supervision's own tools (annotators, zones) working on them."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import rt_fixtures as F

from runtime import Pipeline
from runtime import rle as rle_codec

sv = pytest.importorskip("supervision", reason="supervision missing: pip install -e '.[dev]'")


@pytest.fixture(scope="module", params=["bool", "rle"])
def results(request, contract_artifacts):
    frames, _ = F.make_clip(8)
    with Pipeline(contract_artifacts, window=4, stride=2, device="cpu", keep_images=True,
                  mask_format=request.param) as pipeline:
        out = pipeline.process(list(frames)) + pipeline.flush()
    assert all(len(r) == 2 for r in out)
    return out


def test_detections_carry_every_column(results):
    for result in results:
        detections = result.to_supervision()
        assert isinstance(detections, sv.Detections) and len(detections) == len(result)
        np.testing.assert_array_equal(detections.xyxy, result.boxes)
        np.testing.assert_array_equal(detections.confidence, result.scores)
        np.testing.assert_array_equal(detections.class_id, result.labels)
        np.testing.assert_array_equal(detections.tracker_id, result.track_ids)
        masks = result.masks if result.masks is not None else np.stack(
            [rle_codec.decode(r) for r in result.rles])
        assert detections.mask.dtype == bool
        np.testing.assert_array_equal(detections.mask, masks)
        assert list(detections.data["class_name"]) == ["red", "green"]
        assert detections.metadata["index"] == result.index


def test_supervision_tools_work_on_the_detections(results):
    result = results[-1]
    detections = result.to_supervision()
    scene = np.ascontiguousarray(result.image[..., ::-1])
    annotated = sv.MaskAnnotator().annotate(scene.copy(), detections)
    assert (annotated != scene)[detections.mask.any(axis=0)].any()
    labels = [f"#{t} {n}" for t, n in zip(detections.tracker_id, detections.data["class_name"])]
    sv.LabelAnnotator().annotate(scene.copy(), detections, labels=labels)
    h, w = result.size
    left_half = np.array([[0, 0], [w // 2, 0], [w // 2, h - 1], [0, h - 1]])
    inside = sv.PolygonZone(polygon=left_half).trigger(detections)
    centres = (detections.xyxy[:, 0] + detections.xyxy[:, 2]) / 2
    np.testing.assert_array_equal(inside, centres < w // 2)


def test_empty_frame_and_missing_supervision(results, monkeypatch):
    empty = results[0][np.zeros(len(results[0]), bool)]
    detections = empty.to_supervision()
    assert len(detections) == 0 and detections.mask.shape == (0, *empty.size)
    monkeypatch.setitem(sys.modules, "supervision", None)
    with pytest.raises(ImportError, match=r"visdeploy\[interop\]"):
        results[0].to_supervision()
