"""Finite sources: a video file, an image folder (natural sort) or a glob of images.

The first frame is decoded when the source opens, so a source with nothing decodable is refused
before any model is loaded. Corrupt or truncated input later on stops at the last good frame
with a warning (``truncated`` is set); the frames before it are processed and written as usual.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import SourceError
from runtime.settings import check_positive
from runtime.sources.base import FALLBACK_FPS, FrameSource, bgr_to_rgb, metadata_fps
from runtime.types import Frame

log = logging.getLogger("runtime.sources")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def natural_key(path: str | Path) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", str(path))]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"source {path} does not exist; pass a camera index (0 or camera0), "
                          "a video file, an rtsp:// or http:// URL, an image folder or a glob")
    if not os.access(path, os.R_OK):
        raise SourceError(f"source {path} is not readable (permissions); fix its mode or run "
                          "as a user who may read it")


class VideoFileSource(FrameSource):
    """Frames of a video file decoded with OpenCV/FFmpeg.

    Timestamps are the container's per-frame times (``CAP_PROP_POS_MSEC``, so variable frame
    rate files get their real times), relative to the first frame; where the container has none
    (or they do not increase) a frame gets the previous time plus 1/fps. ``fps`` given by the
    caller (``--fps``) overrides the file: timestamps are then index / fps.
    """

    def __init__(self, path: str | Path, *, fps: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.description = str(self.path)
        self.files = (self.path,)
        self.fixed_rate = fps is not None
        given_fps = check_positive("--fps", fps) if self.fixed_rate else None
        _check_readable(self.path)
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise SourceError(
                f"cannot open video {self.path}: OpenCV/FFmpeg found no decodable stream (not a "
                "video, an unsupported codec, or an MP4 cut off before its index, 'moov atom not "
                "found'); re-copy or re-encode the file (ffmpeg -i in.mp4 -movflags +faststart "
                "out.mp4)"
            )
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total_frames = count if count > 0 else None
        self.fps = given_fps or metadata_fps(self._capture.get(cv2.CAP_PROP_FPS), str(self.path))
        self._warned_time = False
        self._first = self._read()
        if self._first is None:
            self.close()
            raise SourceError(f"{self.path} opened but no frame decodes; the file is corrupt")

    def _read(self) -> tuple[np.ndarray, float] | None:
        """The next BGR image and its container time in seconds (nan when unknown)."""
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        return bgr, self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3

    def _decoded(self) -> Iterator[tuple[np.ndarray, float]]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while self._capture is not None and (item := self._read()) is not None:
            yield item

    def __iter__(self) -> Iterator[Frame]:
        index, start, previous = 0, None, 0.0
        for bgr, media_s in self._decoded():
            if self.stop_requested:
                break
            if self.fixed_rate:
                stamp = index / self.fps
            else:
                start = media_s if start is None else start
                stamp = self._media_time(index, media_s - start, previous)
            yield Frame(index, stamp, bgr_to_rgb(bgr))
            previous, index = stamp, index + 1
            if self.stop_requested:
                break
        if not self.stop_requested and self.total_frames and index < self.total_frames:
            self.truncated = True
            log.warning("%s: decoding stopped after %d of %d frames (file truncated or corrupt); "
                        "frames 0..%d are processed and kept", self.path, index,
                        self.total_frames, index - 1)

    def _media_time(self, index: int, stamp: float, previous: float) -> float:
        """Seconds since the first frame: the container's, or previous + 1/fps without one."""
        if index == 0:
            return 0.0
        if math.isfinite(stamp) and stamp > previous:
            return stamp
        if not self._warned_time:
            self._warned_time = True
            log.warning("%s: no increasing container time at frame %d; frames without one are "
                        "placed 1/%g s after the previous", self.path, index, self.fps)
        return previous + 1.0 / self.fps

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class ImageSequenceSource(FrameSource):
    """Frames from a list of image files, in the given order; timestamps = index / fps."""

    def __init__(self, paths: list[Path], *, description: str, fps: float | None = None) -> None:
        super().__init__()
        if not paths:
            raise SourceError(f"{description}: no image files ({', '.join(IMAGE_EXTENSIONS)}) "
                              "found; check the folder or the glob pattern")
        self.paths, self.description = paths, description
        self.files = tuple(paths)
        self.total_frames = len(paths)
        self.fps = FALLBACK_FPS if fps is None else check_positive("--fps", fps)
        self._first = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR)
        if self._first is None:
            raise SourceError(f"{paths[0]} is not a readable image; nothing to process")

    @classmethod
    def from_folder(cls, folder: str | Path, *, fps: float | None = None) -> ImageSequenceSource:
        folder = Path(folder)
        _check_readable(folder)
        paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS),
                       key=natural_key)
        return cls(paths, description=f"image folder {folder}", fps=fps)

    @classmethod
    def from_glob(cls, pattern: str, *, fps: float | None = None) -> ImageSequenceSource:
        paths = sorted((Path(p) for p in glob.glob(pattern, recursive=True)
                        if Path(p).suffix.lower() in IMAGE_EXTENSIONS), key=natural_key)
        return cls(paths, description=f"glob {pattern!r}", fps=fps)

    def _image(self, index: int, path: Path) -> np.ndarray | None:
        if index == 0 and self._first is not None:
            image, self._first = self._first, None
            return image
        return cv2.imread(str(path), cv2.IMREAD_COLOR)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            if self.stop_requested:
                return
            bgr = self._image(index, path)
            if bgr is None:
                self.truncated = True
                log.warning("%s: %s is not a readable image; stopping after %d frames (kept)",
                            self.description, path, index)
                return
            yield Frame(index, index / self.fps, bgr_to_rgb(bgr))
