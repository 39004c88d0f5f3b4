"""Overlay video writer and on-screen display (``--show``)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import SinkError
from runtime.results import FrameResult
from runtime.settings import check_fourcc, check_positive
from runtime.sinks.annotate import annotate
from runtime.sinks.base import Sink, ensure_writable
from runtime.sinks.h264 import H264Writer, h264_unavailable

log = logging.getLogger("runtime.sinks")

PROBE_SIZE = (64, 64)  # (width, height) of the probe writer opened at construction
CODECS = ("auto", "h264", "fourcc")
DEFAULT_FOURCC = "mp4v"


def choose_codec(path: str | Path, codec: str = "auto", fourcc: str | None = None) -> str:
    """``"h264"`` or the OpenCV fourcc to write ``path`` with; ``SinkError`` for ``h264`` where
    it cannot be written.

    ``auto``: H.264 (PyAV) for .mp4/.mkv/.mov when available and no ``fourcc`` was asked for;
    otherwise ``fourcc`` (default mp4v) with a one-line notice when H.264 was wanted but missing.
    ``h264``: H.264 or a refusal. ``fourcc``: OpenCV's writer with ``fourcc``.
    """
    if codec not in CODECS:
        raise SinkError(f"--codec must be one of {', '.join(CODECS)}; got {codec!r}")
    if fourcc is not None:
        check_fourcc(fourcc)
        if codec == "h264":
            raise SinkError(f"--fourcc {fourcc} asks for OpenCV's writer, --codec h264 for PyAV's; "
                            "give one of them")
    if codec == "fourcc" or fourcc is not None:
        return fourcc or DEFAULT_FOURCC
    missing = h264_unavailable(path)
    if missing is None:
        return "h264"
    if codec == "h264":
        raise SinkError(f"--codec h264 for {path}: {missing}; or drop --codec to write mp4v")
    log.warning("%s: writing mp4v, which browsers do not play (%s; --codec fourcc silences "
                "this)", path, missing)
    return DEFAULT_FOURCC


class OverlayVideoSink(Sink):
    """Writes annotated frames to a video: H.264 (PyAV) for .mp4/.mkv/.mov when the ``video``
    extra is installed, else OpenCV's ``fourcc`` (mp4v by default; ``fourcc="MJPG"`` with an
    .avi name works with every OpenCV build). See ``choose_codec``; ``self.codec`` is the one
    used (``"h264"`` or a fourcc).

    The codec and container are probed at construction (``SinkError`` before any processing
    when OpenCV cannot write them). The real writer opens at the first frame with its size, so
    an earlier file at ``path`` is replaced only once there is a frame; if the frame size
    changes mid-stream (``size_change="reletterbox"``), later frames are resized to the first.
    """

    def __init__(self, path: str | Path, *, fps: float = 30.0, alpha: float = 0.45,
                 fourcc: str | None = None, codec: str = "auto") -> None:
        self.fps = check_positive("overlay fps", fps)
        self.path = ensure_writable(path)
        self.codec = choose_codec(self.path, codec, fourcc)
        self.fourcc = None if self.codec == "h264" else self.codec
        self.alpha = alpha
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0
        self._probe()

    def _open(self, path: Path, size: tuple[int, int]):
        if self.codec == "h264":
            return H264Writer(path, self.fps, size)
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
            writer = self._open(Path(name), PROBE_SIZE)
            if self.codec == "h264":  # PyAV opens lazily: encode a frame to really probe
                writer.write(np.zeros((PROBE_SIZE[1], PROBE_SIZE[0], 3), np.uint8))
            writer.release()
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
            raise SinkError(f"the {self.codec} writer reported no error but left no video at "
                            f"{self.path} ({self.frames_written} frames given to it)")
        log.info("wrote %d frames to %s", self.frames_written, self.path)


def gui_unavailable() -> str | None:
    """None when ``--show`` can open a window here; else why not and what to use instead.

    Reads OpenCV's build information (``GUI: NONE`` in the headless wheels) and, on Linux, the
    display variables: a GTK/Qt window without a display would end the process."""
    import re
    import sys

    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if match and match.group(1).upper() == "NONE":
        return ("--show needs OpenCV with GUI support; this OpenCV has none "
                "(opencv-python-headless). Install opencv-python instead (pip uninstall "
                "opencv-python-headless; pip install opencv-python), or watch in a browser with "
                "--view 8080, or write --out overlay.mp4")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return ("--show needs a display and none is set (no DISPLAY or WAYLAND_DISPLAY: an SSH "
                "session or a headless box); watch in a browser with --view 8080 (ssh -L "
                "8080:127.0.0.1:8080 to reach it), or write --out overlay.mp4")
    return None


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
