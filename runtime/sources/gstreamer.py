"""GStreamer pipeline sources (Jetson CSI cameras, hardware decoders).

A source string containing ``!`` is a GStreamer pipeline, e.g. on a Jetson::

    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1
    ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1

OpenCV opens it with ``cv2.CAP_GSTREAMER`` and reads BGR frames from the final ``appsink``.
That needs an OpenCV built with GStreamer: JetPack's (``python3-opencv``) is; the pip wheels
(opencv-python, opencv-python-headless) are not, and are refused here with that explanation.
"""

from __future__ import annotations

import re

import cv2

from runtime.errors import SourceError
from runtime.sources.live import LiveSource, ReconnectPolicy

EXAMPLE = ("nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
           "video/x-raw,format=BGR ! appsink drop=1")


def is_gstreamer_pipeline(text: str) -> bool:
    """Whether a source string is a GStreamer pipeline: elements joined by ``!``, not a URL
    (``rtspsrc location=rtsp://... ! ...`` is a pipeline; ``rtsp://host/a!b`` is a URL)."""
    return "!" in text and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text)


def pipeline_elements(text: str) -> list[str]:
    """The element names of a pipeline, in order (``appsink drop=1`` -> ``appsink``).

    Raises ``SourceError`` for an empty element (``a ! ! b``) or a pipeline that does not end
    in ``appsink`` (OpenCV reads frames from it)."""
    parts = [part.strip() for part in text.split("!")]
    if any(not part for part in parts):
        raise SourceError(f"GStreamer pipeline {text!r} has an empty element between two '!'; "
                          f"example: {EXAMPLE!r}")
    names = [re.split(r"[\s,]", part, maxsplit=1)[0] for part in parts]
    if names[-1] != "appsink":
        raise SourceError(f"GStreamer pipeline {text!r} ends in {names[-1]!r}; OpenCV reads "
                          "frames from an appsink: end it with '! videoconvert ! "
                          "video/x-raw,format=BGR ! appsink drop=1'")
    return names


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV was built with GStreamer (its build information says YES)."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() == "YES"


def open_gstreamer(pipeline: str):
    """Capture factory for ``LiveSource``: the pipeline through OpenCV's GStreamer backend."""
    return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)


class GStreamerSource(LiveSource):
    """A GStreamer pipeline as a live source (reconnects like a camera when frames stop)."""

    def __init__(self, pipeline: str, *, reconnect: ReconnectPolicy | None = None,
                 capture_factory=open_gstreamer, **kwargs) -> None:
        pipeline_elements(pipeline)
        if capture_factory is open_gstreamer and not opencv_has_gstreamer():
            raise SourceError(
                "this OpenCV was built without GStreamer (the pip wheels opencv-python and "
                "opencv-python-headless never have it), so pipeline sources cannot be opened. "
                "On a Jetson use JetPack's OpenCV (sudo apt install python3-opencv, and "
                "pip uninstall opencv-python-headless in this environment); elsewhere build "
                "OpenCV with -DWITH_GSTREAMER=ON. `python -m visdeploy doctor` shows the build")
        super().__init__(pipeline, reconnect=reconnect, capture_factory=capture_factory,
                         **kwargs)

    def _open_error(self) -> str:
        return (f"GStreamer could not start {self.target!r}: test it with `gst-launch-1.0 "
                f"{self.target.rsplit('!', 1)[0].strip()} ! fakesink` (missing plugin, wrong "
                "caps or camera busy)")
