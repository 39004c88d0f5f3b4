"""Tracker on scripted instance streams with known identities (zero ID switches where cues allow)."""

from __future__ import annotations

import numpy as np
import pytest
import rt_fixtures as F

from runtime.errors import ConfigError
from runtime.tracking import Tracker, TrackState
from runtime.tracking.costs import (
    PackedMasks,
    linear_assignment,
    mask_iou_matrix,
    mask_nms,
    packed_iou_matrix,
    soft_iou_matrix,
)


def _emb(seed: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim)


def _linear(y0, x0, vy, vx, *, hidden=()):
    return lambda t: None if any(a <= t < b for a, b in hidden) else (y0 + vy * t, x0 + vx * t)


# -- pure helpers ---------------------------------------------------------------------------
def test_linear_assignment_empty_and_gated():
    matches, rows, cols = linear_assignment(np.zeros((0, 3)), max_cost=1.0)
    assert matches.shape == (0, 2) and rows.size == 0 and cols.tolist() == [0, 1, 2]
    cost = np.array([[0.1, 0.9], [np.inf, 0.95]])
    matches, rows, cols = linear_assignment(cost, max_cost=0.5)
    assert matches.tolist() == [[0, 0]] and rows.tolist() == [1] and cols.tolist() == [1]


def test_soft_iou_equals_iou_for_binary_masks_and_nms_keeps_best():
    a = np.zeros((2, 16), np.float32)
    a[0, :8] = 1
    a[1, 4:12] = 1
    iou = soft_iou_matrix(a, a)
    assert iou[0, 1] == pytest.approx(4 / 12) and iou[0, 0] == 1
    assert soft_iou_matrix(np.zeros((1, 16), np.float32), np.zeros((1, 16), np.float32))[0, 0] == 0
    dup = PackedMasks.from_bool(np.stack([a[0], a[0], a[1]]).reshape(3, 1, 4, 4) > 0)
    assert sorted(mask_nms(dup, np.array([0.5, 0.9, 0.4]), iou_threshold=0.6)) == [1, 2]


@pytest.mark.parametrize("density", [0.02, 0.3])
def test_box_gated_mask_iou_equals_dense_reference(density):
    """Box-gated, bit-packed video IoU equals the dense soft-IoU reference on binary masks."""
    rng = np.random.default_rng(int(density * 100))
    a = np.zeros((7, 3, 20, 24), bool)
    b = np.zeros((5, 3, 20, 24), bool)
    for masks in (a, b):
        for i in range(len(masks)):
            y, x = rng.integers(0, 14, 2)
            masks[i, :, y:y + 6, x:x + 8] = rng.random((3, 6, 8)) > density
    masks_empty = np.zeros((1, 3, 20, 24), bool)
    a = np.concatenate([a, masks_empty])
    reference = soft_iou_matrix(a.reshape(8, -1).astype(np.float32),
                                b.reshape(5, -1).astype(np.float32))
    assert np.allclose(mask_iou_matrix(a, b), reference, atol=1e-6)
    assert mask_iou_matrix(a[:0], b).shape == (0, 5)
    packed = PackedMasks.from_bool(a)
    assert np.allclose(packed_iou_matrix(packed), soft_iou_matrix(*[a.reshape(8, -1)
                                                                  .astype(np.float32)] * 2))
    box = np.pad(np.ones((1, 1, 2, 3), bool), ((0, 0), (0, 0), (4, 1), (5, 2)))
    assert PackedMasks.from_bool(box).boxes.tolist() == [[[4, 5, 6, 8]]]
    assert PackedMasks.from_bool(masks_empty).boxes.max() == 0


# -- scripted streams -----------------------------------------------------------------------
@pytest.mark.parametrize("same_embedding", [False, True])
def test_two_same_class_objects_crossing(same_embedding):
    """A left->right, B right->left, same class. Distinct embeddings: they may overlap fully.
    Identical embeddings: vertical offset keeps the masks apart enough for IoU to decide."""
    offset = 3.0 if same_embedding else 0.0
    emb_b = _emb(1) if same_embedding else _emb(2)
    objects = [F.ScriptedObject(1, 0, _emb(1), _linear(12, 2, 0, 1.0)),
               F.ScriptedObject(2, 0, emb_b, _linear(12 + offset, 30, 0, -1.0))]
    assigned = F.run_scripted(Tracker(), objects, num_frames=32)
    assert F.id_switches(assigned) == 0
    assert len(assigned[1]) == len(assigned[2]) == 10


@pytest.mark.parametrize("hidden_windows", [1, 2, 4])
def test_object_occluded_for_k_windows_then_returns_with_its_id(hidden_windows):
    hide = (9, 9 + 3 * hidden_windows + 2)  # absent from every frame of k windows + overlap
    objects = [F.ScriptedObject(1, 1, _emb(3), _linear(6, 4, 0, 0.6, hidden=[hide])),
               F.ScriptedObject(2, 2, _emb(4), _linear(18, 28, 0, -0.3))]
    tracker = Tracker()
    assigned = F.run_scripted(tracker, objects, num_frames=45)
    assert F.id_switches(assigned) == 0
    assert tracker.num_created == 2


def test_objects_entering_and_leaving_get_new_never_reused_ids():
    objects = [F.ScriptedObject(1, 0, _emb(5), _linear(5, 2, 0, 1.0, hidden=[(20, 99)])),
               F.ScriptedObject(2, 1, _emb(6), _linear(15, 2, 0, 0.8, hidden=[(0, 12)])),
               F.ScriptedObject(3, 0, _emb(7), _linear(8, 20, 0, 0.2, hidden=[(0, 30)]))]
    tracker = Tracker(max_lost_frames=4)  # object 1's track expires before object 3 enters
    assigned = F.run_scripted(tracker, objects, num_frames=44)
    assert F.id_switches(assigned) == 0
    assert assigned[1][0] == 1 and assigned[2][0] == 2 and assigned[3][0] == 3
    assert 1 not in tracker.tracks  # removed, and its ID was not given to object 3


def test_empty_window_keeps_identities():
    objects = [F.ScriptedObject(1, 0, _emb(8), _linear(6, 3, 0, 0.5)),
               F.ScriptedObject(2, 1, _emb(9), _linear(16, 25, 0, -0.5))]
    tracker = Tracker()
    assigned = F.run_scripted(tracker, objects, num_frames=35, empty_windows={3, 4})
    assert F.id_switches(assigned) == 0 and tracker.num_created == 2


def test_window_with_many_duplicates_gives_one_track_per_object():
    objects = [F.ScriptedObject(i, i % 3, _emb(10 + i), _linear(4 + 5 * i, 3 + 2 * i, 0, 0.5))
               for i in range(1, 4)]
    tracker = Tracker()
    assigned = F.run_scripted(tracker, objects, num_frames=26, duplicates=3)
    assert F.id_switches(assigned) == 0 and tracker.num_created == 3


def test_memory_is_bounded_and_reset_restarts_ids():
    rng = np.random.default_rng(0)
    tracker = Tracker(max_tracks=12, max_lost_frames=1000)
    for k in range(60):  # a new object every window: lost tracks pile up against the cap
        frames = list(range(3 * k, 3 * k + 5))
        obj = F.ScriptedObject(k, 0, _emb(100 + k, 64),
                               _linear(5 + (7 * k) % 14, 5 + (11 * k) % 22, 0, 0))
        instances, _ = F.scripted_window([obj], frames, rng=rng)
        tracker.update(instances, frames)
        assert len(tracker.tracks) <= 12
        for track in tracker.tracks.values():
            assert track.state is TrackState.ACTIVE or track.masks is None
            assert track.masks is None or track.masks.bits.shape[:2] == (1, 5)
    assert tracker.num_created > 12
    tracker.reset()
    assert tracker.tracks == {} and tracker.num_created == 0


def test_low_score_rows_extend_but_never_start_tracks():
    rng = np.random.default_rng(1)
    tracker = Tracker(continue_score=0.1, birth_score=0.5)
    obj = F.ScriptedObject(1, 0, _emb(11), _linear(10, 10, 0, 0.5))
    for k, score in enumerate([0.2, 0.9, 0.2, 0.2]):
        frames = list(range(3 * k, 3 * k + 5))
        instances, _ = F.scripted_window([obj], frames, rng=rng, score=score)
        ids = tracker.update(instances, frames)
        assert ids.tolist() == ([-1] if k == 0 else [1])


def test_bad_thresholds_are_refused():
    with pytest.raises(ConfigError, match="continue_score <= birth_score"):
        Tracker(continue_score=0.6, birth_score=0.5)
    with pytest.raises(ValueError, match="frames"):
        Tracker().update(F.scripted_window([], [0, 1], rng=np.random.default_rng())[0], [0, 1, 2])
