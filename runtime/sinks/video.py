"""Overlay MP4 writer and on-screen display (``--show``)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from runtime.errors import SinkError
from runtime.results import FrameResult
from runtime.sinks.annotate import annotate
from runtime.sinks.base import Sink, ensure_writable

log = logging.getLogger("runtime.sinks")


class OverlayVideoSink(Sink):
    """Writes annotated frames to an MP4 (mp4v codec; H.264 is often missing from OpenCV wheels).

    The writer opens at the first frame with its size; if the frame size changes mid-stream
    (``size_change="reletterbox"``), later frames are resized to the first size.
    """

    def __init__(self, path: str | Path, *, fps: float = 30.0, alpha: float = 0.45,
                 fourcc: str = "mp4v") -> None:
        self.path = ensure_writable(path)
        self.fps, self.alpha, self.fourcc = fps, alpha, fourcc
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, result: FrameResult) -> None:
        canvas = annotate(result, alpha=self.alpha)
        if self._writer is None:
            self._size = (canvas.shape[1], canvas.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc),
                                           self.fps, self._size)
            if not self._writer.isOpened():
                raise SinkError(f"OpenCV cannot open a {self.fourcc} video writer for "
                                f"{self.path}; use a .mp4 name or another --fourcc")
        if (canvas.shape[1], canvas.shape[0]) != self._size:
            canvas = cv2.resize(canvas, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(canvas)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            log.info("wrote %d frames to %s", self.frames_written, self.path)


class DisplaySink(Sink):
    """Shows annotated frames in a window; ``q`` or Esc sets ``stop_requested``.

    Needs an OpenCV build with GUI support: the base install (opencv-python-headless) has none,
    and this raises ``SinkError`` at construction, before any processing.
    """

    def __init__(self, *, title: str = "visdeploy") -> None:
        self.title = title
        self.stop_requested = False
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise SinkError("--show needs OpenCV with GUI support; this OpenCV has none "
                            "(opencv-python-headless). Install opencv-python instead, or write "
                            "--out overlay.mp4") from err

    def write(self, result: FrameResult) -> None:
        cv2.imshow(self.title, annotate(result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
