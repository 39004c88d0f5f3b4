"""IFC near-online merging (models.ifc.near_online) on scripted clip outputs.

``OfficialVideos`` below is a line-by-line numpy transliteration of the official dense store
(``ifc/structures/clip_output.py: Videos`` @880d646, torch -> numpy) kept as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from models.ifc import near_online as no
from models.ifc.postprocess import gather_queries, rank_pairs, upsample_masks


class OfficialVideos:
    """Dense [V, 50, V, h, w] store, as in the official code (float64 here)."""

    def __init__(self, video_length: int, num_classes: int, size: tuple[int, int]):
        v, n = video_length, 50
        self.num_inst, self.num_clip, self.saved_idx_set = 0, 0, set()
        self.saved_logits = np.zeros((v, n, v, *size))
        self.saved_masks = np.zeros((v, n, v, *size))
        self.saved_valid = np.zeros((v, n, v), dtype=bool)
        self.saved_cls = np.zeros((v, n, num_classes + 1))

    @staticmethod
    def get_siou(input_masks, saved_masks, saved_valid):
        hw = input_masks.shape[-1] * input_masks.shape[-2]
        i = input_masks.reshape(*input_masks.shape[:2], hw)[None, None]  # 1, 1, N_i, T, HW
        s = saved_masks.reshape(*saved_masks.shape[:3], hw)[:, :, None]  # C, N_s, 1, T, HW
        valid = saved_valid[:, :, None, :, None]
        num = (s * i * valid).sum(axis=(-1, -2))
        den = ((s + i - s * i) * valid).sum(axis=(-1, -2))
        siou = num / (den + 1e-6)
        num_valid_clip = (saved_valid.sum(axis=2) > 0).sum(axis=0)
        return siou.sum(axis=0) / (num_valid_clip[..., None] + 1e-6)

    def update(self, clip: no.ClipInstances) -> None:
        frame_idx = clip.frame_idx.tolist()
        inter_input = [o for o, f in enumerate(frame_idx) if f in self.saved_idx_set]
        inter_saved = [f for f in frame_idx if f in self.saved_idx_set]
        lo = max(self.num_clip - len(frame_idx), 0)
        s_masks = self.saved_masks[lo : self.num_clip, : self.num_inst][:, :, inter_saved]
        s_valid = self.saved_valid[lo : self.num_clip, : self.num_inst][:, :, inter_saved]
        scores = self.get_siou(clip.mask_probs[:, inter_input], s_masks, s_valid)
        above = scores > 0.05
        rows, cols = linear_sum_assignment(scores * above, maximize=True)
        existed = []
        for r, c in zip(rows, cols, strict=True):
            if not above[r, c]:
                continue
            self.saved_logits[self.num_clip, r, frame_idx] = clip.mask_logits[c]
            self.saved_masks[self.num_clip, r, frame_idx] = clip.mask_probs[c]
            self.saved_valid[self.num_clip, r, frame_idx] = True
            self.saved_cls[self.num_clip, r] = clip.cls_probs[c]
            existed.append(c)
        left = [i for i in range(len(clip.cls_probs)) if i not in existed]
        for j, c in enumerate(left):
            self.saved_logits[self.num_clip, self.num_inst + j, frame_idx] = clip.mask_logits[c]
            self.saved_masks[self.num_clip, self.num_inst + j, frame_idx] = clip.mask_probs[c]
            self.saved_valid[self.num_clip, self.num_inst + j, frame_idx] = True
            self.saved_cls[self.num_clip, self.num_inst + j] = clip.cls_probs[c]
        self.saved_idx_set.update(frame_idx)
        self.num_clip += 1
        self.num_inst += len(left)

    def get_result(self):
        logits = self.saved_logits[: self.num_clip, : self.num_inst]
        valid = self.saved_valid[: self.num_clip, : self.num_inst]
        cls = self.saved_cls[: self.num_clip, : self.num_inst]
        with np.errstate(invalid="ignore"):
            logits = logits.sum(axis=0) / valid.sum(axis=0)[..., None, None]
        return cls.sum(axis=0) / (valid.sum(axis=2) > 0).sum(axis=0)[..., None], logits


def _scripted_clip_outputs(rng, start: int, end: int, *, size=(12, 16), num_classes=3, queries=8):
    """Official-style raw outputs of one clip: 2 moving squares (one leaves at frame 8), noise."""
    h, w = size
    t = end - start
    logits = rng.normal(0, 1, (queries, num_classes + 1))
    logits[:, -1] += 3.0  # most queries are no-object
    masks = rng.normal(-6, 1, (queries, t, h, w))
    for q, (cls, speed, last) in enumerate([(0, 1, 99), (2, -1, 8)]):
        logits[q, cls] += 6.0
        for i, f in enumerate(range(start, end)):
            if f <= last:
                x = (2 + speed * f) % (w - 4)
                masks[q, i, 3 * q : 3 * q + 5, x : x + 4] = rng.normal(6, 1, (5, 4))
    spurious = 2 + rng.integers(0, queries - 2)
    logits[spurious, rng.integers(0, num_classes)] += 6.0  # a short-lived extra instance
    return logits, masks


def _run_both(v, t, s, seed):
    rng = np.random.default_rng(seed)
    official = OfficialVideos(v, 3, (12, 16))
    merger = no.NearOnlineMerger(window=t)
    for start, end in no.clip_schedule(v, t, s):
        clip = no.select_instances(*_scripted_clip_outputs(rng, start, end), np.arange(start, end))
        official.update(clip)
        merger.update(clip)
    return official.get_result(), merger.result(v)


def test_clip_schedule_is_the_official_one():
    assert no.clip_schedule(8, 5, 1) == [(0, 5), (1, 6), (2, 7), (3, 8)]
    assert no.clip_schedule(10, 5, 3) == [(0, 5), (3, 8), (5, 10)]
    assert no.clip_schedule(4, 5, 1) == [(0, 4)]
    with pytest.raises(ValueError, match="stride"):
        no.clip_schedule(4, 5, 0)


@pytest.mark.parametrize("v,t,s,seed", [(13, 5, 1, 0), (20, 5, 2, 1), (9, 3, 1, 2), (4, 5, 1, 3)])
def test_streaming_merger_equals_the_official_dense_store(v, t, s, seed):
    (ref_cls, ref_logits), (cls, logits) = _run_both(v, t, s, seed)
    assert cls.shape == ref_cls.shape and ref_cls.shape[0] >= 2
    np.testing.assert_allclose(cls, ref_cls, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(logits), np.isnan(ref_logits))
    np.testing.assert_allclose(np.nan_to_num(logits), np.nan_to_num(ref_logits), rtol=0, atol=1e-9)


def _clip(frames, cls_probs, logits):
    return no.ClipInstances(np.asarray(frames), np.asarray(cls_probs, float), np.asarray(logits, float))


def test_hand_computed_merge():
    """T=3, S=1, V=4 on 2×2 masks (logits ±20 make probabilities 0/1 up to 2e-9)."""
    off = -20.0
    a = np.full((3, 2, 2), off)
    a[:, 0, :] = 10.0  # top row
    b = np.full((3, 2, 2), off)
    b[:, 0, :] = 20.0  # top row again: sIoU with A ~1 on the overlap frames 1, 2
    c = np.full((3, 2, 2), off)
    c[:, 1, 1] = 20.0  # disjoint from A: sIoU 0
    d = np.full((3, 2, 2), off)
    d[0, 0, 0] = 20.0  # frame 1: ∩ 1 cell, ∪ 4 cells; frame 2: ∩ 0, ∪ 4 -> sIoU 1/8 > 0.05
    d[:, 1, :] = 20.0
    merger = no.NearOnlineMerger(window=3)
    assert merger.update(_clip([0, 1, 2], [[0.6, 0.2, 0.2]], [a])) == [0]
    ids = merger.update(_clip([1, 2, 3], [[0.8, 0.1, 0.1], [0.005, 0.9, 0.095], [0.1, 0.5, 0.4]],
                              [b, c, d]))
    # Hungarian gives track 0 to B (sIoU ~1 beats D's 1/8); C then D start tracks in order.
    assert ids == [0, 1, 2]
    cls, logits = merger.result(4)
    np.testing.assert_allclose(cls[0], [0.7, 0.15, 0.15])
    np.testing.assert_allclose(logits[0, 0, 0], [10.0, 10.0])  # clip 0 only
    np.testing.assert_allclose(logits[0, 1, 0], [15.0, 15.0])  # mean of 10 and 20
    np.testing.assert_allclose(logits[0, 3, 0], [20.0, 20.0])  # clip 1 only
    assert np.isnan(logits[1, 0]).all(), "C was never written on frame 0"
    scores, labels, tracks = no.video_instances(cls, logits)
    assert tracks.tolist() == [0, 0, 1, 2, 2] and labels.tolist() == [0, 1, 1, 0, 1]
    np.testing.assert_allclose(scores, [0.7, 0.15, 0.9, 0.1, 0.5])
    scores, labels, tracks = no.video_instances(cls, logits, multi_cls=False)
    assert labels.tolist() == [0, 1, 1] and tracks.tolist() == [0, 1, 2]


@pytest.mark.parametrize("outside,continues", [(3, True), (5, False)])
def test_match_threshold_gates_at_0_05(outside, continues):
    """Track: a 16-cell block. New mask: 1 cell of it + ``outside`` cells -> sIoU 1/(16+outside):
    1/19 = 0.053 continues the track, 1/21 = 0.048 starts a new one."""
    a = np.full((2, 8, 8), -20.0)
    a[:, :4, :4] = 20.0
    new = np.full((2, 8, 8), -20.0)
    new[:, 0, 0] = 20.0
    new[:, 7, :outside] = 20.0
    merger = no.NearOnlineMerger(window=2)
    merger.update(_clip([0, 1], [[0.9, 0.1]], [a]))
    assert merger.update(_clip([1, 2], [[0.9, 0.1]], [new])) == [0 if continues else 1]


def test_too_many_tracks_is_a_named_error():
    merger = no.NearOnlineMerger(window=2, max_tracks=2)
    empty = np.full((3, 2, 2, 2), -20.0)
    with pytest.raises(no.TooManyTracksError, match="max_tracks=2"):
        merger.update(_clip([0, 1], np.full((3, 2), 0.5), empty))


def test_select_instances_drops_no_object_queries():
    logits = np.log(np.array([[0.2, 0.1, 0.7], [0.1, 0.6, 0.3], [0.4, 0.2, 0.4]]))
    clip = no.select_instances(logits, np.zeros((3, 1, 2, 2)), np.arange(1))
    np.testing.assert_allclose(clip.cls_probs, [[0.1, 0.6, 0.3], [0.4, 0.2, 0.4]])


def _contract_rows(logits: np.ndarray, masks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The model's own contract post-processing (torch) applied to scripted raw outputs."""
    lg, mk = torch.from_numpy(logits).float()[None], torch.from_numpy(masks).float()
    scores, labels, query = rank_pairs(lg, k)
    picked = gather_queries(mk.flatten(1)[None], query).reshape(1, k, *mk.shape[1:])
    return {"scores": scores[0].numpy(), "labels": labels[0].numpy(),
            "query_index": query[0].numpy(), "masks": upsample_masks(picked)[0].numpy()}


def test_contract_outputs_reproduce_the_official_merge():
    """Tracker setting: windows T=5, stride 1, ``instances_from_contract`` then the merger with
    match threshold 0.05 — same tracks and classes as the official merge on the raw outputs, and
    its logits equal the official stride-8 result upsampled ×2 (averaging commutes with bilinear)."""
    rng = np.random.default_rng(5)
    v, t = 12, 5
    official, ours = no.NearOnlineMerger(window=t), no.NearOnlineMerger(window=t)
    for start, end in no.clip_schedule(v, t, 1):
        logits, masks = _scripted_clip_outputs(rng, start, end)
        frames = np.arange(start, end)
        ids_ref = official.update(no.select_instances(logits, masks, frames))
        rows = _contract_rows(logits, masks, k=24)  # K ≥ kept queries × classes: nothing cut
        assert ours.update(no.instances_from_contract(rows, frames, num_classes=3)) == ids_ref
    ref_cls, ref_logits = official.result(v)
    cls, logits = ours.result(v)
    np.testing.assert_allclose(cls[:, :-1], ref_cls[:, :-1], atol=1e-6)
    written = ~np.isnan(ref_logits)
    up = torch.nn.functional.interpolate(torch.from_numpy(np.nan_to_num(ref_logits)), scale_factor=2,
                                         mode="bilinear", align_corners=False).numpy()
    both = np.repeat(np.repeat(written, 2, axis=-2), 2, axis=-1)
    np.testing.assert_array_equal(~np.isnan(logits), both)
    np.testing.assert_allclose(logits[both], up[both], atol=2e-2)  # fp32 sigmoid -> logit round trip
    assert ((logits[both] > 0) == (up[both] > 0)).mean() > 0.999


def test_runtime_ifc_official_tracker_gives_the_official_merge():
    """The runtime path — contract rows -> ``decode_outputs`` -> ``NearOnlineTracker`` (windows
    T=5, stride 1) — links every instance to the official track and averages the same class
    probabilities as the official merge on the raw clip outputs."""
    from runtime.instances import decode_outputs
    from runtime.tracking.ifc_official import NearOnlineTracker

    rng = np.random.default_rng(11)
    v, t, num_classes = 14, 5, 3
    official, tracker = no.NearOnlineMerger(window=t), NearOnlineTracker(window=t)
    for start, end in no.clip_schedule(v, t, 1):
        logits, masks = _scripted_clip_outputs(rng, start, end)
        frames = np.arange(start, end)
        clip = no.select_instances(logits, masks, frames)
        ref = official.update(clip)
        rows = _contract_rows(logits, masks, k=24)
        batch = {k: a[None] for k, a in rows.items()}
        batch["boxes"] = np.zeros((1, 24, t, 4), np.float32)
        batch["embeddings"] = np.zeros((1, 24, 4), np.float32)
        inst = decode_outputs(batch, num_frames=t, num_classes=num_classes,
                              min_score=tracker.continue_score)
        ids = tracker.update(inst, frames.tolist())
        kept_queries = np.flatnonzero(np.argmax(logits, 1) < num_classes)  # official instance order
        assert len(kept_queries) == len(clip.cls_probs) == len(inst)
        for row, query in enumerate(inst.query_index):
            expected = ref[int(np.flatnonzero(kept_queries == query)[0])] + 1
            assert ids[row] == expected
            track = official.tracks[expected - 1]
            np.testing.assert_allclose(tracker.get(expected).class_scores,
                                       track.cls_sum[:-1] / track.clips, atol=1e-6)
    assert tracker.num_created == len(official.tracks) >= 3  # two squares and spurious ones
    assert len(tracker.tracks) <= len(official.tracks)  # finished tracks are dropped
