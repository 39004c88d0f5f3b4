"""The frame-source interface: an iterable of ``Frame`` with a description and a close()."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from runtime.types import Frame

log = logging.getLogger("runtime.sources")

FALLBACK_FPS = 30.0
PLAUSIBLE_FPS = (1.0, 240.0)  # video frame rates outside this range are reported


class FrameSource:
    """Iterate it to get ``Frame``s (RGB, consecutive indices); close it when done.

    Attributes:
        description: what was opened, for messages.
        is_live: True for cameras and network streams (reconnect, wall-clock timestamps).
        total_frames: frame count when known in advance (files, folders), else None.
        fps: nominal frame rate (container value, or the fallback).
        truncated: set once iteration stops early on a truncated or corrupt input.
        disconnected: set once a live source gave up reconnecting.
        files: the local files it reads (a video, the images); empty for live sources. No
            output may be one of them.
    """

    description = "source"
    is_live = False

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.total_frames: int | None = None
        self.fps: float = 30.0
        self.truncated = False
        self.disconnected = False
        self.files: tuple[Path, ...] = ()

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


FRAME_FORMS = ("uint8 [H, W, 3] (RGB, or BGR with bgr=True), [H, W] or [H, W, 1] grey, or "
               "[H, W, 4] RGBA (BGRA with bgr=True)")


def to_rgb_frame(image, *, bgr: bool = False) -> np.ndarray:
    """Check one image an application hands in and return it as uint8 ``[H, W, 3]`` RGB.

    Accepts ``FRAME_FORMS``: grey is replicated to three channels, alpha is dropped. Raises
    ``ValueError`` naming the accepted forms otherwise (and for empty images).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"a frame must be {FRAME_FORMS}; got {got}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"a frame must be {FRAME_FORMS}; got uint8 {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"a frame must not be empty; got shape {image.shape}")
    if bgr or image.ndim == 2:
        return bgr_to_rgb(image)  # grey looks the same either way
    return np.ascontiguousarray(image[..., :3]) if image.shape[2] == 4 else image


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV BGR (or grey) uint8 image -> RGB ``[H, W, 3]``."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def metadata_fps(value: float, description: str) -> float:
    """The frame rate a container or device reports, checked: missing, zero or non-finite ->
    ``FALLBACK_FPS`` with a warning; outside ``PLAUSIBLE_FPS`` -> kept, with a warning."""
    if not (math.isfinite(value) and value > 0):
        log.warning("%s reports no usable frame rate (%r); assuming %g fps (pass --fps to set it)",
                    description, value, FALLBACK_FPS)
        return FALLBACK_FPS
    low, high = PLAUSIBLE_FPS
    if not low <= value <= high:
        log.warning("%s says %g fps, which is implausible for video (expected %g-%g); "
                    "timestamps follow the container's own frame times where it has them, the "
                    "overlay is written at %g fps; pass --fps to set the rate",
                    description, value, low, high, value)
    return float(value)
