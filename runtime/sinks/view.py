"""``--view PORT``: the live overlay and tracks in a browser, for boxes without a display.

``write`` only hands the result to a bounded queue (``QUEUE_SIZE``); when the encoder thread
is behind, the oldest waiting frame is dropped, so the pipeline never waits for JPEG encoding
or for a viewer. The encoder draws the overlay (``annotate``), encodes it as JPEG and publishes
it with the frame's tracks to every viewer (``runtime.view_server``).
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading

import cv2
import numpy as np

from runtime.errors import SinkError
from runtime.results import FrameResult
from runtime.sinks.annotate import annotate
from runtime.sinks.base import Sink
from runtime.view_server import LatestFrame, ViewServer

log = logging.getLogger("runtime.view")

QUEUE_SIZE = 2
JPEG_QUALITY = 80


def tracks_json(result: FrameResult) -> dict:
    """The JSON of ``/tracks.json``: frame, timestamp, size and one entry per track."""
    return {"frame": result.index, "timestamp": round(result.timestamp_s, 4),
            "size": list(result.size),
            "tracks": [{"track_id": t.track_id, "class": t.class_name,
                        "score": round(t.score, 4),
                        "box": [round(float(v), 1) for v in np.asarray(t.box)]} for t in result]}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ViewSink(Sink):
    """Serves the overlay on ``http://host:port/`` while the run lasts (``port`` 0: any free
    port; ``self.url`` says which). Needs results with their image (``keep_images=True``)."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", alpha: float = 0.45,
                 quality: int = JPEG_QUALITY) -> None:
        self.alpha, self.quality = alpha, quality
        self.latest = LatestFrame()
        self.server = ViewServer(self.latest, host=host, port=port)
        self.url = self.server.url
        if not is_loopback(host):
            log.warning("--view-host %s: anyone who can reach %s sees the video (no "
                        "authentication)", host, self.url)
        log.info("live view: %s", self.url)
        self.dropped = 0
        self.published = 0
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._closed = False
        self._encoder = threading.Thread(target=self._encode_loop, daemon=True,
                                         name="visdeploy-view-encoder")
        self._encoder.start()

    def write(self, result: FrameResult) -> None:
        if self._closed:
            raise SinkError("the --view sink is closed")
        if result.image is None:
            raise SinkError("--view needs the frames: run the pipeline with keep_images=True")
        while True:
            try:
                self._queue.put_nowait(result)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the encoder is behind: drop the oldest frame
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _encode_loop(self) -> None:
        while True:
            result = self._queue.get()
            if result is None:
                return
            try:
                ok, jpeg = cv2.imencode(".jpg", annotate(result, alpha=self.alpha),
                                        [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            except Exception as err:  # a bad frame must not end the live view
                log.error("--view: could not draw frame %d: %s", result.index, err)
                continue
            if ok:
                self.latest.publish(jpeg.tobytes(), result.index, tracks_json(result))
                self.published += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while True:  # make room for the end marker without waiting for the encoder
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        self._encoder.join(timeout=5)
        self.latest.close()
        self.server.close()
        log.info("--view: %d frames published, %d dropped (encoder behind)", self.published,
                 self.dropped)
