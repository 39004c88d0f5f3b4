"""Validation of GT and results: named errors that say which entry, lenient warnings, CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from evaluation import rle
from evaluation.errors import GroundTruthFormatError, LenientWarning, ResultsFormatError
from evaluation.ytvis import evaluate, main


def test_unknown_video_is_refused_in_both_modes(box_gt, box_masks, pred):
    results = [pred(box_masks), pred(box_masks, video=7)]
    for lenient in (False, True):
        with pytest.raises(ResultsFormatError, match=r"results\[1\].*video_id 7"):
            evaluate(box_gt, results, lenient=lenient)


def test_unknown_category_strict_error_lenient_dropped(box_gt, box_masks, pred):
    results = [pred(box_masks), pred(box_masks, category=9, score=0.99)]
    with pytest.raises(ResultsFormatError, match=r"results\[1\].*category_id 9"):
        evaluate(box_gt, results)
    with pytest.warns(LenientWarning, match="unknown category"):
        assert evaluate(box_gt, results, lenient=True)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda e: e.pop("score"), r"results\[0\] has no 'score'"),
    (lambda e: e.update(score=float("nan")), "not a finite number"),
    (lambda e: e.update(segmentations="abc"), "must be a list"),
    (lambda e: e["segmentations"].__setitem__(0, [[1.0, 2.0, 5.0, 2.0, 5.0, 6.0]]),
     r"frame 0: expected compressed RLE"),
    (lambda e: e["segmentations"].__setitem__(
        1, rle.encode_uncompressed(np.ones((40, 60), dtype=bool))), "expected compressed RLE"),
])
def test_malformed_entries_are_named(box_gt, box_masks, pred, mutate, message):
    entry = pred(box_masks)
    mutate(entry)
    with pytest.raises(ResultsFormatError, match=message):
        evaluate(box_gt, [entry])


def test_results_must_be_a_list(box_gt, box_masks, pred):
    with pytest.raises(ResultsFormatError, match="JSON list"):
        evaluate(box_gt, pred(box_masks))


def test_lenient_warning_lists_every_entry(box_gt, box_masks, pred):
    results = [pred(box_masks[:2], score=0.1 * i) for i in range(1, 8)]
    with pytest.warns(LenientWarning, match=r"7 x wrong-length.*results\[0\].*\(\+2 more\)"):
        evaluate(box_gt, results, lenient=True)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda gt: gt["annotations"][0].pop("areas"), "has no 'areas'"),
    (lambda gt: gt["annotations"][0].update(video_id=5), "video_id 5 is not in 'videos'"),
    (lambda gt: gt["annotations"][0].update(category_id=8), "category_id 8"),
    (lambda gt: gt["annotations"].append(copy.deepcopy(gt["annotations"][0])), "duplicate id 1"),
    (lambda gt: gt["annotations"][0]["segmentations"].pop(), "5 segmentations for a 6-frame"),
    (lambda gt: gt["videos"][0].pop("height"), r"videos\[0\] lacks"),
    (lambda gt: gt.pop("categories"), "no 'categories'"),
])
def test_ground_truth_errors(box_gt, box_masks, pred, mutate, message):
    gt = copy.deepcopy(box_gt)
    mutate(gt)
    with pytest.raises(GroundTruthFormatError, match=message):
        evaluate(gt, [pred(box_masks)])


def test_ground_truth_polygons_and_compressed_rle_are_accepted(box_gt, box_masks, pred):
    gt = copy.deepcopy(box_gt)
    segs = gt["annotations"][0]["segmentations"]
    segs[0] = rle.encode(box_masks[0])                    # compressed, counts str
    segs[1] = [[10.0, 10.0, 19.0, 10.0, 19.0, 19.0, 10.0, 19.0]]  # polygon ~ the 10x10 box
    summary = evaluate(gt, [pred(box_masks)])
    assert 0.9 < summary["AP50"] <= 1.0


def test_cli_prints_and_writes_json(tmp_path, box_gt, box_masks, pred, capsys):
    gt_path, res_path, out = tmp_path / "gt.json", tmp_path / "res.json", tmp_path / "out.json"
    gt_path.write_text(json.dumps(box_gt))
    res_path.write_text(json.dumps([pred(box_masks)]))
    assert main(["--gt", str(gt_path), "--results", str(res_path), "--json", str(out)]) == 0
    assert "AP=100.0" in capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert set(figures) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"}
    assert figures["AP"] == pytest.approx(1.0) and figures["APl"] == -1


def test_cli_reports_errors_with_exit_code(tmp_path, box_gt, box_masks, pred, capsys):
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(box_gt))
    res_path.write_text(json.dumps([pred(box_masks[:2])]))
    assert main(["--gt", str(gt_path), "--results", str(res_path)]) == 2
    assert "results[0]" in capsys.readouterr().err
    with pytest.warns(LenientWarning):
        assert main(["--gt", str(gt_path), "--results", str(res_path), "--lenient"]) == 0


def test_scorer_imports_neither_torch_nor_matplotlib():
    code = ("import sys, evaluation.ytvis, evaluation.track_eval; "
            "bad = [m for m in ('torch', 'matplotlib', 'skimage') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli_warns_when_results_cover_fewer_videos_and_can_score_only_those(
        tmp_path, box_gt, box_masks, pred, capsys):
    """One clip's results against a two-video ground truth: AP over both (the second video's
    instance is a miss) with a warning, or AP over the clip with --only-result-videos."""
    gt = copy.deepcopy(box_gt)
    gt["videos"].append({**gt["videos"][0], "id": 2})
    gt["annotations"].append({**gt["annotations"][0], "id": 2, "video_id": 2})
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps([pred(box_masks)]))
    assert main(["--gt", str(gt_path), "--results", str(res_path)]) == 0
    captured = capsys.readouterr()
    assert "cover 1 of the 2 ground-truth videos" in captured.err
    # recall 0.5: 51 of the 101 recall points have precision 1 -> AP 0.505
    assert "--only-result-videos" in captured.err and "AP=50.5" in captured.out
    assert main(["--gt", str(gt_path), "--results", str(res_path), "--only-result-videos"]) == 0
    captured = capsys.readouterr()
    assert "AP=100.0" in captured.out and "warning" not in captured.err
    res_path.write_text(json.dumps([pred(box_masks), pred(box_masks, video=2)]))
    assert main(["--gt", str(gt_path), "--results", str(res_path)]) == 0
    assert "warning" not in capsys.readouterr().err
