"""Plain, slow reference of the official YouTube-VIS scorer, for cross-checking ``ytvis``.

It follows the official control flow step by step with Python loops and no shared code with the
fast path: per-pair, per-frame ``merge``/``area`` for the video IoU, dict-based greedy matching,
the element-by-element precision envelope. It has no validation: it scores what it is given the
way the official server would (``zip`` truncation, size-mismatched frames counting 0, results of
unknown categories dropped). Use it on small inputs only.
"""

from __future__ import annotations

import copy

import numpy as np
from pycocotools import mask as mask_utils

_T = np.linspace(0.5, 0.95, 10)
_R = np.linspace(0.0, 1.0, 101)
_MAX_DETS = [1, 10, 100]
_AREAS = [[0, 1e10], [0, 128**2], [128**2, 256**2], [256**2, 1e10]]


def _gt_rle(seg, h, w):
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, h, w)
    return seg


def _avg(values):
    kept = [a for a in values if a]
    return np.array(kept).mean() if kept else 0


def _prepare(gt: dict, results: list) -> tuple[list, list, list, list]:
    videos = {v["id"]: v for v in gt["videos"]}
    cats = sorted({c["id"] for c in gt["categories"]})
    gts = copy.deepcopy(gt["annotations"])
    for ann in gts:
        v = videos[ann["video_id"]]
        ann["segmentations"] = [_gt_rle(s, v["height"], v["width"]) if s else s
                                for s in ann["segmentations"]]
        ann["avg_area"] = _avg(ann["areas"])
        ann["ignore"] = bool(ann.get("iscrowd", 0))
    dts = copy.deepcopy(results)
    for i, ann in enumerate(dts):
        ann["id"] = i + 1
        ann["avg_area"] = _avg([mask_utils.area(s) if s else None for s in ann["segmentations"]])
        ann["iscrowd"] = 0
    dts = [d for d in dts if d["category_id"] in cats]
    return sorted(videos), cats, gts, dts


def _iou_seq(d_seq, g_seq) -> float:
    i = u = 0.0
    for d, g in zip(d_seq, g_seq, strict=False):
        if d and g:
            i += mask_utils.area(mask_utils.merge([d, g], intersect=True))
            u += mask_utils.area(mask_utils.merge([d, g], intersect=False))
        elif g:
            u += mask_utils.area(g)
        elif d:
            u += mask_utils.area(d)
    return i / u if u > 0 else 0.0


def _evaluate_video(gt, dt, rng, maxdet):
    if not gt and not dt:
        return None
    flags = [int(g["ignore"] or g["avg_area"] < rng[0] or g["avg_area"] > rng[1]) for g in gt]
    gt = [gt[i] for i in np.argsort(flags, kind="mergesort")]
    flags = sorted(flags)
    dt = [dt[i] for i in np.argsort([-d["score"] for d in dt], kind="mergesort")][:maxdet]
    ious = np.array([[_iou_seq(d["segmentations"], g["segmentations"]) for g in gt] for d in dt])
    dtm, dtig = np.zeros((10, len(dt))), np.zeros((10, len(dt)), dtype=bool)
    for t, thr in enumerate(_T):
        gtm = [0] * len(gt)
        for di in range(len(dt)):
            best, m = min(thr, 1 - 1e-10), -1
            for gi, g in enumerate(gt):
                if gtm[gi] > 0 and not g["iscrowd"]:
                    continue
                if m > -1 and flags[m] == 0 and flags[gi] == 1:
                    break
                if ious[di, gi] < best:
                    continue
                best, m = ious[di, gi], gi
            if m > -1:
                dtig[t, di] = flags[m]
                dtm[t, di] = gt[m]["id"]
                gtm[m] = dt[di]["id"]
    out = np.array([d["avg_area"] < rng[0] or d["avg_area"] > rng[1] for d in dt], dtype=bool)
    dtig = np.logical_or(dtig, np.logical_and(dtm == 0, np.repeat(out[None], 10, 0)))
    return {"scores": [d["score"] for d in dt], "dtm": dtm, "dtig": dtig, "gtig": np.array(flags)}


def _pr_curve(evals, maxdet):
    scores = np.concatenate([e["scores"][:maxdet] for e in evals])
    inds = np.argsort(-scores, kind="mergesort")
    dtm = np.concatenate([e["dtm"][:, :maxdet] for e in evals], axis=1)[:, inds]
    dtig = np.concatenate([e["dtig"][:, :maxdet] for e in evals], axis=1)[:, inds]
    npig = np.count_nonzero(np.concatenate([e["gtig"] for e in evals]) == 0)
    if npig == 0:
        return None
    tps = np.cumsum(np.logical_and(dtm, np.logical_not(dtig)), axis=1).astype(np.float64)
    fps = np.cumsum(np.logical_and(np.logical_not(dtm), np.logical_not(dtig)), axis=1)
    q_all, r_all = np.zeros((10, 101)), np.zeros(10)
    for t in range(10):
        tp, fp = tps[t], fps[t].astype(np.float64)
        rc, pr = tp / npig, (tp / (fp + tp + np.spacing(1))).tolist()
        r_all[t] = rc[-1] if len(tp) else 0
        for i in range(len(tp) - 1, 0, -1):
            pr[i - 1] = max(pr[i - 1], pr[i])
        for ri, pi in enumerate(np.searchsorted(rc, _R, side="left")):
            if pi >= len(pr):
                break
            q_all[t, ri] = pr[pi]
    return q_all, r_all


def reference_evaluate(gt: dict, results: list) -> dict[str, float]:
    """The 12 official figures (fractions, -1 where undefined), computed the slow way."""
    vids, cats, gts, dts = _prepare(gt, results)
    precision, recall = -np.ones((10, 101, len(cats), 4, 3)), -np.ones((10, len(cats), 4, 3))
    for k, c in enumerate(cats):
        for a, rng in enumerate(_AREAS):
            evals = [_evaluate_video(
                [g for g in gts if g["video_id"] == v and g["category_id"] == c],
                [d for d in dts if d["video_id"] == v and d["category_id"] == c], rng, 100)
                for v in vids]
            evals = [e for e in evals if e is not None]
            for m, maxdet in enumerate(_MAX_DETS):
                found = _pr_curve(evals, maxdet) if evals else None
                if found is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = found
    return _summarize(precision, recall)


def _summarize(precision, recall) -> dict[str, float]:
    def mean(s):
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    def ap(t=None, a=0):
        s = precision if t is None else precision[np.where(t == _T)[0]]
        return mean(s[:, :, :, [a], [2]])

    def ar(a=0, m=2):
        return mean(recall[:, :, [a], [m]])

    return {"AP": ap(), "AP50": ap(0.5), "AP75": ap(0.75), "APs": ap(a=1), "APm": ap(a=2),
            "APl": ap(a=3), "AR1": ar(m=0), "AR10": ar(m=1), "AR100": ar(), "ARs": ar(1),
            "ARm": ar(2), "ARl": ar(3)}
