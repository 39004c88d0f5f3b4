"""Input format of the tracking metrics: per-frame lists of identified masks.

One video = ``frames: list[list[entry]]``, ``frames[t]`` holding the instances shown at frame
``t``. An entry is one of

- ``(track_id, mask)`` or ``(track_id, mask, category_id)``;
- ``{"track_id": int, "segmentation": mask, "category_id": int (optional)}`` (the JSONL form).

``mask`` is an RLE dict (compressed, ``counts`` str/bytes, or uncompressed, ``counts`` list) or a
``bool[H, W]`` array. A track id may appear at most once per frame. JSONL files hold one frame
per line: ``{"frame": t, "tracks": [entry dicts]}``; frames without a line are empty.

Adapters build this form from YouTube-VIS ground truth and from deployment-mode YouTube-VIS
results (one class per track; each result entry is one track, id = its 1-based position).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import rle as rle_utils
from evaluation.errors import TrackingInputError


@dataclass(frozen=True)
class Instance:
    """One identified mask of one frame, normalised: ``rle`` is a pycocotools RLE (bytes)."""

    track_id: int
    rle: dict[str, Any]
    category_id: int | None = None


def _entry(entry: Any, t: int, height: int, width: int) -> Instance:
    if isinstance(entry, dict):
        if "track_id" not in entry or "segmentation" not in entry:
            raise TrackingInputError(f"frame {t}: entry {sorted(entry)} needs 'track_id' and "
                                     "'segmentation' (optional 'category_id')")
        track_id, mask = entry["track_id"], entry["segmentation"]
        category = entry.get("category_id")
    elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
        track_id, mask, category = entry[0], entry[1], (entry[2] if len(entry) == 3 else None)
    else:
        raise TrackingInputError(f"frame {t}: entry of type {type(entry).__name__} is neither "
                                 "(track_id, mask[, category_id]) nor a dict")
    if isinstance(mask, np.ndarray):
        if mask.shape != (height, width):
            raise TrackingInputError(f"frame {t}, track {track_id}: mask shape {mask.shape} != "
                                     f"frame size ({height}, {width})")
        mask = rle_utils.encode(mask)
    if not mask:
        raise TrackingInputError(f"frame {t}, track {track_id}: empty mask entry; leave the "
                                 "track out of the frame instead")
    rle = rle_utils.to_compressed(mask, height, width)
    if list(rle["size"]) != [height, width]:
        raise TrackingInputError(f"frame {t}, track {track_id}: mask size {list(rle['size'])} "
                                 f"!= frame size [{height}, {width}]")
    return Instance(int(track_id), rle, None if category is None else int(category))


def normalize_frames(frames: list[list[Any]], height: int, width: int) -> list[list[Instance]]:
    """Validate and normalise per-frame entries; raises :class:`TrackingInputError`."""
    out: list[list[Instance]] = []
    for t, frame in enumerate(frames):
        instances = [_entry(e, t, height, width) for e in frame]
        ids = [i.track_id for i in instances]
        if len(set(ids)) != len(ids):
            raise TrackingInputError(f"frame {t}: track ids {ids} repeat; one mask per track "
                                     "per frame")
        out.append(instances)
    return out


def frames_from_ground_truth(gt: dict, video_id: int) -> tuple[list[list[Any]], int, int]:
    """GT of one video as per-frame entries (track id = annotation id) plus (height, width)."""
    video = next((v for v in gt["videos"] if v["id"] == video_id), None)
    if video is None:
        raise TrackingInputError(f"video {video_id} is not in the ground truth")
    length = video.get("length", len(video.get("file_names", [])))
    frames: list[list[Any]] = [[] for _ in range(length)]
    for ann in gt["annotations"]:
        if ann["video_id"] == video_id:
            for t, seg in enumerate(ann["segmentations"][:length]):
                if seg:
                    frames[t].append((ann["id"], seg, ann["category_id"]))
    return frames, video["height"], video["width"]


def frames_from_results(results: list[dict], video_id: int, length: int, *,
                        score_threshold: float = 0.0) -> list[list[Any]]:
    """Deployment-mode YouTube-VIS results of one video as per-frame entries.

    Each entry with ``score >= score_threshold`` is one track whose id is its 1-based index in
    ``results`` (or its ``track_id`` field when present).
    """
    frames: list[list[Any]] = [[] for _ in range(length)]
    for i, entry in enumerate(results):
        if entry["video_id"] != video_id or entry["score"] < score_threshold:
            continue
        track_id = entry.get("track_id", i + 1)
        if len(entry["segmentations"]) != length:
            raise TrackingInputError(f"results[{i}]: {len(entry['segmentations'])} "
                                     f"segmentations for a {length}-frame video")
        for t, seg in enumerate(entry["segmentations"]):
            if seg:
                frames[t].append((track_id, seg, entry["category_id"]))
    return frames


def read_jsonl(path: str | Path, length: int) -> list[list[Any]]:
    """Per-frame entries from a JSONL file (see module doc) for a ``length``-frame video."""
    frames: list[list[Any]] = [[] for _ in range(length)]
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            t = record.get("frame")
            if not isinstance(t, int) or not 0 <= t < length or "tracks" not in record:
                raise TrackingInputError(f"{path}:{n}: need 'frame' in [0, {length}) and "
                                         "'tracks'")
            frames[t].extend(record["tracks"])
    return frames
