"""YouTube-VIS evaluation with the official arithmetic (``python -m evaluation.ytvis``).

Usage::

    python -m evaluation.ytvis --gt GT.json --results results.json [--json OUT.json] [--lenient]
        [--only-result-videos]

Results that cover only some of the ground-truth videos are scored against all of them (the
others count as misses) with a warning; ``--only-result-videos`` scores just the covered ones.

Python API: :func:`evaluate` returns ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
"AR100", "ARs", "ARm", "ARl"}`` as fractions in [0, 1] (-1 where a figure is undefined, e.g. APl
with no large GT). Only numpy and pycocotools are used; numpy 2 safe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.errors import EvaluationError
from evaluation.ytvis_accumulate import accumulate, summarize
from evaluation.ytvis_io import EvalInput, load_ground_truth, load_results
from evaluation.ytvis_iou import compute_ious
from evaluation.ytvis_match import VideoEval, evaluate_video
from evaluation.ytvis_params import Params

HEADLINE_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10")


@dataclass
class Evaluation:
    """Full output: ``summary`` figures, ``precision [T, R, K, A, M]``, ``recall [T, K, A, M]``,
    and the video IoU matrices per (video, category) (rows: results by score, columns: GT)."""

    summary: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    ious: dict[tuple[int, int], np.ndarray]
    category_ids: list[int]


def match_all(data: EvalInput, params: Params) -> tuple[dict, dict]:
    dts, ious = compute_ious(data, max_det=params.max_dets[-1])
    evals: dict[tuple[int, int], list[VideoEval | None]] = {}
    for cat in data.category_ids:
        for a, area_range in enumerate(params.area_ranges):
            evals[cat, a] = [
                evaluate_video(dts.get((vid, cat), []), data.gts.get((vid, cat), []),
                               ious.get((vid, cat), np.zeros((0, 0))), area_range,
                               params.iou_thresholds)
                for vid in data.video_ids]
    return evals, ious


def evaluate_full(gt: Any, results: Any, *, lenient: bool = False) -> Evaluation:
    """Score ``results`` (list or path) against ``gt`` (dict or path); see :func:`evaluate`."""
    params = Params()
    _, data = load_ground_truth(gt, lenient=lenient)
    data = load_results(results, data, lenient=lenient)
    evals, ious = match_all(data, params)
    precision, recall = accumulate(evals, data.category_ids, params)
    return Evaluation(summary=summarize(precision, recall, params), precision=precision,
                      recall=recall, ious=ious, category_ids=data.category_ids)


def evaluate(gt: Any, results: Any, *, lenient: bool = False) -> dict[str, float]:
    """Official YouTube-VIS figures of ``results`` against ``gt``, as fractions.

    ``gt``: GT dict or path. ``results``: list of result entries or path. Strict by default:
    raises :class:`evaluation.errors.ResultsFormatError` naming the first faulty entry.
    ``lenient=True`` scores like the official server and warns (``LenientWarning``).
    """
    return evaluate_full(gt, results, lenient=lenient).summary


def format_summary(summary: dict[str, float]) -> str:
    """Leaderboard-style lines: figures x100 with one decimal, '-' where undefined."""
    cells = [f"{k}={'-' if summary[k] < 0 else f'{100 * summary[k]:.1f}'}" for k in HEADLINE_KEYS]
    return "  ".join(cells)


def _read_json(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    with open(value, encoding="utf-8") as handle:
        return json.load(handle)


def restrict_to_result_videos(gt: dict, results: list) -> dict:
    """``gt`` with only the videos (and their annotations) that ``results`` has entries for."""
    keep = {entry.get("video_id") for entry in results if isinstance(entry, dict)}
    return {**gt, "videos": [v for v in gt.get("videos", []) if v.get("id") in keep],
            "annotations": [a for a in gt.get("annotations", []) if a.get("video_id") in keep]}


def coverage_warning(gt: dict, results: list) -> str | None:
    """A warning when ``results`` cover fewer videos than ``gt`` (the others score as misses)."""
    gt_ids = {v.get("id") for v in gt.get("videos", [])}
    covered = gt_ids & {e.get("video_id") for e in results if isinstance(e, dict)}
    if not gt_ids or len(covered) == len(gt_ids):
        return None
    return (f"the results cover {len(covered)} of the {len(gt_ids)} ground-truth videos: the "
            f"remaining {len(gt_ids) - len(covered)} count as missed instances, so AP is over all "
            f"{len(gt_ids)}; pass --only-result-videos to score only the {len(covered)} "
            f"video{'s' if len(covered) != 1 else ''} in the results")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.ytvis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="YouTube-VIS ground-truth JSON")
    parser.add_argument("--results", required=True, help="results JSON (list of tracks)")
    parser.add_argument("--json", dest="json_out", help="write the figures (fractions) here")
    parser.add_argument("--lenient", action="store_true",
                        help="score faulty entries as the official server does, with a warning")
    parser.add_argument("--only-result-videos", action="store_true",
                        help="score only the ground-truth videos the results have entries for "
                             "(e.g. one clip of a dataset); by default every GT video counts")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        gt, results = _read_json(args.gt), _read_json(args.results)
        if isinstance(gt, dict) and isinstance(results, list):
            if args.only_result_videos:
                gt = restrict_to_result_videos(gt, results)
                print(f"[ytvis] scoring the {len(gt['videos'])} video(s) in the results",
                      file=sys.stderr)
            elif (warning := coverage_warning(gt, results)) is not None:
                print(f"[ytvis] warning: {warning}", file=sys.stderr)
        summary = evaluate(gt, results, lenient=args.lenient)
    except (EvaluationError, OSError, json.JSONDecodeError) as err:
        print(f"[ytvis] error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"[ytvis] evaluated in {time.perf_counter() - start:.1f} s")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump({k: summary[k] for k in HEADLINE_KEYS}, handle, indent=2)
        print(f"[ytvis] wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
