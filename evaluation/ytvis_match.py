"""Greedy matching of one (video, category, area range), as the official ``evaluateVid``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.ytvis_io import Track


@dataclass
class VideoEval:
    """Matching of one (video, category, area range).

    ``dt_matches float64[T, D]``: id of the matched GT, 0 when unmatched (the official code tests
    this id for truthiness, so a GT with id 0 never counts as a match: kept for exactness).
    ``dt_ignore bool[T, D]``, ``gt_ignore bool[G]`` (GT sorted with ignored ones last),
    ``dt_scores float64[D]`` in descending score order (stable).
    """

    dt_scores: np.ndarray
    dt_matches: np.ndarray
    dt_ignore: np.ndarray
    gt_ignore: np.ndarray


def _outside(area: float, rng: tuple[float, float]) -> bool:
    return area < rng[0] or area > rng[1]


def _greedy(ious: list[list[float]], gt_ignore: list[bool], crowd: list[bool],
            threshold: float) -> list[int]:
    """Per result (score order), the GT index it matches at ``threshold``, or -1.

    Each result takes the unmatched GT with the highest IoU >= min(threshold, 1 - 1e-10);
    ignored GTs (sorted last) are only taken when no regular GT matches; crowd GTs are reusable.
    """
    taken = [False] * len(gt_ignore)
    found: list[int] = []
    for row in ious:
        best, m = min(threshold, 1 - 1e-10), -1
        for g, value in enumerate(row):
            if taken[g] and not crowd[g]:
                continue
            if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                break
            if value < best:
                continue
            best, m = value, g
        if m > -1:
            taken[m] = True
        found.append(m)
    return found


def evaluate_video(dts: list[Track], gts: list[Track], ious: np.ndarray,
                   area_range: tuple[float, float], thresholds: np.ndarray) -> VideoEval | None:
    """Match sorted, capped results ``dts`` to ``gts`` (``ious float64[D, G]``) at each threshold.

    Returns ``None`` when the (video, category) has neither results nor GT, as the official code.
    """
    if not dts and not gts:
        return None
    ignore = [bool(g.iscrowd) or _outside(g.avg_area, area_range) for g in gts]
    order = np.argsort(np.array(ignore, dtype=np.int64), kind="mergesort")
    gts = [gts[i] for i in order]
    gt_ignore = [ignore[i] for i in order]
    crowd = [bool(g.iscrowd) for g in gts]
    table = ious[:, order].tolist() if len(gts) else [[] for _ in dts]
    matches = np.zeros((len(thresholds), len(dts)))
    dt_ignore = np.zeros((len(thresholds), len(dts)), dtype=bool)
    for t, threshold in enumerate(thresholds.tolist()):
        for d, m in enumerate(_greedy(table, gt_ignore, crowd, threshold)):
            if m > -1:
                matches[t, d] = gts[m].id
                dt_ignore[t, d] = gt_ignore[m]
    out_of_range = np.array([_outside(d.avg_area, area_range) for d in dts], dtype=bool)
    dt_ignore |= (matches == 0) & out_of_range[None, :]
    return VideoEval(dt_scores=np.array([d.score for d in dts], dtype=np.float64),
                     dt_matches=matches, dt_ignore=dt_ignore,
                     gt_ignore=np.array(gt_ignore, dtype=bool))
