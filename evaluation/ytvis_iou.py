"""Spatio-temporal (video) IoU between result tracks and GT tracks, official arithmetic.

For a result d and a GT g, over the frames both lists cover (``zip``: the shorter length):
both present -> I += |d & g|, U += |d | g|; one present -> U += its area; IoU = I / U, 0 if U = 0.
A frame whose two masks differ in size adds nothing (pycocotools ``merge`` returns an empty RLE).

The fast form computes all pairs of one (video, category) together: U from two integer matrix
products over frames, and per frame one ``pycocotools.mask.iou`` call for all present pairs, from
which the exact integer intersection is recovered as ``round(o * (a + b) / (1 + o))`` (because
``I + U = a + b``; the ratio's rounding error is far below 0.5 pixel).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from evaluation.ytvis_io import EvalInput, Track, present_areas


def sort_and_cap(tracks: list[Track], max_det: int) -> list[Track]:
    """Results by descending score, stable (file order breaks ties), cut to ``max_det``."""
    order = np.argsort(-np.array([t.score for t in tracks], dtype=np.float64), kind="mergesort")
    return [tracks[i] for i in order[:max_det]]


def _area_matrix(tracks: list[Track], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(areas int64[N, frames], covered bool[N, frames])``; covered = frame within the list."""
    areas = np.zeros((len(tracks), frames), dtype=np.int64)
    covered = np.zeros((len(tracks), frames), dtype=bool)
    for i, t in enumerate(tracks):
        n = min(len(t.rles), frames)
        areas[i, :n] = t.mask_areas[:n]
        covered[i, :n] = True
    return areas, covered


def _frame_intersections(dts: list[Track], gts: list[Track], frames: int,
                         d_areas: np.ndarray, g_areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum over frames of ``|d & g|`` and of ``a + b`` for size-mismatched present pairs.

    Returns ``(inter int64[D, G], mismatch int64[D, G])``.
    """
    inter = np.zeros((len(dts), len(gts)), dtype=np.int64)
    mismatch = np.zeros_like(inter)
    for f in range(frames):
        di = [i for i, t in enumerate(dts) if f < len(t.rles) and t.rles[f] is not None]
        gi = [j for j, t in enumerate(gts) if f < len(t.rles) and t.rles[f] is not None]
        if not di or not gi:
            continue
        d_rles = [dts[i].rles[f] for i in di]
        g_rles = [gts[j].rles[f] for j in gi]
        a = d_areas[di, f][:, None].astype(np.float64)
        b = g_areas[gi, f][None, :].astype(np.float64)
        ratio = np.asarray(mask_utils.iou(d_rles, g_rles, [0] * len(gi)), dtype=np.float64)
        ratio = ratio.reshape(len(di), len(gi))
        found = np.rint(np.where(ratio > 0, ratio * (a + b) / (1.0 + ratio), 0.0))
        d_size = np.array([r["size"] for r in d_rles]).reshape(-1, 2)
        g_size = np.array([r["size"] for r in g_rles]).reshape(-1, 2)
        bad = np.any(d_size[:, None, :] != g_size[None, :, :], axis=2)
        found[bad] = 0
        inter[np.ix_(di, gi)] += found.astype(np.int64)
        mismatch[np.ix_(di, gi)] += np.where(bad, a + b, 0).astype(np.int64)
    return inter, mismatch


def pair_ious(dts: list[Track], gts: list[Track]) -> np.ndarray:
    """Video IoU ``float64[D, G]`` of every (result, GT) pair, exactly as the official scorer."""
    if not dts or not gts:
        return np.zeros((len(dts), len(gts)))
    frames = max(len(t.rles) for t in [*dts, *gts])
    d_areas, d_cov = _area_matrix(dts, frames)
    g_areas, g_cov = _area_matrix(gts, frames)
    inter, mismatch = _frame_intersections(dts, gts, frames, d_areas, g_areas)
    union = d_areas @ g_cov.T.astype(np.int64) + d_cov.astype(np.int64) @ g_areas.T
    union = union - inter - mismatch
    out = np.zeros(union.shape, dtype=np.float64)
    np.divide(inter.astype(np.float64), union.astype(np.float64), out=out, where=union > 0)
    return out


def compute_ious(data: EvalInput, *, max_det: int = 100
                 ) -> tuple[dict[tuple[int, int], list[Track]], dict[tuple[int, int], np.ndarray]]:
    """Sorted, capped results and IoU matrices ``float64[D, G]`` per (video, category).

    GT columns are in GT file order.
    """
    dts = {key: sort_and_cap(tracks, max_det) for key, tracks in data.dts.items()}
    ious = {key: pair_ious(dts.get(key, []), data.gts.get(key, []))
            for key in set(dts) | set(data.gts)}
    return dts, ious


def sequence_ious(a: list[list], b: list[list]) -> np.ndarray:
    """Video IoU ``float64[len(a), len(b)]`` between lists of per-frame RLE-or-``None`` sequences.

    RLEs must be pycocotools dicts (compressed; counts str or bytes).
    """
    def wrap(seqs: list[list]) -> list[Track]:
        rles = [[r if r else None for r in s] for s in seqs]
        return [Track(0, 0, 0, 0.0, False, 0.0, r, present_areas(r)) for r in rles]

    return pair_ious(wrap(a), wrap(b))
