"""Which cameras OpenCV can open here (``python -m runtime.stream --list-cameras``).

On Linux the candidates are the ``/dev/videoN`` nodes (a UVC camera has two: the second is a
metadata node that opens but gives no frames, so each candidate must deliver a frame); elsewhere
indices 0..``MAX_INDEX - 1`` are tried.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

MAX_INDEX = 10


@dataclass(frozen=True)
class CameraInfo:
    """A camera that delivered a frame: OpenCV ``index``, frame ``width`` x ``height``, the
    driver's nominal ``fps`` (0 when it reports none) and the capture ``backend``."""

    index: int
    width: int
    height: int
    fps: float
    backend: str

    def describe(self) -> str:
        rate = f"{self.fps:g} fps" if self.fps > 0 else "fps not reported"
        return (f"camera{self.index}: {self.width}x{self.height}, {rate} ({self.backend}); "
                f"python -m runtime.stream camera{self.index}")


def candidate_indices() -> list[int]:
    """Indices worth probing: ``/dev/videoN`` on Linux, else 0..MAX_INDEX-1."""
    if sys.platform.startswith("linux"):
        nodes = (re.fullmatch(r"video(\d+)", p.name) for p in Path("/dev").glob("video*"))
        return sorted(int(m.group(1)) for m in nodes if m)
    return list(range(MAX_INDEX))


def _quiet_opencv():
    """Silence OpenCV's warnings for indices that do not open; returns the restore call."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        return lambda: None
    previous = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    return lambda: logging_api.setLogLevel(previous)


def probe_camera(index: int, capture_factory=cv2.VideoCapture) -> CameraInfo | None:
    """``CameraInfo`` when camera ``index`` opens and delivers a frame, else None."""
    capture = capture_factory(index)
    try:
        if not capture.isOpened():
            return None
        ok, frame = capture.read()
        if not ok or frame is None:
            return None
        backend = capture.getBackendName() if hasattr(capture, "getBackendName") else "OpenCV"
        return CameraInfo(index, frame.shape[1], frame.shape[0],
                          float(capture.get(cv2.CAP_PROP_FPS) or 0.0), backend)
    finally:
        capture.release()


def list_cameras(indices: list[int] | None = None, capture_factory=cv2.VideoCapture
                 ) -> list[CameraInfo]:
    """Every camera among ``indices`` (default ``candidate_indices()``) that gives a frame."""
    restore = _quiet_opencv()
    try:
        found = (probe_camera(i, capture_factory) for i in
                 (candidate_indices() if indices is None else indices))
        return [info for info in found if info is not None]
    finally:
        restore()


def format_cameras(cameras: list[CameraInfo], tried: list[int]) -> str:
    """Lines for ``--list-cameras``: one per camera, or what was tried and what to check."""
    if cameras:
        return "\n".join(info.describe() for info in cameras)
    where = (f"/dev/video{{{','.join(map(str, tried))}}}" if tried else "no /dev/video* device")
    return (f"no camera delivered a frame (tried {where}); check the cable, that no other "
            "program holds it, and permissions (`ls -l /dev/video*`, group video); a CSI camera "
            "on a Jetson is read through GStreamer: python -m runtime.stream "
            "'nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink drop=1'")
