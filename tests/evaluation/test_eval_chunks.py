"""Chunk geometry, the chunked oracle (no-link baseline vs re-linked AP), boundary switches and
link precision/recall, with hand-computed values.

Fixture: one 12-frame 40x64 video, two GT objects of different categories, each a 10x10 box
visible in every frame (constant area A). Chunks T=6, S=4 start at 0, 4, 8 and cover 6, 6 and
4 frames, so a chunk piece of a GT has video IoU 6A/12A = 0.5 (exactly), 0.5 and 4A/12A.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import rle
from evaluation.chunks import (
    boundary_windows,
    chunk_ground_truth,
    chunk_starts,
    link_metrics,
    linker_efficiency,
    results_from_chunks,
)
from evaluation.errors import TrackingInputError
from evaluation.track_eval import tracking_report
from evaluation.tracking_input import frames_from_ground_truth
from evaluation.ytvis import evaluate

H, W, F, T, S = 40, 64, 12, 6, 4


def _box(f: int, y: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y:y + 10, 2 + 4 * f:12 + 4 * f] = True
    return mask


@pytest.fixture
def gt() -> dict:
    anns = [{"id": ann_id, "video_id": 1, "category_id": cat, "iscrowd": 0,
             "segmentations": [rle.encode_uncompressed(_box(f, y)) for f in range(F)],
             "areas": [100] * F}
            for ann_id, cat, y in ((1, 1, 2), (2, 2, 25))]
    return {"videos": [{"id": 1, "height": H, "width": W, "length": F}], "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def test_chunk_geometry():
    assert chunk_starts(12, 6, 4) == [0, 4, 8]
    assert chunk_starts(10, 5, 5) == [0, 5]
    assert chunk_starts(3, 6, 4) == [0]
    assert boundary_windows(12, 6, 4) == [range(4, 7), range(8, 11)]
    with pytest.raises(TrackingInputError, match="stride 7"):
        chunk_starts(12, 6, 7)


def test_chunked_oracle_scores_the_no_link_baseline_and_relinking_restores_one(gt):
    chunks = chunk_ground_truth(gt, 1, window=T, stride=S)
    assert [len(c.tracks) for c in chunks] == [2, 2, 2]
    unlinked = results_from_chunks(chunks, 1, F, H, W, link="none")
    assert len(unlinked) == 6
    summary = evaluate(gt, unlinked)
    # per category: the first piece (IoU exactly 0.5) matches at t = 0.50 only
    assert summary["AP"] == pytest.approx(0.1, abs=1e-12)
    assert summary["AP50"] == pytest.approx(1.0, abs=1e-12) and summary["AP75"] == 0.0
    assert summary["AR1"] == pytest.approx(0.1)
    linked = evaluate(gt, results_from_chunks(chunks, 1, F, H, W, link="global"))
    assert linked["AP"] == pytest.approx(1.0, abs=1e-12)
    assert linker_efficiency(summary["AP"], linked["AP"], linked["AP"]) == pytest.approx(1.0)
    assert linker_efficiency(0.1, 0.4, 0.7) == pytest.approx(0.5)
    assert math.isnan(linker_efficiency(0.5, 0.5, 0.5))


def _per_frame(chunks, ids) -> list[list]:
    """Per-frame output of a tracker that shows every chunk piece, id = ids(k, track)."""
    frames: list[list] = [[] for _ in range(F)]
    for k, chunk in enumerate(chunks):
        for track in chunk.tracks:
            for i, mask in enumerate(track.masks):
                frame = frames[chunk.start + i]
                if mask is not None and not any(e[0] == ids(k, track) for e in frame):
                    frame.append((ids(k, track), mask))
    return frames


def test_boundary_switches_of_an_unlinked_tracker(gt):
    chunks = chunk_ground_truth(gt, 1, window=T, stride=S)
    gt_frames, h, w = frames_from_ground_truth(gt, 1)
    unlinked = tracking_report(gt_frames, _per_frame(chunks, lambda k, t: 100 * k + t.local_id),
                               h, w, window=T, stride=S)
    # each GT keeps its old id through the overlap, then switches at frames 6 and 10
    assert unlinked["IDSW"] == 4 and unlinked["boundary_idsw"] == 4
    assert unlinked["within_idsw"] == 0 and unlinked["crossings"] == 4
    assert unlinked["boundary_idsw_per_crossing"] == 1.0
    assert unlinked["FP"] == 2 * (2 + 2)  # the duplicate piece in each overlap frame
    linked = tracking_report(gt_frames, _per_frame(chunks, lambda k, t: t.global_id), h, w,
                             window=T, stride=S)
    assert linked["IDSW"] == 0 and linked["MOTA"] == 1.0 and linked["IDF1"] == 1.0


def test_within_chunk_switch_is_not_a_boundary_switch(gt):
    gt_frames, h, w = frames_from_ground_truth(gt, 1)
    pred = [[(1 if f < 2 else 3, e[1]) for e in frame if e[0] == 1] for f, frame in
            enumerate(gt_frames)]
    report = tracking_report(gt_frames, pred, h, w, window=T, stride=S)
    assert report["IDSW"] == 1 and report["within_idsw"] == 1 and report["boundary_idsw"] == 0
    assert report["within_idsw_per_gt_frame"] == pytest.approx(1 / 24)


def test_link_precision_and_recall(gt):
    chunks = chunk_ground_truth(gt, 1, window=T, stride=S)
    perfect = link_metrics(chunks, frames_from_ground_truth(gt, 1)[0], H, W)
    assert perfect == {"gt_pairs": 4.0, "joins": 4.0, "link_recall": 1.0, "link_precision": 1.0,
                       "false_merges": 0.0, "missed_links": 0.0}
    a, b = chunks[2].tracks  # swap the ids the linker gave in the last chunk
    a.global_id, b.global_id = b.global_id, a.global_id
    swapped = link_metrics(chunks, frames_from_ground_truth(gt, 1)[0], H, W)
    assert swapped["link_recall"] == 0.5 and swapped["link_precision"] == 0.5
    assert swapped["false_merges"] == 2 and swapped["missed_links"] == 2
    for chunk in chunks:
        for track in chunk.tracks:
            track.global_id = None
    none = link_metrics(chunks, frames_from_ground_truth(gt, 1)[0], H, W)
    assert none["link_recall"] == 0.0 and none["joins"] == 0
    assert math.isnan(none["link_precision"])
