"""Known answers of the tracking metrics (CLEAR, IDF1, re-identification) and their inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evaluation import rle
from evaluation.errors import TrackingInputError
from evaluation.track_eval import combine, tracking_report
from evaluation.tracking import (
    FrameSimilarity,
    clear_metrics,
    identity_metrics,
    reid_after_absence,
    similarities,
)
from evaluation.tracking_input import frames_from_ground_truth, frames_from_results, read_jsonl

H, W = 30, 40


def _box(x: int, y: int = 5, cut_row: bool = False) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y:y + 10, x:x + 10] = True
    if cut_row:
        mask[y, x:x + 10] = False  # IoU 0.9 with the full box
    return mask


def _sim(gt_ids, track_ids, iou) -> FrameSimilarity:
    return FrameSimilarity(np.array(gt_ids, dtype=np.int64), np.array(track_ids, dtype=np.int64),
                           np.array(iou, dtype=np.float64).reshape(len(gt_ids), len(track_ids)))


def test_trackeval_reference_case():
    """Spec 2.1: one GT, IoU 0.9 everywhere, track id switched at frame 8 of 12."""
    gt = [[(1, _box(2 + f))] for f in range(12)]
    pred = [[(1 if f < 8 else 2, _box(2 + f, cut_row=True))] for f in range(12)]
    report = tracking_report(gt, pred, H, W)
    assert report["MOTA"] == pytest.approx(11 / 12)
    assert report["IDSW"] == 1 and report["Frag"] == 0
    assert report["IDF1"] == pytest.approx(2 / 3)   # IDTP 8, IDFN 4, IDFP 4
    assert report["MOTP"] == pytest.approx(0.9)
    clear = clear_metrics(similarities(gt, pred, H, W))
    assert [(s.frame, s.previous, s.track_id) for s in clear.switches] == [(8, 1, 2)]


def test_continuation_bonus_prevents_a_swap():
    """At frame 1 the swapped pairing has the higher IoU; keeping the pairs wins (TrackEval)."""
    sims = [_sim([1, 2], [10, 20], [[0.9, 0.0], [0.0, 0.9]]),
            _sim([1, 2], [10, 20], [[0.6, 0.7], [0.7, 0.6]]),
            _sim([1, 2], [10, 20], [[0.9, 0.0], [0.0, 0.9]])]
    clear = clear_metrics(sims)
    assert clear.idsw == 0 and clear.tp == 6 and clear.matches[1] == {1: 10, 2: 20}


def test_switch_counted_against_last_match_however_long_ago():
    sims = [_sim([1], [10], [[0.8]]), _sim([1], [], []), _sim([1], [20], [[0.8]])]
    clear = clear_metrics(sims)
    assert clear.idsw == 1 and clear.frag == 1 and clear.fn == 1
    assert clear.mota == pytest.approx((2 - 0 - 1) / 3)


def test_missed_frames_fragment_but_gt_absence_does_not():
    missed = [_sim([1], [10], [[0.8]]) if f not in (3, 4) else _sim([1], [10], [[0.1]])
              for f in range(10)]
    clear = clear_metrics(missed)
    assert (clear.frag, clear.idsw, clear.fn, clear.fp) == (1, 0, 2, 2)
    absent = [_sim([1], [10], [[0.8]]) if f not in (3, 4) else _sim([], [10], np.zeros((0, 1)))
              for f in range(10)]
    clear = clear_metrics(absent)
    assert (clear.frag, clear.idsw, clear.fn, clear.fp) == (0, 0, 0, 2)


def test_mostly_partly_lost():
    sims = [_sim([1, 2, 3], [10], [[0.9], [0.0], [0.0]]) for _ in range(10)]
    sims[0] = _sim([1, 2, 3], [10, 20], [[0.9, 0.0], [0.0, 0.9], [0.0, 0.0]])
    sims[1] = _sim([1, 2, 3], [10, 20], [[0.9, 0.0], [0.0, 0.9], [0.0, 0.0]])
    clear = clear_metrics(sims)
    assert (clear.mostly_tracked, clear.partly_tracked, clear.mostly_lost) == (1, 1, 1)


def test_identity_assignment_is_global():
    """Track 10 covers GT 1 for 6 frames and GT 2 for 2: IDF1 picks 10->1 and 20->2.
    GT detections 14, track detections 10, IDTP 6 + 2."""
    sims = ([_sim([1, 2], [10, 20], [[0.9, 0.0], [0.0, 0.9]])] * 2
            + [_sim([1, 2], [10], [[0.9], [0.0]])] * 4
            + [_sim([2], [10], [[0.9]])] * 2)
    ident = identity_metrics(sims)
    assert ident.assignment == {1: 10, 2: 20}
    assert (ident.idtp, ident.idfn, ident.idfp) == (8, 6, 2)
    assert ident.idf1 == pytest.approx(8 / (8 + 3 + 1))


def test_reid_after_absence_by_gap():
    def video(return_id):
        sims = []
        for f in range(10):
            if 3 <= f <= 5:
                sims.append(_sim([], [], np.zeros((0, 0))))
            else:
                sims.append(_sim([1], [10 if f < 3 else return_id], [[0.9]]))
        return sims
    same, other = video(10), video(11)
    report = reid_after_absence(same, clear_metrics(same), gaps=(1, 3, 4))
    assert report[1] == {"count": 1.0, "rate": 1.0} and report[3]["rate"] == 1.0
    assert report[4]["count"] == 0 and math.isnan(report[4]["rate"])
    assert reid_after_absence(other, clear_metrics(other), gaps=(1,))[1]["rate"] == 0.0


def test_class_aware_matching():
    gt = [[(1, _box(5), 1)]]
    pred = [[(7, _box(5), 2)]]
    assert tracking_report(gt, pred, H, W)["TP"] == 1
    assert tracking_report(gt, pred, H, W, class_aware=True)["TP"] == 0


@pytest.mark.parametrize(("gt", "pred", "message"), [
    ([[(1, _box(5))]], [[(3, _box(5)), (3, _box(20))]], r"frame 0: track ids \[3, 3\] repeat"),
    ([[(1, _box(5))]], [[(3, np.zeros((5, 5), dtype=bool))]], r"mask shape \(5, 5\)"),
    ([[(1, _box(5))]], [[], []], "2 prediction frames for 1 GT frames"),
    ([[(1, _box(5))]], [[{"id": 3, "mask": _box(5)}]], "needs 'track_id' and 'segmentation'"),
    ([[(1, _box(5))]], [[(3, None)]], "empty mask entry"),
])
def test_input_errors(gt, pred, message):
    with pytest.raises(TrackingInputError, match=message):
        tracking_report(gt, pred, H, W)


def _gt_dict() -> dict:
    anns = []
    for ann_id, y in ((1, 2), (2, 16)):
        segs = [rle.encode_uncompressed(_box(2 + 2 * f, y)) for f in range(8)]
        anns.append({"id": ann_id, "video_id": 3, "category_id": 1, "segmentations": segs})
    return {"videos": [{"id": 3, "height": H, "width": W, "length": 8}], "annotations": anns}


def test_adapters_and_jsonl_round_trip(tmp_path):
    gt = _gt_dict()
    gt_frames, h, w = frames_from_ground_truth(gt, 3)
    results = [{"video_id": 3, "category_id": 1, "score": s,
                "segmentations": [rle.encode(rle.decode(seg, H, W)) for seg in a["segmentations"]]}
               for a, s in zip(gt["annotations"], (0.9, 0.2), strict=True)]
    kept = frames_from_results(results, 3, 8, score_threshold=0.5)
    report = tracking_report(gt_frames, kept, h, w)
    assert report["FN"] == 8 and report["IDF1"] == pytest.approx(2 / 3)
    path = tmp_path / "tracks.jsonl"
    lines = [{"frame": f, "tracks": [{"track_id": 5 + i, "segmentation": r["segmentations"][f]}
                                     for i, r in enumerate(results)]} for f in range(8)]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    report = tracking_report(gt_frames, read_jsonl(path, 8), h, w)
    assert report["MOTA"] == 1.0 and report["IDF1"] == 1.0 and report["IDSW"] == 0
    total = combine([report, report])
    assert total["TP"] == 32 and total["MOTA"] == 1.0 and total["videos"] == 2


def test_jsonl_bad_frame_index(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"frame": 9, "tracks": []}))
    with pytest.raises(TrackingInputError, match=r"bad.jsonl:1"):
        read_jsonl(path, 8)


def test_track_eval_cli(tmp_path, capsys):
    from evaluation.track_eval import main

    gt = _gt_dict()
    results = [{"video_id": 3, "category_id": 1, "score": 0.9,
                "segmentations": [rle.encode(rle.decode(seg, H, W)) for seg in a["segmentations"]]}
               for a in gt["annotations"]]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    out = tmp_path / "out.json"
    assert main(["--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"),
                 "--window", "4", "--stride", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["MOTA"] == 1.0 and figures["IDF1"] == 1.0 and figures["boundary_idsw"] == 0
    assert "MOTA=1.000" in capsys.readouterr().out
