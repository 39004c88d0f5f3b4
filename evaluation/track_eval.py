"""All tracking metrics of one video in one call, and ``python -m evaluation.track_eval``.

Usage::

    python -m evaluation.track_eval --gt GT.json --results results.json [--score 0.3]
        [--window T --stride S] [--json OUT.json]
    python -m evaluation.track_eval --gt GT.json --jsonl tracks.jsonl --video-id 1 ...

``--results`` takes deployment-mode YouTube-VIS results (one class per track, each entry one
track) and scores every GT video; ``--jsonl`` takes per-frame tracks of one video (format in
:mod:`evaluation.tracking_input`). Counts are summed over videos; ratios are recomputed from
the sums (MOTA, IDF1) or averaged over videos where they are per-video rates.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from evaluation.chunks import boundary_switches
from evaluation.errors import EvaluationError
from evaluation.tracking import clear_metrics, identity_metrics, reid_after_absence, similarities
from evaluation.tracking_input import frames_from_ground_truth, frames_from_results, read_jsonl
from evaluation.ytvis_io import read_json


def tracking_report(gt_frames: list[list], pred_frames: list[list], height: int, width: int, *,
                    iou_threshold: float = 0.5, window: int | None = None,
                    stride: int | None = None, class_aware: bool = False,
                    gaps: tuple[int, ...] = (1,)) -> dict[str, float]:
    """CLEAR, identity and re-identification figures of one video (plus boundary vs within
    identity switches when ``window`` and ``stride`` are given)."""
    sims = similarities(gt_frames, pred_frames, height, width, class_aware=class_aware)
    clear = clear_metrics(sims, iou_threshold=iou_threshold)
    ident = identity_metrics(sims, iou_threshold=iou_threshold)
    report: dict[str, float] = {
        "MOTA": clear.mota, "MOTP": clear.motp, "IDSW": float(clear.idsw),
        "Frag": float(clear.frag), "TP": float(clear.tp), "FP": float(clear.fp),
        "FN": float(clear.fn), "MT": float(clear.mostly_tracked),
        "PT": float(clear.partly_tracked), "ML": float(clear.mostly_lost), "IDF1": ident.idf1,
        "IDP": ident.idp, "IDR": ident.idr, "IDTP": float(ident.idtp),
        "IDFP": float(ident.idfp), "IDFN": float(ident.idfn)}
    for gap, figures in reid_after_absence(sims, clear, gaps=gaps).items():
        report[f"reid_gap{gap}_count"] = figures["count"]
        report[f"reid_gap{gap}_rate"] = figures["rate"]
    if window is not None and stride is not None:
        report.update(boundary_switches(sims, clear, window=window, stride=stride))
    return report


def combine(reports: list[dict[str, float]]) -> dict[str, float]:
    """Sum counts over videos and recompute MOTA/IDF1/IDP/IDR from the sums."""
    keys = ("TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN",
            "boundary_idsw", "within_idsw", "crossings", "gt_frames")
    total = {k: sum(r[k] for r in reports) for k in keys if all(k in r for r in reports)}
    total["MOTA"] = (total["TP"] - total["FP"] - total["IDSW"]) / max(1.0, total["TP"] +
                                                                    total["FN"])
    tp, fp, fn = total["IDTP"], total["IDFP"], total["IDFN"]
    total["IDF1"] = tp / max(1.0, tp + 0.5 * fp + 0.5 * fn)
    total["IDP"], total["IDR"] = tp / max(1.0, tp + fp), tp / max(1.0, tp + fn)
    total["videos"] = float(len(reports))
    return total


def _video_reports(args: argparse.Namespace, gt: dict) -> list[dict[str, float]]:
    chunking: dict[str, Any] = {"window": args.window, "stride": args.stride}
    if args.jsonl:
        gt_frames, h, w = frames_from_ground_truth(gt, args.video_id)
        preds = read_jsonl(args.jsonl, len(gt_frames))
        return [tracking_report(gt_frames, preds, h, w, **chunking)]
    results = read_json(args.results)
    reports = []
    for video in gt["videos"]:
        gt_frames, h, w = frames_from_ground_truth(gt, video["id"])
        preds = frames_from_results(results, video["id"], len(gt_frames),
                                    score_threshold=args.score)
        reports.append(tracking_report(gt_frames, preds, h, w, **chunking))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.track_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="YouTube-VIS ground-truth JSON")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", help="deployment-mode YouTube-VIS results JSON")
    source.add_argument("--jsonl", help="per-frame tracks of one video (needs --video-id)")
    parser.add_argument("--video-id", type=int, help="GT video of --jsonl")
    parser.add_argument("--score", type=float, default=0.0, help="score threshold for --results")
    parser.add_argument("--window", type=int, help="chunk length T (boundary metrics)")
    parser.add_argument("--stride", type=int, help="chunk stride S (boundary metrics)")
    parser.add_argument("--json", dest="json_out", help="write the combined figures here")
    args = parser.parse_args(argv)
    if args.jsonl and args.video_id is None:
        parser.error("--jsonl needs --video-id")
    try:
        total = combine(_video_reports(args, read_json(args.gt)))
    except (EvaluationError, OSError, json.JSONDecodeError) as err:
        print(f"[track_eval] error: {err}", file=sys.stderr)
        return 2
    print("  ".join(f"{k}={v:.3f}" if k in ("MOTA", "IDF1", "IDP", "IDR") else f"{k}={v:g}"
                    for k, v in total.items()))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(total, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
