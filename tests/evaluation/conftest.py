"""Fixtures of the evaluation tests, described in one place.

``box_gt``: the spec's section 1.7 video: 6 frames of 40x60 (H x W), one GT track (category 1 of
2) = a 10x10 box moving 5 px right per frame, absent in frame 3 (areas 100, null at frame 3).
``box_masks``: its per-frame ``bool[40, 60]`` masks (all-False at frame 3).
``pred``: builds one result entry.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import rle

H, W, F = 40, 60, 6


def _box(f: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    if f != 3:
        mask[10:20, 5 + 5 * f:15 + 5 * f] = True
    return mask


@pytest.fixture
def box_masks() -> list[np.ndarray]:
    return [_box(f) for f in range(F)]


@pytest.fixture
def box_gt(box_masks) -> dict:
    segs = [rle.encode_uncompressed(m) if m.any() else None for m in box_masks]
    return {
        "videos": [{"id": 1, "height": H, "width": W, "length": F,
                    "file_names": [f"v1/{f:05d}.png" for f in range(F)]}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentations": segs,
                         "areas": [int(m.sum()) if m.any() else None for m in box_masks],
                         "bboxes": [None] * F}],
    }


@pytest.fixture
def pred():
    def make(masks, *, score=0.9, category=1, video=1) -> dict:
        segs = [m if (m is None or isinstance(m, dict)) else (rle.encode(m) if m.any() else None)
                for m in masks]
        return {"video_id": video, "category_id": category, "score": score, "segmentations": segs}
    return make
