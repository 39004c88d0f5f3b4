"""The ``ifc-official`` tracker setting in the pipeline and CLI (its equality with the official
merge is tested in tests/models/test_ifc_near_online.py)."""

from __future__ import annotations

import numpy as np
import pytest
import rt_fixtures as F

from runtime import Pipeline
from runtime.errors import ConfigError
from runtime.tracking.ifc_official import NearOnlineTracker
from runtime.types import WindowInstances


def test_pipeline_runs_with_the_ifc_official_tracker(contract_artifacts):
    frames, _ = F.make_clip(12)
    with Pipeline(contract_artifacts, window=5, stride=1, tracker="ifc-official",
                  keep_images=False) as pipeline:
        assert isinstance(pipeline.tracker, NearOnlineTracker)
        results = pipeline.process(frames) + pipeline.flush()
    assert [r.index for r in results] == list(range(12))
    ids = {tid for r in results for tid in r.track_ids.tolist()}
    assert ids == {1, 2}  # the red and the green square keep one ID each


def test_unknown_tracker_name_is_refused(contract_artifacts):
    with pytest.raises(ConfigError, match="ifc-official"):
        Pipeline(contract_artifacts, tracker="sort")


def _square(x: int, t: int = 5, size=(16, 24)) -> np.ndarray:
    m = np.zeros((t, *size), np.float32)
    for i in range(t):
        m[i, 4:10, x + i : x + i + 6] = 0.95
    return m


def _window(masks: list[np.ndarray], queries: list[int]) -> WindowInstances:
    n = len(masks)
    return WindowInstances(
        scores=np.full(n, 0.9, np.float32), labels=np.zeros(n, np.int64),
        class_scores=np.tile(np.array([[0.9, 0.05]], np.float32), (n, 1)),
        masks=np.stack(masks), boxes=np.zeros((n, 5, 4), np.float32),
        embeddings=np.zeros((n, 4), np.float32), query_index=np.asarray(queries, np.int64))


def test_tracks_continue_by_soft_iou_and_finish_after_a_gap():
    tracker = NearOnlineTracker(window=5)
    first = tracker.update(_window([_square(0)], [3]), [0, 1, 2, 3, 4])
    second = tracker.update(_window([_square(1)], [7]), [1, 2, 3, 4, 5])  # shifted one frame
    assert first.tolist() == second.tolist() == [1]
    empty = WindowInstances.empty(num_frames=5, mask_hw=(16, 24), num_classes=2, embedding_dim=4)
    for start in range(2, 8):  # the object is gone for longer than the window: track finished
        tracker.update(empty, list(range(start, start + 5)))
        if start < 6:
            assert 1 in tracker.tracks  # still written in one of the last 5 windows
    assert 1 not in tracker.tracks
    again = tracker.update(_window([_square(1)], [3]), [8, 9, 10, 11, 12])
    assert again.tolist() == [2]  # no re-identification in IFC's scheme; IDs never reused


def test_instances_start_tracks_in_query_order():
    tracker = NearOnlineTracker()
    far = np.zeros((5, 16, 24), np.float32)
    far[:, 10:14, 16:22] = 0.9
    ids = tracker.update(_window([far, _square(0)], [9, 2]), [0, 1, 2, 3, 4])
    assert ids.tolist() == [2, 1]  # query 2 is the first official instance
