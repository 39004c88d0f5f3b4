"""JSONL events: one line per frame, flushed at once so nothing is lost on Ctrl-C or a crash.

The file is opened (and an earlier one replaced) at the first frame, not before.

Line: ``{"frame", "timestamp", "tracks": [...], "appeared": [ids new in this frame],
"disappeared": [ids in the previous frame, gone now]}``; each track is ``{"track_id",
"category_id" (class index + 1), "label" (class index), "class", "score", "box" (xyxy source
pixels), "area" (pixels), "segmentation" (COCO compressed RLE, unless include_masks=False)}``.
The format is the per-frame input of ``python -m evaluation.track_eval --jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime import rle as rle_codec
from runtime.errors import SinkError
from runtime.results import FrameResult
from runtime.sinks.base import Sink, ensure_writable


class JsonlEventSink(Sink):
    def __init__(self, path: str | Path, *, include_masks: bool = True) -> None:
        self.path = ensure_writable(path)
        self.include_masks = include_masks
        self._file = None
        self._closed = False
        self._seen: set[int] = set()
        self._previous: set[int] = set()
        self.lines = 0

    def _track(self, result: FrameResult, i: int) -> dict:
        rle = result.rles[i] if result.rles is not None else None
        if rle is None and self.include_masks:
            rle = rle_codec.encode(result.masks[i])
        area = rle_codec.area(rle) if rle is not None else int(result.masks[i].sum())
        label = int(result.labels[i])
        track = {"track_id": int(result.track_ids[i]), "category_id": label + 1,
                 "label": label, "class": result.class_names[label],
                 "score": round(float(result.scores[i]), 4),
                 "box": [round(float(v), 1) for v in np.asarray(result.boxes[i])], "area": area}
        if self.include_masks:
            track["segmentation"] = rle
        return track

    def write(self, result: FrameResult) -> None:
        if self._closed:
            raise SinkError(f"{self.path}: the event sink is closed")
        current = set(result.track_ids.tolist())
        line = {"frame": result.index, "timestamp": round(result.timestamp_s, 4),
                "tracks": [self._track(result, i) for i in range(len(result))],
                "appeared": sorted(current - self._seen),
                "disappeared": sorted(self._previous - current)}
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8")  # replaces an earlier file now
        self._file.write(json.dumps(line) + "\n")
        self._seen |= current
        self._previous = current
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._closed = True
        if self._file is not None and not self._file.closed:
            self._file.close()
