"""Finite sources: a video file, an image folder (natural sort) or a glob of images.

Corrupt or truncated input stops at the last good frame with a warning (``truncated`` is set);
the frames before it are processed and written as usual (DESIGN §8).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2

from runtime.errors import SourceError
from runtime.sources.base import FrameSource, bgr_to_rgb
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
    """Frames of a video file decoded with OpenCV/FFmpeg; timestamps = index / fps."""

    def __init__(self, path: str | Path, *, fps: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.description = str(self.path)
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
        self.fps = fps or self._capture.get(cv2.CAP_PROP_FPS) or 30.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._capture is not None and not self.stop_requested:
            ok, bgr = self._capture.read()
            if not ok or bgr is None:
                break
            yield Frame(index, index / self.fps, bgr_to_rgb(bgr))
            index += 1
        if index == 0 and not self.stop_requested:
            raise SourceError(f"{self.path} opened but no frame decodes; the file is corrupt")
        if not self.stop_requested and self.total_frames and index < self.total_frames:
            self.truncated = True
            log.warning("%s: decoding stopped after %d of %d frames (file truncated or corrupt); "
                        "frames 0..%d are processed and kept", self.path, index,
                        self.total_frames, index - 1)

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
        self.total_frames = len(paths)
        self.fps = fps or 30.0

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

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            if self.stop_requested:
                return
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                if index == 0:
                    raise SourceError(f"{path} is not a readable image; nothing to process")
                self.truncated = True
                log.warning("%s: %s is not a readable image; stopping after %d frames (kept)",
                            self.description, path, index)
                return
            yield Frame(index, index / self.fps, bgr_to_rgb(bgr))
