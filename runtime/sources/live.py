"""Live sources (camera index, rtsp:// or http:// stream) with reconnect and backoff.

A source that cannot be opened at start is retried with the same backoff (``max_attempts``
retries, CLI ``--reconnect N``) before ``SourceError``. When frames stop (camera unplugged, stream stalled), the capture is released and reopened after
exponentially growing delays; frame indices continue across reconnects. After
``max_attempts`` failed reopen attempts the source stops cleanly (``disconnected`` is set) so the
pipeline flushes every finished frame to its sinks (docs/contract.md §4).

Frames are read synchronously: if the model is slower than the camera, the driver's buffer
drops or delays frames; lower the camera frame rate for the lowest latency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2

from runtime.errors import ConfigError, SourceError
from runtime.sources.base import FrameSource, bgr_to_rgb, metadata_fps
from runtime.types import Frame

log = logging.getLogger("runtime.sources")

STREAM_TIMEOUT_MS = 5000  # FFmpeg open/read timeout for network streams


@dataclass(frozen=True)
class ReconnectPolicy:
    """Backoff for live sources: delay k is ``min(initial_delay_s * 2**k, max_delay_s)``.

    ``max_attempts`` failed reopen attempts in a row end the stream (0: stop at the first loss),
    and as many retries are made when the first open fails (0: fail at once). More attempts
    ride out longer outages at the cost of a later final flush. The default (8 attempts, 0.5 s
    doubling to 8 s) waits about 40 s in all.
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.initial_delay_s < 0 or self.max_delay_s < self.initial_delay_s:
            raise ConfigError(f"reconnect delays need 0 <= initial <= max, got {self}")
        if self.max_attempts < 0:
            raise ConfigError(f"reconnect max_attempts must be >= 0, got {self.max_attempts}")

    def delays(self) -> Iterator[float]:
        for attempt in range(self.max_attempts):
            yield min(self.initial_delay_s * 2 ** attempt, self.max_delay_s)


def open_capture(target: int | str):
    """Default capture factory: a camera index, or a URL through FFmpeg with timeouts."""
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
    return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)


class LiveSource(FrameSource):
    """Camera or network stream; timestamps are wall-clock seconds since the first frame.

    Args:
        target: OpenCV camera index or stream URL.
        reconnect: backoff policy when frames stop.
        capture_factory: ``target -> cv2.VideoCapture``-like object (``isOpened``, ``read``,
            ``release``, ``get``); replace it to read from another capture implementation.
        sleep: waits between reconnect attempts (default: an interruptible wait that
            ``request_stop`` ends at once).
        clock: wall clock for timestamps (``time.monotonic``).
    """

    is_live = True

    def __init__(self, target: int | str, *, reconnect: ReconnectPolicy | None = None,
                 capture_factory: Callable = open_capture, sleep: Callable | None = None,
                 clock: Callable = time.monotonic) -> None:
        super().__init__()
        self.target = target
        self.description = f"camera {target}" if isinstance(target, int) else str(target)
        self.reconnect = reconnect or ReconnectPolicy()
        self._factory, self._clock = capture_factory, clock
        self._sleep = sleep or self._stop.wait
        self.reconnects = 0
        self._capture = self._open_first()
        self.reconnects = 0  # retries at start are not reconnects
        self.fps = metadata_fps(self._capture.get(cv2.CAP_PROP_FPS), self.description)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # An http URL of a finite file reports its length: end of file is then end of stream.
        self.finite = count > 0 and not isinstance(target, int)
        self.total_frames = count if self.finite else None

    def _open_first(self):
        capture = self._factory(self.target)
        if capture.isOpened():
            return capture
        capture.release()
        if self.reconnect.max_attempts:
            log.warning("%s: cannot open it; retrying up to %d times (--reconnect)",
                        self.description, self.reconnect.max_attempts)
        capture = self._reopen()
        if capture is None:
            raise SourceError(self._open_error())
        return capture

    def _open_error(self) -> str:
        n = self.reconnect.max_attempts
        tried = (f"after {n} retr{'y' if n == 1 else 'ies'} (--reconnect N sets how many, "
                 f"{ReconnectPolicy.max_attempts} by default)")
        if isinstance(self.target, int):
            return (f"cannot open camera {self.target} {tried}: no such device, in use by "
                    "another program, or no permission (check `ls /dev/video*` and `v4l2-ctl "
                    "--list-devices`)")
        return (f"cannot open stream {self.target} {tried}: unreachable, wrong URL or "
                f"credentials, or no answer within {STREAM_TIMEOUT_MS / 1000:.0f} s; test it "
                "with `ffprobe URL`")

    def __iter__(self) -> Iterator[Frame]:
        index, start = 0, None
        while self._capture is not None and not self.stop_requested:
            ok, bgr = self._capture.read()
            if ok and bgr is not None:
                now = self._clock()
                start = now if start is None else start
                yield Frame(index, now - start, bgr_to_rgb(bgr))
                index += 1
                continue
            if self.finite or self.stop_requested:
                return
            log.warning("%s: no frame after frame %d (unplugged or stalled); reconnecting",
                        self.description, index - 1)
            self._capture.release()
            self._capture = self._reopen()
            if self._capture is None and not self.stop_requested:
                self.disconnected = True
                log.error("%s: gave up after %d reconnect attempts; stopping, %d frames kept",
                          self.description, self.reconnect.max_attempts, index)

    def _reopen(self):
        for attempt, delay in enumerate(self.reconnect.delays(), start=1):
            self._sleep(delay)
            if self.stop_requested:
                return None
            capture = self._factory(self.target)
            if capture.isOpened():
                self.reconnects += 1
                log.info("%s: opened (attempt %d)", self.description, attempt)
                return capture
            capture.release()
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
