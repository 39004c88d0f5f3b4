"""The frame-source interface: an iterable of ``Frame`` with a description and a close()."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import cv2
import numpy as np

from runtime.types import Frame


class FrameSource:
    """Iterate it to get ``Frame``s (RGB, consecutive indices); close it when done.

    Attributes:
        description: what was opened, for messages.
        is_live: True for cameras and network streams (reconnect, wall-clock timestamps).
        total_frames: frame count when known in advance (files, folders), else None.
        fps: nominal frame rate (container value, or the fallback).
        truncated: set once iteration stops early on a truncated or corrupt input.
        disconnected: set once a live source gave up reconnecting.
    """

    description = "source"
    is_live = False

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.total_frames: int | None = None
        self.fps: float = 30.0
        self.truncated = False
        self.disconnected = False

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def request_stop(self) -> None:
        """Ask iteration to end after the current frame (safe from a signal handler); a live
        source waiting to reconnect wakes up at once."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release devices and files; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV BGR (or grey) uint8 image -> RGB ``[H, W, 3]``."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
