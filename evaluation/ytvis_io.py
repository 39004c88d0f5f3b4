"""Load and validate YouTube-VIS ground truth and results for scoring.

Ground truth: the dict of the official JSON (``videos``, ``annotations``, ``categories``).
Results: a list of ``{"video_id", "category_id", "score", "segmentations"}`` entries, one per
predicted track, ``segmentations`` = one compressed RLE (``counts`` str or bytes) or ``None`` per
frame. Strict mode refuses what the official server silently forgives; lenient mode scores it the
official way (wrong-length lists truncated by ``zip``, wrong-size masks counting 0 in a frame where
both are present, unknown categories dropped) and warns once with the entries concerned.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from evaluation import rle as rle_utils
from evaluation.errors import GroundTruthFormatError, LenientWarning, ResultsFormatError

_MAX_LISTED = 5  # entries named per warning line


@dataclass(frozen=True)
class VideoInfo:
    """One ground-truth video: id, frame size and number of frames."""

    id: int
    height: int
    width: int
    length: int


@dataclass
class Track:
    """One GT annotation or one result entry, ready for scoring.

    ``rles[f]`` is a pycocotools RLE dict or ``None`` (absent) for frame ``f``; ``mask_areas``
    is ``int64[len(rles)]`` (0 where absent). ``avg_area`` follows the official rule.
    """

    id: int
    video_id: int
    category_id: int
    score: float
    iscrowd: bool
    avg_area: float
    rles: list[Any]
    mask_areas: np.ndarray


@dataclass
class EvalInput:
    """Everything the scorer needs. Tracks are grouped per (video_id, category_id) in file order."""

    videos: dict[int, VideoInfo]
    video_ids: list[int]
    category_ids: list[int]
    gts: dict[tuple[int, int], list[Track]]
    dts: dict[tuple[int, int], list[Track]]


def read_json(source: Any) -> Any:
    """Return ``source`` itself, or the parsed JSON when ``source`` is a path."""
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8") as handle:
            return json.load(handle)
    return source


def _official_avg_area(values: list[Any]) -> float:
    """Mean of the truthy per-frame areas (official ``avg_area``), 0 when there are none."""
    kept = [a for a in values if a]
    return float(np.array(kept).mean()) if kept else 0.0


def present_areas(rles: list[Any]) -> np.ndarray:
    """``int64[F]`` mask areas of the present frames, 0 elsewhere."""
    areas = np.zeros(len(rles), dtype=np.int64)
    index = [f for f, r in enumerate(rles) if r]
    if index:
        areas[index] = mask_utils.area([rles[f] for f in index]).astype(np.int64)
    return areas


def _load_videos(gt: dict) -> dict[int, VideoInfo]:
    videos: dict[int, VideoInfo] = {}
    for i, video in enumerate(gt.get("videos") or []):
        try:
            length = video["length"] if "length" in video else len(video["file_names"])
            info = VideoInfo(int(video["id"]), int(video["height"]), int(video["width"]),
                             int(length))
        except (KeyError, TypeError, ValueError) as err:
            raise GroundTruthFormatError(
                f"ground truth videos[{i}] lacks a valid id/height/width/length ({err!r}); "
                "each video needs them (length may come from file_names)") from err
        if info.id in videos:
            raise GroundTruthFormatError(f"ground truth videos[{i}]: duplicate video id {info.id}")
        videos[info.id] = info
    if not videos:
        raise GroundTruthFormatError("ground truth has no 'videos'; is this a YouTube-VIS file?")
    return videos


def _gt_track(i: int, ann: dict, videos: dict[int, VideoInfo], cats: set[int],
              lenient: bool) -> Track:
    where = f"ground truth annotations[{i}] (id {ann.get('id')!r})"
    for key in ("id", "video_id", "category_id", "segmentations", "areas"):
        if key not in ann:
            raise GroundTruthFormatError(f"{where} has no '{key}'; add it (see YouTube-VIS format)")
    if isinstance(ann["id"], bool) or not isinstance(ann["id"], int):
        raise GroundTruthFormatError(f"{where}: annotation ids must be integers")
    video = videos.get(ann["video_id"])
    if video is None:
        raise GroundTruthFormatError(f"{where}: video_id {ann['video_id']} is not in 'videos'")
    if ann["category_id"] not in cats:
        raise GroundTruthFormatError(
            f"{where}: category_id {ann['category_id']} not in 'categories'")
    segs = ann["segmentations"]
    if len(segs) != video.length and not lenient:
        raise GroundTruthFormatError(
            f"{where}: {len(segs)} segmentations for a {video.length}-frame video")
    rles = [rle_utils.to_compressed(s, video.height, video.width) if s else None for s in segs]
    for f, r in enumerate(rles):
        if r is not None and list(r["size"]) != [video.height, video.width] and not lenient:
            raise GroundTruthFormatError(
                f"{where}, frame {f}: mask size {list(r['size'])} != video size "
                f"[{video.height}, {video.width}]")
    return Track(id=ann["id"], video_id=video.id, category_id=ann["category_id"], score=0.0,
                 iscrowd=bool(ann.get("iscrowd", 0)), avg_area=_official_avg_area(ann["areas"]),
                 rles=rles, mask_areas=present_areas(rles))


def load_ground_truth(gt: Any, *, lenient: bool = False) -> tuple[dict, EvalInput]:
    """Parse GT (dict or path) -> (raw dict, :class:`EvalInput` with GT tracks and no results)."""
    gt = read_json(gt)
    if not isinstance(gt, dict):
        raise GroundTruthFormatError(f"ground truth must be a JSON object, got {type(gt).__name__}")
    videos = _load_videos(gt)
    category_ids = sorted({int(c["id"]) for c in gt.get("categories") or []})
    if not category_ids:
        raise GroundTruthFormatError("ground truth has no 'categories'")
    gts: dict[tuple[int, int], list[Track]] = defaultdict(list)
    seen: set[Any] = set()
    for i, ann in enumerate(gt.get("annotations") or []):
        track = _gt_track(i, ann, videos, set(category_ids), lenient)
        if track.id in seen:
            raise GroundTruthFormatError(f"ground truth annotations[{i}]: duplicate id {track.id}")
        seen.add(track.id)
        gts[track.video_id, track.category_id].append(track)
    data = EvalInput(videos=videos, video_ids=sorted(videos), category_ids=category_ids,
                     gts=dict(gts), dts={})
    return gt, data


class _Issues:
    """Collects forgiven problems (lenient) or raises at the first one (strict)."""

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.found: dict[str, list[str]] = defaultdict(list)

    def report(self, kind: str, message: str) -> None:
        if not self.lenient:
            raise ResultsFormatError(
                f"{message}. Fix the exporter, or pass lenient=True (--lenient) to score it the "
                "way the official server does")
        self.found[kind].append(message)

    def warn(self) -> None:
        for kind, messages in self.found.items():
            listed = "; ".join(messages[:_MAX_LISTED])
            more = f" (+{len(messages) - _MAX_LISTED} more)" if len(messages) > _MAX_LISTED else ""
            warnings.warn(f"lenient scoring, {len(messages)} x {kind}: {listed}{more}",
                          LenientWarning, stacklevel=3)


def _check_frames(where: str, segs: list, video: VideoInfo, issues: _Issues) -> list[Any]:
    """Validate one entry's frame list; returns it with absent frames as ``None``."""
    if len(segs) != video.length:
        issues.report("wrong-length segmentations",
                      f"{where}: {len(segs)} segmentations for video {video.id} of "
                      f"{video.length} frames")
    size = [video.height, video.width]
    out: list[Any] = []
    for f, seg in enumerate(segs):
        if seg is None or (issues.lenient and not seg):
            out.append(None)
            continue
        if not (isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes))
                and "size" in seg):
            raise ResultsFormatError(
                f"{where}, frame {f}: expected compressed RLE {{'size': [h, w], 'counts': str}} "
                f"or null, got {type(seg).__name__}; encode masks with pycocotools.mask.encode "
                "(Fortran order) and decode counts to str")
        if list(seg["size"]) != size:
            issues.report("wrong mask size",
                          f"{where}, frame {f}: mask size {list(seg['size'])} != video size {size}")
        out.append(seg)
    return out


def _result_track(i: int, entry: Any, data: EvalInput, issues: _Issues) -> Track | None:
    where = f"results[{i}]"
    if not isinstance(entry, dict):
        raise ResultsFormatError(f"{where} is a {type(entry).__name__}, expected an object")
    for key in ("video_id", "category_id", "score", "segmentations"):
        if key not in entry:
            raise ResultsFormatError(f"{where} has no '{key}'; each entry needs video_id, "
                                     "category_id, score and segmentations")
    where = f"results[{i}] (video {entry['video_id']}, category {entry['category_id']})"
    video = data.videos.get(entry["video_id"])
    if video is None:
        raise ResultsFormatError(f"{where}: video_id {entry['video_id']} is not in the ground "
                                 f"truth (known ids {data.video_ids[0]}..{data.video_ids[-1]})")
    score = entry["score"]
    if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(score):
        raise ResultsFormatError(f"{where}: score {score!r} is not a finite number")
    if not isinstance(entry["segmentations"], list):
        raise ResultsFormatError(f"{where}: segmentations must be a list with one entry per frame")
    rles = _check_frames(where, entry["segmentations"], video, issues)
    if entry["category_id"] not in data.category_ids:
        issues.report("unknown category", f"{where}: category_id {entry['category_id']} is not "
                      f"among the GT categories {data.category_ids}")
        return None
    areas = present_areas(rles)
    nonzero = areas[areas > 0]
    return Track(id=i + 1, video_id=video.id, category_id=entry["category_id"],
                 score=float(score), iscrowd=False,
                 avg_area=float(nonzero.mean()) if nonzero.size else 0.0, rles=rles,
                 mask_areas=areas)


def load_results(results: Any, data: EvalInput, *, lenient: bool = False) -> EvalInput:
    """Validate results (list or path) against ``data``'s GT and group them per (video, category).

    Raises :class:`ResultsFormatError` naming the first faulty entry (strict), or warns with
    :class:`LenientWarning` listing every forgiven entry (lenient). Ids are 1..N in file order.
    """
    results = read_json(results)
    if not isinstance(results, list):
        raise ResultsFormatError(f"results must be a JSON list of tracks, got "
                                 f"{type(results).__name__}")
    issues = _Issues(lenient)
    if not results:
        issues.report("empty results", "the results list is empty (the official loader crashes "
                      "on it; lenient mode scores it as no detections)")
    dts: dict[tuple[int, int], list[Track]] = defaultdict(list)
    for i, entry in enumerate(results):
        track = _result_track(i, entry, data, issues)
        if track is not None:
            dts[track.video_id, track.category_id].append(track)
    issues.warn()
    return EvalInput(videos=data.videos, video_ids=data.video_ids, category_ids=data.category_ids,
                     gts=data.gts, dts=dict(dts))
