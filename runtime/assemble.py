"""Per-frame output from overlapping windows, and its mapping back to the source frame.

Overlap-frame policy (a setting, measured in bench/runtime_overhead.py):
  ``average`` (default): a track's mask probability, box and class scores in a frame are the
      mean over the covering windows in which the track appears; a track seen by any covering
      window is output. Smoother masks, costs one extra add per covering window.
  ``latest``: the frame shows exactly what the latest covering window predicted (tracks absent
      from it are dropped from that frame). Cheaper, follows fast motion more closely.
A frame is final once no later window covers it (``Windower.final_before``); its masks are then
thresholded at 0.5 and pasted to source resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime import rle as rle_codec
from runtime.errors import ConfigError
from runtime.results import FrameResult
from runtime.tracking import Tracker
from runtime.types import WindowInstances
from runtime.windows import PreparedFrame, Window

OVERLAP_POLICIES = ("average", "latest")
MASK_FORMATS = ("bool", "rle")


@dataclass
class _Entry:
    """Running sums of one track in one pending frame."""

    mask_sum: np.ndarray  # float32 [h, w] model coordinates (H/4, W/4)
    box_sum: np.ndarray  # float32 [4] model pixels
    class_sum: np.ndarray  # float32 [C]
    count: int
    label: int
    score: float


class FrameAssembler:
    """Collects window outputs per pending frame and releases frames once final."""

    def __init__(self, *, policy: str = "average") -> None:
        if policy not in OVERLAP_POLICIES:
            raise ConfigError(f"overlap policy must be one of {OVERLAP_POLICIES}, got {policy!r}")
        self.policy = policy
        self.reset()

    def __len__(self) -> int:
        return len(self._pending)

    def reset(self) -> None:
        self._pending: dict[int, tuple[PreparedFrame, dict[int, _Entry]]] = {}
        self._released_before = 0  # frames below this were already returned as final

    def add(self, window: Window, instances: WindowInstances, ids: np.ndarray,
            tracker: Tracker) -> None:
        """Fold one window's linked instances (``ids[i]`` = track of row i, -1 = dropped)."""
        rows = np.flatnonzero(ids >= 0)
        for pos, prepared in enumerate(window.frames):
            index = prepared.frame.index
            if index < self._released_before:  # the end-aligned last window re-covers these
                continue
            if index not in self._pending or self.policy == "latest":
                self._pending[index] = (prepared, {})
            entries = self._pending[index][1]
            for row in rows:
                track = tracker.get(int(ids[row]))
                entry = entries.get(track.track_id)
                if entry is None:
                    entries[track.track_id] = _Entry(
                        mask_sum=instances.masks[row, pos].copy(),
                        box_sum=instances.boxes[row, pos].copy(),
                        class_sum=instances.class_scores[row].copy(), count=1,
                        label=track.label, score=track.score)
                    continue
                entry.mask_sum += instances.masks[row, pos]
                entry.box_sum += instances.boxes[row, pos]
                entry.class_sum += instances.class_scores[row]
                entry.count += 1
                entry.label, entry.score = track.label, track.score

    def pop_final(self, before: int) -> list[tuple[PreparedFrame, dict[int, _Entry]]]:
        """Remove and return pending frames with index < ``before``, in frame order."""
        done = sorted(i for i in self._pending if i < before)
        self._released_before = max(self._released_before, before)
        return [self._pending.pop(i) for i in done]


def render_frame(prepared: PreparedFrame, entries: dict[int, _Entry], *,
                 class_names: tuple[str, ...], min_score: float, mask_format: str = "bool",
                 keep_image: bool = True) -> FrameResult:
    """Threshold and paste a final frame's entries to source resolution -> ``FrameResult``.

    Tracks with score < ``min_score`` or an empty mask at source resolution are left out.
    """
    frame, box = prepared.frame, prepared.letterbox
    ids, labels, scores, boxes, class_scores, masks = [], [], [], [], [], []
    for track_id, entry in sorted(entries.items()):
        if entry.score < min_score:
            continue
        mask = box.mask_to_source(entry.mask_sum / entry.count)
        if not mask.any():
            continue
        ids.append(track_id)
        labels.append(entry.label)
        scores.append(entry.score)
        boxes.append(box.boxes_to_source(entry.box_sum / entry.count))
        class_scores.append(entry.class_sum / entry.count)
        masks.append(mask)
    n, size = len(ids), frame.size
    stacked = np.stack(masks) if n else np.zeros((0, *size), bool)
    return FrameResult(
        index=frame.index, timestamp_s=frame.timestamp_s, size=size, class_names=class_names,
        track_ids=np.asarray(ids, np.int64), labels=np.asarray(labels, np.int64),
        scores=np.asarray(scores, np.float32),
        boxes=np.asarray(boxes, np.float32).reshape(n, 4),
        class_scores=np.asarray(class_scores, np.float32).reshape(n, len(class_names)),
        masks=stacked if mask_format == "bool" else None,
        rles=tuple(rle_codec.encode(m) for m in masks) if mask_format == "rle" else None,
        image=frame.image if keep_image else None,
    )
