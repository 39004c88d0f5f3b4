"""YouTube-VIS results JSON (the official YouTube-VIS results format): one entry per (track, category).

Each entry: ``{"video_id", "category_id", "score", "segmentations", "track_id"}`` (the
official loader ignores the extra ``track_id``; evaluation.track_eval uses it) with one compressed RLE
(``counts`` as str, ``size`` = [H, W] of the video) or ``null`` per frame; the list length is
the video length. Benchmark mode writes the top-K (track, class) pairs by mean class score over
the frames where the track is present (a track may appear with several categories);
deployment mode writes one entry per track with its label. Masks are kept as RLE in memory
until ``close()``, so this sink is for finite videos. ``close()`` writes ``<name>.tmp`` and
renames it over the output (never when no frame arrived); its folder must be writable, which is
checked at construction.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from runtime import rle as rle_codec
from runtime.errors import ConfigError, FrameSizeError, SinkError
from runtime.results import FrameResult
from runtime.sinks.base import Sink, ensure_writable, temp_path

log = logging.getLogger("runtime.sinks")


class _TrackLog:
    def __init__(self, num_classes: int) -> None:
        self.rles: dict[int, dict] = {}
        self.class_sum = np.zeros(num_classes, np.float64)
        self.label, self.score = 0, 0.0


class YtvisJsonSink(Sink):
    """Collects RLE masks per track and writes a YTVIS results list on ``close()``.

    Args:
        path: output .json file.
        num_classes: classes of the artifact.
        video_id: the dataset's real video id (never assume index + 1).
        category_ids: dataset category id per class index (default: index + 1).
        mode: ``benchmark`` (top-K multi-label) or ``deployment`` (one label per track).
        top_k: entries kept per video in benchmark mode.
    """

    def __init__(self, path: str | Path, *, num_classes: int, video_id: int = 1,
                 category_ids: list[int] | None = None, mode: str = "benchmark",
                 top_k: int = 10) -> None:
        if mode not in ("benchmark", "deployment"):
            raise ConfigError(f"mode must be benchmark or deployment, got {mode!r}")
        if category_ids is not None and len(category_ids) != num_classes:
            raise ConfigError(f"{len(category_ids)} category ids for {num_classes} classes")
        self.path = ensure_writable(path)
        self.temp_path = ensure_writable(temp_path(self.path), temp_for=self.path)
        self.video_id, self.mode, self.top_k = video_id, mode, top_k
        self.category_ids = list(category_ids or range(1, num_classes + 1))
        self._tracks: dict[int, _TrackLog] = {}
        self._size: tuple[int, int] | None = None
        self.length = 0
        self._closed = False

    def write(self, result: FrameResult) -> None:
        if result.index != self.length:
            raise ValueError(f"YTVIS sink expects frame {self.length}, got {result.index}")
        if self._size is None:
            self._size = result.size
        elif result.size != self._size:
            raise FrameSizeError(
                f"frame {result.index} is {result.size[1]}x{result.size[0]} but the video "
                f"started at {self._size[1]}x{self._size[0]}: YTVIS results need one size per "
                "video; resize the source, or drop --json for streams that change size")
        rles = result.rles if result.rles is not None else tuple(rle_codec.encode(m) for m in result.masks)
        for i, track_id in enumerate(result.track_ids.tolist()):
            log_ = self._tracks.setdefault(track_id, _TrackLog(len(self.category_ids)))
            log_.rles[result.index] = rles[i]
            log_.class_sum += result.class_scores[i]
            log_.label, log_.score = int(result.labels[i]), float(result.scores[i])
        self.length += 1

    def entries(self) -> list[dict]:
        """The results list as it would be written now."""
        candidates = []
        for track_id, log_ in self._tracks.items():
            mean = log_.class_sum / max(len(log_.rles), 1)
            if self.mode == "deployment":
                candidates.append((log_.score, track_id, log_.label))
            else:
                candidates += [(float(mean[c]), track_id, c) for c in np.flatnonzero(mean > 0)]
        candidates.sort(key=lambda item: (-item[0], item[1], item[2]))
        if self.mode == "benchmark":
            candidates = candidates[: self.top_k]
        return [{"video_id": self.video_id, "category_id": self.category_ids[label],
                 "score": round(score, 6), "track_id": track_id,
                 "segmentations": [self._tracks[track_id].rles.get(f) for f in range(self.length)]}
                for score, track_id, label in candidates]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.length == 0:
            log.info("%s: no frame reached the YTVIS sink; the file is left as it was",
                     self.path)
            return
        entries = self.entries()
        if not entries:
            log.warning("%s: no predictions; the official YTVIS loader rejects an empty list",
                        self.path)
        try:
            self.temp_path.write_text(json.dumps(entries))
            os.replace(self.temp_path, self.path)
        except OSError as err:
            self.temp_path.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.path}: {err.strerror or err}; the YTVIS "
                            f"results of {self.length} frames are lost (earlier file kept)") from err
        log.info("wrote %d YTVIS entries over %d frames to %s", len(entries), self.length,
                 self.path)
