"""Chunk (window) geometry and the chunk-joint metrics of the streaming post-tracker.

Chunk ``k`` covers frames ``[k*S, k*S + T)`` (clipped to the video); chunks are added while the
previous one ends before the last frame. Boundary ``k >= 1`` is decided on the overlap frames
``[k*S, (k-1)*S + T)``; its *boundary window* is the overlap plus the first new frame
``(k-1)*S + T``. Metrics (docs/runtime.md, "Windows, letterbox and overlap frames"):

- boundary vs within-chunk identity switches (from the CLEAR switch frames);
- link recall / precision: at each boundary, GT instances matched (video IoU on the overlap
  frames >= threshold, one-to-one) by a chunk-local track on both sides form *GT pairs*; recall =
  pairs the linker joined (same global id). Joins whose both sides match a GT are judged:
  precision = joins whose GTs agree; false merges = the others; missed links = unjoined pairs;
- linker efficiency in AP terms: (AP_linker - AP_none) / (AP_oracle - AP_none).

Chunk tracks are given as :class:`Chunk` lists; :func:`chunk_ground_truth` builds the "chunked
oracle" (GT tracks cut at the chunks, perfectly linked) and :func:`results_from_chunks` turns
chunks into YouTube-VIS results without linking, with the linker's ids, or oracle-linked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluation import rle as rle_utils
from evaluation.errors import TrackingInputError
from evaluation.tracking import ClearResult, FrameSimilarity
from evaluation.ytvis_iou import sequence_ious


@dataclass
class ChunkTrack:
    """A chunk-local track: ``masks`` has one entry per chunk frame (RLE, ``bool[H, W]`` or
    ``None``); ``global_id`` is the id the linker gave it (``None``: not linked)."""

    local_id: int
    masks: list[Any]
    global_id: int | None = None
    category_id: int = 1
    score: float = 1.0


@dataclass
class Chunk:
    """The tracks of one window starting at frame ``start``."""

    start: int
    tracks: list[ChunkTrack] = field(default_factory=list)


def chunk_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """First frame of every chunk, e.g. ``chunk_starts(12, 6, 4) == [0, 4, 8]``."""
    if window < 1 or not 1 <= stride <= window or num_frames < 1:
        raise TrackingInputError(f"need window >= 1, 1 <= stride <= window and frames >= 1; got "
                                 f"window {window}, stride {stride}, frames {num_frames}")
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + stride)
    return starts


def boundary_windows(num_frames: int, window: int, stride: int) -> list[range]:
    """Boundary window of each boundary k >= 1: frames ``[k*S, (k-1)*S + T]`` in the video."""
    starts = chunk_starts(num_frames, window, stride)
    return [range(b, min(a + window + 1, num_frames))
            for a, b in zip(starts, starts[1:], strict=False)]


def boundary_switches(sims: list[FrameSimilarity], clear: ClearResult, *, window: int,
                      stride: int) -> dict[str, float]:
    """Split CLEAR identity switches into boundary and within-chunk ones, with rates.

    ``crossings`` = (GT, boundary) pairs with the GT visible in the boundary window;
    rates: boundary switches per crossing, within-chunk switches per visible GT frame.
    """
    windows = boundary_windows(len(sims), window, stride)
    in_window = {t for w in windows for t in w}
    boundary = sum(s.frame in in_window for s in clear.switches)
    within = len(clear.switches) - boundary
    crossings = sum(len(set().union(*(set(sims[t].gt_ids.tolist()) for t in w))) for w in windows)
    gt_frames = sum(len(s.gt_ids) for s in sims)
    return {"boundary_idsw": float(boundary), "within_idsw": float(within),
            "crossings": float(crossings), "gt_frames": float(gt_frames),
            "boundary_idsw_per_crossing": boundary / crossings if crossings else float("nan"),
            "within_idsw_per_gt_frame": within / gt_frames if gt_frames else float("nan")}


def _as_rle(mask: Any, height: int, width: int) -> dict | None:
    if mask is None or (not isinstance(mask, np.ndarray) and not mask):
        return None
    if isinstance(mask, np.ndarray):
        return rle_utils.encode(mask)
    rle = rle_utils.to_compressed(mask, height, width)
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def _match_side(gt_seqs: dict[int, list], tracks: list[ChunkTrack], offset: int,
                frames: range, threshold: float, size: tuple[int, int]) -> dict[int, int]:
    """Chunk-local id -> GT id, one-to-one on video IoU over ``frames`` (>= threshold)."""
    if not gt_seqs or not tracks:
        return {}
    gt_ids = list(gt_seqs)
    seqs = [[_as_rle(t.masks[f - offset], *size) if 0 <= f - offset < len(t.masks) else None
             for f in frames] for t in tracks]
    iou = sequence_ious(seqs, [gt_seqs[g] for g in gt_ids])
    rows, cols = linear_sum_assignment(-iou)
    return {tracks[r].local_id: gt_ids[c] for r, c in zip(rows, cols, strict=True)
            if iou[r, c] >= threshold}


def _gt_sequences(gt_frames: list[list], frames: range, size: tuple[int, int]
                  ) -> dict[int, list]:
    seqs: dict[int, list] = {}
    for i, f in enumerate(frames):
        for entry in gt_frames[f]:
            track_id, seg = (entry["track_id"], entry["segmentation"]) if isinstance(
                entry, dict) else (entry[0], entry[1])
            seqs.setdefault(int(track_id), [None] * len(frames))[i] = _as_rle(seg, *size)
    return seqs


def link_metrics(chunks: list[Chunk], gt_frames: list[list], height: int, width: int, *,
                 iou_threshold: float = 0.5) -> dict[str, float]:
    """Link recall/precision, false merges and missed links over all boundaries (see module)."""
    counts = Counter()
    for a, b in zip(chunks, chunks[1:], strict=False):
        end = a.start + max((len(t.masks) for t in a.tracks), default=0)
        overlap = range(b.start, min(end, len(gt_frames)))
        if len(overlap) == 0:
            continue
        gt_seqs = _gt_sequences(gt_frames, overlap, (height, width))
        left = _match_side(gt_seqs, a.tracks, a.start, overlap, iou_threshold, (height, width))
        right = _match_side(gt_seqs, b.tracks, b.start, overlap, iou_threshold, (height, width))
        global_a = {t.local_id: t.global_id for t in a.tracks}
        global_b = {t.local_id: t.global_id for t in b.tracks}
        by_gt = {g: la for la, g in left.items()}
        for lb, g in right.items():
            if g in by_gt:
                counts["gt_pairs"] += 1
                ga = global_a[by_gt[g]]
                counts["linked_pairs"] += ga is not None and ga == global_b[lb]
        for ta in a.tracks:
            for tb in b.tracks:
                if ta.global_id is None or ta.global_id != tb.global_id:
                    continue
                counts["joins"] += 1
                if ta.local_id in left and tb.local_id in right:
                    counts["judged_joins"] += 1
                    counts["correct_joins"] += left[ta.local_id] == right[tb.local_id]
    pairs, judged = counts["gt_pairs"], counts["judged_joins"]
    return {"gt_pairs": float(pairs), "joins": float(counts["joins"]),
            "link_recall": counts["linked_pairs"] / pairs if pairs else float("nan"),
            "link_precision": counts["correct_joins"] / judged if judged else float("nan"),
            "false_merges": float(judged - counts["correct_joins"]),
            "missed_links": float(pairs - counts["linked_pairs"])}


def chunk_ground_truth(gt: dict, video_id: int, *, window: int, stride: int) -> list[Chunk]:
    """Chunked oracle: every GT track cut into one chunk-local track per chunk where it is
    visible, ``global_id`` = GT annotation id (a perfect linker), score 1, GT category."""
    video = next((v for v in gt["videos"] if v["id"] == video_id), None)
    if video is None:
        raise TrackingInputError(f"video {video_id} is not in the ground truth")
    length, size = video["length"], (video["height"], video["width"])
    anns = [a for a in gt["annotations"] if a["video_id"] == video_id]
    chunks = []
    for start in chunk_starts(length, window, stride):
        frames = range(start, min(start + window, length))
        chunk = Chunk(start=start)
        for ann in anns:
            masks = [_as_rle(ann["segmentations"][f], *size) for f in frames]
            if any(m is not None for m in masks):
                chunk.tracks.append(ChunkTrack(local_id=len(chunk.tracks) + 1, masks=masks,
                                               global_id=ann["id"],
                                               category_id=ann["category_id"]))
        chunks.append(chunk)
    return chunks


def _result(video_id: int, pieces: list[tuple[int, ChunkTrack]], num_frames: int,
            size: tuple[int, int]) -> dict[str, Any]:
    """One YouTube-VIS result from chunk pieces; a later chunk's mask wins on shared frames."""
    segs: list[Any] = [None] * num_frames
    for start, track in sorted(pieces, key=lambda p: p[0]):
        for i, mask in enumerate(track.masks):
            rle = _as_rle(mask, *size)
            if rle is not None and start + i < num_frames:
                segs[start + i] = rle
    category = Counter(t.category_id for _, t in pieces).most_common(1)[0][0]
    score = float(np.mean([t.score for _, t in pieces]))
    return {"video_id": video_id, "category_id": category, "score": score, "segmentations": segs}


def results_from_chunks(chunks: list[Chunk], video_id: int, num_frames: int, height: int,
                        width: int, *, link: str = "none") -> list[dict[str, Any]]:
    """YouTube-VIS results from chunk tracks. ``link``: 'none' (each chunk-local track is its
    own result) or 'global' (tracks sharing a ``global_id`` are joined; score = mean of the
    pieces, category = most common). Use chunks from :func:`chunk_ground_truth` for the oracle."""
    if link not in ("none", "global"):
        raise TrackingInputError(f"link must be 'none' or 'global', got {link!r}")
    groups: dict[Any, list[tuple[int, ChunkTrack]]] = {}
    for k, chunk in enumerate(chunks):
        for track in chunk.tracks:
            key = (k, track.local_id) if link == "none" or track.global_id is None else (
                "g", track.global_id)
            groups.setdefault(key, []).append((chunk.start, track))
    return [_result(video_id, pieces, num_frames, (height, width)) for pieces in groups.values()]


def linker_efficiency(ap_none: float, ap_linker: float, ap_oracle: float) -> float:
    """(AP_linker - AP_none) / (AP_oracle - AP_none); NaN when the oracle gains nothing."""
    gain = ap_oracle - ap_none
    return (ap_linker - ap_none) / gain if gain > 0 else float("nan")
