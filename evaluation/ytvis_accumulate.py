"""Precision/recall accumulation and the summary figures, as the official scorer.

``precision float64[T, R, K, A, M]`` and ``recall float64[T, K, A, M]`` hold -1 for settings
without any non-ignored GT; summary means skip them.
"""

from __future__ import annotations

import numpy as np

from evaluation.ytvis_match import VideoEval
from evaluation.ytvis_params import Params

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _precision_recall(evals: list[VideoEval], max_det: int, params: Params
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Interpolated precision ``[T, R]`` and final recall ``[T]`` over videos, or ``None``."""
    scores = np.concatenate([e.dt_scores[:max_det] for e in evals])
    order = np.argsort(-scores, kind="mergesort")
    matches = np.concatenate([e.dt_matches[:, :max_det] for e in evals], axis=1)[:, order]
    ignore = np.concatenate([e.dt_ignore[:, :max_det] for e in evals], axis=1)[:, order]
    npig = int(np.count_nonzero(np.concatenate([e.gt_ignore for e in evals]) == 0))
    if npig == 0:
        return None
    tp_sum = np.cumsum(np.logical_and(matches, ~ignore), axis=1).astype(np.float64)
    fp_sum = np.cumsum(np.logical_and(np.logical_not(matches), ~ignore), axis=1).astype(np.float64)
    count_t, count_r, nd = len(params.iou_thresholds), len(params.recall_thresholds), len(scores)
    precision = np.zeros((count_t, count_r))
    recall = np.zeros(count_t)
    for t in range(count_t):
        rc = tp_sum[t] / npig
        pr = tp_sum[t] / (fp_sum[t] + tp_sum[t] + np.spacing(1))
        recall[t] = rc[-1] if nd else 0
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # monotone from the right
        inds = np.searchsorted(rc, params.recall_thresholds, side="left")
        reachable = inds < nd
        precision[t, reachable] = pr[inds[reachable]]
    return precision, recall


def accumulate(evals: dict[tuple[int, int], list[VideoEval | None]], category_ids: list[int],
               params: Params) -> tuple[np.ndarray, np.ndarray]:
    """``evals[(category_id, area_index)]`` lists per video (sorted ids) -> (precision, recall)."""
    shape = (len(params.iou_thresholds), len(params.recall_thresholds), len(category_ids),
             len(params.area_ranges), len(params.max_dets))
    precision = -np.ones(shape)
    recall = -np.ones((shape[0], *shape[2:]))
    for k, cat in enumerate(category_ids):
        for a in range(len(params.area_ranges)):
            present = [e for e in evals.get((cat, a), []) if e is not None]
            if not present:
                continue
            for m, max_det in enumerate(params.max_dets):
                found = _precision_recall(present, max_det, params)
                if found is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = found
    return precision, recall


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return -1.0 if len(valid) == 0 else float(np.mean(valid))


def _summary_value(precision: np.ndarray, recall: np.ndarray, params: Params, *, ap: bool,
                   iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
    aind = [i for i, label in enumerate(params.area_labels) if label == area]
    mind = [i for i, m in enumerate(params.max_dets) if m == max_dets]
    values = precision if ap else recall
    if iou is not None:
        values = values[np.where(iou == params.iou_thresholds)[0]]
    values = values[:, :, :, aind, mind] if ap else values[:, :, aind, mind]
    return _mean_valid(values)


def summarize(precision: np.ndarray, recall: np.ndarray, params: Params) -> dict[str, float]:
    """The 12 official figures as fractions (-1 where undefined), keyed by ``SUMMARY_KEYS``."""
    big = params.max_dets[2]
    specs = [(True, None, "all", big), (True, 0.5, "all", big), (True, 0.75, "all", big),
             (True, None, "small", big), (True, None, "medium", big), (True, None, "large", big),
             (False, None, "all", params.max_dets[0]), (False, None, "all", params.max_dets[1]),
             (False, None, "all", big), (False, None, "small", big),
             (False, None, "medium", big), (False, None, "large", big)]
    return {key: _summary_value(precision, recall, params, ap=ap, iou=iou, area=area, max_dets=m)
            for key, (ap, iou, area, m) in zip(SUMMARY_KEYS, specs, strict=True)}
