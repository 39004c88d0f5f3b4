"""Overlay video writer and on-screen display (``--show``)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import cv2

from runtime.errors import SinkError
from runtime.results import FrameResult
from runtime.settings import check_fourcc, check_positive
from runtime.sinks.annotate import annotate
from runtime.sinks.base import Sink, ensure_writable

log = logging.getLogger("runtime.sinks")

PROBE_SIZE = (64, 64)  # (width, height) of the probe writer opened at construction


class OverlayVideoSink(Sink):
    """Writes annotated frames to a video (mp4v in .mp4 by default; H.264 is often missing from
    OpenCV wheels; ``fourcc="MJPG"`` with an .avi name works everywhere).

    The codec and container are probed at construction (``SinkError`` before any processing
    when OpenCV cannot write them). The real writer opens at the first frame with its size, so
    an earlier file at ``path`` is replaced only once there is a frame; if the frame size
    changes mid-stream (``size_change="reletterbox"``), later frames are resized to the first.
    """

    def __init__(self, path: str | Path, *, fps: float = 30.0, alpha: float = 0.45,
                 fourcc: str = "mp4v") -> None:
        self.fps = check_positive("overlay fps", fps)
        self.fourcc = check_fourcc(fourcc)
        self.path = ensure_writable(path)
        self.alpha = alpha
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0
        self._probe()

    def _open(self, path: Path, size: tuple[int, int]):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if writer.isOpened():
            return writer
        writer.release()
        raise SinkError(f"OpenCV cannot open a {self.fourcc} video writer at {self.fps:g} fps "
                        f"for {path} (unknown container for this name, codec missing from this "
                        "OpenCV, a rate the codec refuses, or the folder is gone); use a .mp4 "
                        "name with --fourcc mp4v or an .avi name with --fourcc MJPG")

    def _probe(self) -> None:
        """Open and drop a writer of the same container and codec next to the output."""
        handle, name = tempfile.mkstemp(prefix=".probe-", suffix=self.path.suffix,
                                        dir=self.path.parent)
        os.close(handle)
        try:
            self._open(Path(name), PROBE_SIZE).release()
        except SinkError as err:
            raise SinkError(str(err).replace(name, str(self.path))) from None
        finally:
            Path(name).unlink(missing_ok=True)

    def write(self, result: FrameResult) -> None:
        canvas = annotate(result, alpha=self.alpha)
        if self._writer is None:
            size = (canvas.shape[1], canvas.shape[0])
            self._writer = self._open(self.path, size)  # raises: nothing counted, nothing held
            self._size = size
        if (canvas.shape[1], canvas.shape[0]) != self._size:
            canvas = cv2.resize(canvas, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(canvas)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise SinkError(f"the {self.fourcc} writer reported no error but left no video at "
                            f"{self.path} ({self.frames_written} frames given to it)")
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
