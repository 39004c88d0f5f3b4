"""Known answers of the YouTube-VIS scorer (the official youtubevis cocoapi ``YTVOSeval`` rules), by hand.

AP at one IoU threshold is 1 when the best-ranked result matching the GT comes first (precision
1/(1+eps) at every recall point), so AP@[.5:.95] = share of the 10 thresholds that the video IoU
clears (IoU >= t).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from evaluation import rle
from evaluation.errors import LenientWarning, ResultsFormatError
from evaluation.ytvis import evaluate, evaluate_full

APPROX = {"abs": 1e-12}


def test_perfect_prediction_scores_one(box_gt, box_masks, pred):
    summary = evaluate(box_gt, [pred(box_masks)])
    for key in ("AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100"):
        assert summary[key] == pytest.approx(1.0, **APPROX), key
    assert summary["APm"] == -1 and summary["APl"] == -1  # no medium or large GT


def test_empty_rle_where_gt_is_null_is_harmless(box_gt, box_masks, pred):
    masks = list(box_masks)
    masks[3] = rle.encode(np.zeros((40, 60), dtype=bool))  # present but empty
    assert evaluate(box_gt, [pred(masks)])["AP"] == pytest.approx(1.0, **APPROX)


def test_extra_mask_in_gt_absent_frame_grows_the_union(box_gt, box_masks, pred):
    masks = list(box_masks)
    extra = np.zeros((40, 60), dtype=bool)
    extra[0:10, 0:10] = True
    masks[3] = extra
    full = evaluate_full(box_gt, [pred(masks)])
    assert full.ious[1, 1][0, 0] == pytest.approx(500 / 600, **APPROX)
    # 0.8333 clears 0.50 ... 0.80 (7 of 10 thresholds)
    assert full.summary["AP"] == pytest.approx(0.7, **APPROX)
    assert full.summary["AP75"] == pytest.approx(1.0, **APPROX)


def test_truncated_list_is_refused_strict_and_forgiven_lenient(box_gt, box_masks, pred):
    entry = pred(box_masks[:3])
    with pytest.raises(ResultsFormatError, match=r"results\[0\].*3 segmentations.*6 frames"):
        evaluate(box_gt, [entry])
    with pytest.warns(LenientWarning, match="wrong-length"):
        summary = evaluate(box_gt, [entry], lenient=True)
    assert summary["AP"] == pytest.approx(1.0, **APPROX)  # official zip truncation


def test_wrong_mask_size_is_refused_strict_and_zeroed_lenient(box_gt, box_masks, pred):
    masks = list(box_masks)
    masks[0] = rle.encode(np.kron(box_masks[0], np.ones((2, 2), dtype=bool)))  # 80x120
    entry = pred(masks)
    with pytest.raises(ResultsFormatError, match=r"frame 0: mask size \[80, 120\]"):
        evaluate(box_gt, [entry])
    with pytest.warns(LenientWarning, match="wrong mask size"):
        full = evaluate_full(box_gt, [entry], lenient=True)
    assert full.ious[1, 1][0, 0] == pytest.approx(1.0, **APPROX)  # frame 0 drops out of I and U


def test_wrong_class_hypothesis_costs_nothing(box_gt, box_masks, pred):
    results = [pred(box_masks), pred(box_masks, score=0.1, category=2)]
    assert evaluate(box_gt, results)["AP"] == pytest.approx(1.0, **APPROX)


def test_only_wrong_class_scores_zero(box_gt, box_masks, pred):
    summary = evaluate(box_gt, [pred(box_masks, category=2)])
    assert summary["AP"] == 0.0 and summary["AR10"] == 0.0


@pytest.mark.parametrize(("long_score", "short_score", "ap", "ap50"),
                         [(0.9, 0.5, 0.3, 1.0), (0.5, 0.9, 0.15, 0.5)])
def test_identity_switch_split(box_gt, box_masks, pred, long_score, short_score, ap, ap50):
    """Track split into frames 0-1 (IoU 200/500 = 0.4) and 2-5 (300/500 = 0.6)."""
    short = [m if f < 2 else None for f, m in enumerate(box_masks)]
    long = [m if f >= 2 else None for f, m in enumerate(box_masks)]
    summary = evaluate(box_gt, [pred(short, score=short_score), pred(long, score=long_score)])
    # long piece clears 0.50 and 0.55 (2 thresholds); when ranked second, precision 1/2
    assert summary["AP"] == pytest.approx(ap, **APPROX)
    assert summary["AP50"] == pytest.approx(ap50, **APPROX)
    assert summary["AP75"] == 0.0


def test_iou_exactly_at_threshold_matches(box_gt, box_masks, pred):
    """Frames 0-1 whole plus the left half of frame 2: I = 250, U = 500 -> IoU 0.5 exactly."""
    half = [m if f < 2 else None for f, m in enumerate(box_masks)]
    half[2] = box_masks[2].copy()
    half[2][:, 20:] = False  # the box spans columns 15..24 in frame 2
    full = evaluate_full(box_gt, [pred(half)])
    assert full.ious[1, 1][0, 0] == 0.5
    assert full.summary["AP50"] == pytest.approx(1.0, **APPROX)
    assert full.summary["AP"] == pytest.approx(0.1, **APPROX)


def test_empty_results(box_gt):
    with pytest.raises(ResultsFormatError, match="empty"):
        evaluate(box_gt, [])
    with pytest.warns(LenientWarning, match="empty results"):
        summary = evaluate(box_gt, [], lenient=True)
    assert summary["AP"] == 0.0 and summary["AR1"] == 0.0


def test_ties_keep_file_order(box_gt, box_masks, pred):
    """Equal scores: a false positive listed first halves the precision at recall 1."""
    wrong = [np.roll(m, 30, axis=1) if m.any() else None for m in box_masks]
    fp_first = evaluate(box_gt, [pred(wrong, score=0.5), pred(box_masks, score=0.5)])
    tp_first = evaluate(box_gt, [pred(box_masks, score=0.5), pred(wrong, score=0.5)])
    assert fp_first["AP"] == pytest.approx(0.5, **APPROX)
    assert tp_first["AP"] == pytest.approx(1.0, **APPROX)
    assert fp_first["AR1"] == 0.0 and tp_first["AR1"] == pytest.approx(1.0)


def test_crowd_gt_is_ignored_and_reusable(box_gt, box_masks, pred):
    gt = copy.deepcopy(box_gt)
    crowd = copy.deepcopy(gt["annotations"][0])
    crowd.update(id=2, iscrowd=1,
                 segmentations=[rle.encode_uncompressed(np.roll(m, 20, axis=0)) if m.any()
                                else None for m in box_masks])
    gt["annotations"].append(crowd)
    on_crowd = [np.roll(m, 20, axis=0) if m.any() else None for m in box_masks]
    # a missed crowd GT costs no recall; results on it are neither TP nor FP (even two of them)
    results = [pred(on_crowd, score=0.95), pred(on_crowd, score=0.94), pred(box_masks, score=0.5)]
    assert evaluate(gt, results)["AP"] == pytest.approx(1.0, **APPROX)
    crowd["iscrowd"] = 0
    assert evaluate(gt, [pred(box_masks)])["AR100"] == pytest.approx(0.5)


def test_area_ranges_use_the_gt_areas_field(box_gt, box_masks, pred):
    gt = copy.deepcopy(box_gt)
    gt["annotations"][0]["areas"] = [20000 if a else a for a in gt["annotations"][0]["areas"]]
    summary = evaluate(gt, [pred(box_masks)])
    assert summary["APm"] == pytest.approx(1.0, **APPROX)  # 20000 in [128^2, 256^2]
    assert summary["APs"] == -1 and summary["APl"] == -1


def test_max_dets_one_per_video_and_category(box_gt, box_masks, pred):
    wrong = [np.roll(m, 30, axis=1) if m.any() else None for m in box_masks]
    summary = evaluate(box_gt, [pred(wrong, score=0.9), pred(box_masks, score=0.8)])
    assert summary["AR1"] == 0.0  # only the top result counts at maxDets 1
    assert summary["AR10"] == pytest.approx(1.0)
    assert summary["AP"] == pytest.approx(0.5, **APPROX)
