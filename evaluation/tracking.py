"""Tracking metrics on deployment-mode outputs: CLEAR (MOTA, IDSW, Frag), IDF1, re-identification.

Input: GT and predictions as per-frame entries (see :mod:`evaluation.tracking_input`). The
per-frame similarity is mask IoU; a GT and a prediction may match when IoU >= ``iou_threshold``.

CLEAR follows TrackEval's ``CLEAR`` class: per frame, a Hungarian match where keeping last
frame's pairing earns a +1000 bonus; an identity switch (IDSW) is counted when a GT is matched to
a different track id than the last time it was matched, however long ago. One deliberate
difference: fragmentations (Frag) count how often tracking of a GT resumes after an
interruption *while the GT is visible*: frames where the GT itself is absent are skipped
(TrackEval counts such an absence as an interruption whenever other objects are in the frame,
and skips frames with no prediction at all). IDF1 is the global one-to-one GT/track
assignment maximising the frames matched at the threshold (TrackEval ``Identity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from evaluation.errors import TrackingInputError
from evaluation.tracking_input import Instance, normalize_frames

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Switch:
    """An identity switch: at ``frame``, GT ``gt_id`` moved from ``previous`` to ``track_id``."""

    frame: int
    gt_id: int
    previous: int
    track_id: int


@dataclass
class FrameSimilarity:
    """Frame ``t``: ids present (``gt_ids [G]``, ``track_ids [P]``) and ``iou float64[G, P]``."""

    gt_ids: np.ndarray
    track_ids: np.ndarray
    iou: np.ndarray


@dataclass
class ClearResult:
    """CLEAR figures plus the per-frame matches ``matches[t] = {gt_id: track_id}`` and the
    list of identity switches (with their frames)."""

    mota: float
    motp: float
    idsw: int
    frag: int
    tp: int
    fp: int
    fn: int
    mostly_tracked: int
    partly_tracked: int
    mostly_lost: int
    switches: list[Switch] = field(default_factory=list)
    matches: list[dict[int, int]] = field(default_factory=list)


@dataclass
class IdentityResult:
    """IDF1, IDP, IDR and their counts; ``assignment`` maps GT id -> track id."""

    idf1: float
    idp: float
    idr: float
    idtp: int
    idfp: int
    idfn: int
    assignment: dict[int, int] = field(default_factory=dict)


def _frame_similarity(gts: list[Instance], preds: list[Instance],
                      class_aware: bool) -> FrameSimilarity:
    iou = np.zeros((len(gts), len(preds)))
    if gts and preds:
        iou = np.asarray(mask_utils.iou([p.rle for p in preds], [g.rle for g in gts],
                                        [0] * len(gts)), dtype=np.float64).reshape(
            len(preds), len(gts)).T
        if class_aware:
            differ = np.array([[g.category_id is not None and p.category_id is not None
                                and g.category_id != p.category_id for p in preds] for g in gts])
            iou[differ] = 0.0
    return FrameSimilarity(np.array([g.track_id for g in gts], dtype=np.int64),
                           np.array([p.track_id for p in preds], dtype=np.int64), iou)


def similarities(gt_frames: list[list], pred_frames: list[list], height: int, width: int, *,
                 class_aware: bool = False) -> list[FrameSimilarity]:
    """Per-frame mask IoU between GT and predictions (``class_aware`` zeroes class mismatches)."""
    if len(gt_frames) != len(pred_frames):
        raise TrackingInputError(f"{len(pred_frames)} prediction frames for {len(gt_frames)} GT "
                                 "frames; give one (possibly empty) list per frame")
    gts = normalize_frames(gt_frames, height, width)
    preds = normalize_frames(pred_frames, height, width)
    return [_frame_similarity(g, p, class_aware) for g, p in zip(gts, preds, strict=True)]


def _match_frame(sim: FrameSimilarity, last_pair: dict[int, int], threshold: float
                 ) -> list[tuple[int, int, float]]:
    """Hungarian match of one frame with the continuation bonus; (gt_id, track_id, iou)."""
    if len(sim.gt_ids) == 0 or len(sim.track_ids) == 0:
        return []
    keep = np.array([[last_pair.get(int(g)) == int(p) for p in sim.track_ids]
                     for g in sim.gt_ids], dtype=np.float64)
    score = 1000.0 * keep + sim.iou
    score[sim.iou < threshold - _EPS] = 0.0
    rows, cols = linear_sum_assignment(-score)
    return [(int(sim.gt_ids[r]), int(sim.track_ids[c]), float(sim.iou[r, c]))
            for r, c in zip(rows, cols, strict=True) if score[r, c] > _EPS]


def clear_metrics(sims: list[FrameSimilarity], *, iou_threshold: float = 0.5) -> ClearResult:
    """CLEAR MOT figures from per-frame similarities (see module doc for the rules)."""
    last_pair: dict[int, int] = {}   # gt -> track of the previous frame
    last_ever: dict[int, int] = {}   # gt -> track of its last match, however long ago
    present: dict[int, int] = {}
    matched: dict[int, int] = {}
    starts: dict[int, int] = {}
    tracked: dict[int, bool] = {}    # gt -> matched at its previous visible frame
    res = ClearResult(0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0)
    iou_sum = 0.0
    for t, sim in enumerate(sims):
        pairs = _match_frame(sim, last_pair, iou_threshold)
        now = {g for g, _, _ in pairs}
        for g in sim.gt_ids.tolist():
            present[g] = present.get(g, 0) + 1
            if g in now and not tracked.get(g, False):
                starts[g] = starts.get(g, 0) + 1
            tracked[g] = g in now
        for g, p, iou in pairs:
            if g in last_ever and last_ever[g] != p:
                res.switches.append(Switch(t, g, last_ever[g], p))
            last_ever[g] = p
            matched[g] = matched.get(g, 0) + 1
            iou_sum += iou
        last_pair = {g: p for g, p, _ in pairs}
        res.matches.append(dict(last_pair))
        res.tp += len(pairs)
        res.fn += len(sim.gt_ids) - len(pairs)
        res.fp += len(sim.track_ids) - len(pairs)
    res.idsw = len(res.switches)
    res.frag = sum(max(0, n - 1) for n in starts.values())
    ratios = [matched.get(g, 0) / n for g, n in present.items()]
    res.mostly_tracked = sum(r > 0.8 for r in ratios)
    res.partly_tracked = sum(r >= 0.2 for r in ratios) - res.mostly_tracked
    res.mostly_lost = len(ratios) - res.mostly_tracked - res.partly_tracked
    res.mota = (res.tp - res.fp - res.idsw) / max(1.0, res.tp + res.fn)
    res.motp = iou_sum / max(1.0, res.tp)
    return res


def identity_metrics(sims: list[FrameSimilarity], *, iou_threshold: float = 0.5
                     ) -> IdentityResult:
    """IDF1 / IDP / IDR: best global one-to-one GT/track assignment."""
    gt_ids = sorted({int(g) for s in sims for g in s.gt_ids})
    track_ids = sorted({int(p) for s in sims for p in s.track_ids})
    gi, pi = {g: i for i, g in enumerate(gt_ids)}, {p: i for i, p in enumerate(track_ids)}
    together = np.zeros((len(gt_ids), len(track_ids)), dtype=np.int64)
    for s in sims:
        if s.iou.size:
            hit = s.iou >= iou_threshold - _EPS
            rows = [gi[int(g)] for g in s.gt_ids]
            cols = [pi[int(p)] for p in s.track_ids]
            together[np.ix_(rows, cols)] += hit
    rows, cols = linear_sum_assignment(-together) if together.size else ([], [])
    idtp = int(sum(together[r, c] for r, c in zip(rows, cols, strict=True)))
    num_gt = sum(len(s.gt_ids) for s in sims)
    num_pred = sum(len(s.track_ids) for s in sims)
    idfn, idfp = num_gt - idtp, num_pred - idtp
    assignment = {gt_ids[r]: track_ids[c] for r, c in zip(rows, cols, strict=True)
                  if together[r, c] > 0}
    return IdentityResult(idf1=idtp / max(1.0, idtp + 0.5 * idfn + 0.5 * idfp),
                          idp=idtp / max(1.0, idtp + idfp), idr=idtp / max(1.0, idtp + idfn),
                          idtp=idtp, idfp=idfp, idfn=idfn, assignment=assignment)


def reid_after_absence(sims: list[FrameSimilarity], clear: ClearResult, *,
                       gaps: tuple[int, ...] = (1,)) -> dict[int, dict[str, float]]:
    """Re-identification after the GT itself was absent for a while.

    For every GT absence of ``n`` frames between two visible stretches, where the GT was matched
    at least once before the absence: success when its first match after the absence uses the
    track id of its last match before (no match after counts as a failure). Returns, per
    ``g`` in ``gaps``, ``{"count": absences with n >= g, "rate": successes / count}`` (rate NaN
    when count is 0).
    """
    seen = [set(s.gt_ids.tolist()) for s in sims]
    outcomes: list[tuple[int, bool]] = []
    for g in sorted(set().union(*seen)) if seen else []:
        frames = [t for t, ids in enumerate(seen) if g in ids]
        for a, b in zip(frames, frames[1:], strict=False):
            if b - a < 2:
                continue
            before = [clear.matches[t][g] for t in range(a + 1) if g in clear.matches[t]]
            if not before:
                continue
            after = [clear.matches[t][g] for t in range(b, len(sims)) if g in clear.matches[t]]
            outcomes.append((b - a - 1, bool(after) and after[0] == before[-1]))
    report = {}
    for gap in gaps:
        hits = [ok for n, ok in outcomes if n >= gap]
        report[gap] = {"count": float(len(hits)),
                       "rate": float(np.mean(hits)) if hits else float("nan")}
    return report
