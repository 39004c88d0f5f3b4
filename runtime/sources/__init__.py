"""Frame sources: ``open_source(SOURCE)`` picks camera, stream, file, folder or glob.

SOURCE forms: an int or ``"0"``/``"camera0"`` (OpenCV device index), ``rtsp://``, ``rtsps://``,
``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://`` URLs, a GStreamer pipeline (a string with
``!`` ending in ``appsink``; needs OpenCV built with GStreamer, see ``runtime.sources.gstreamer``),
a video file, a folder of images
(natural sort: ``2.png`` before ``10.png``), or a glob of images (``"clips/*.jpg"``).
An existing path always wins over the camera reading of a bare number.
"""

from __future__ import annotations

import re
from pathlib import Path

from runtime.errors import SourceError
from runtime.sources.base import FrameSource
from runtime.sources.files import IMAGE_EXTENSIONS, ImageSequenceSource, VideoFileSource
from runtime.sources.gstreamer import GStreamerSource, is_gstreamer_pipeline
from runtime.sources.live import LiveSource, ReconnectPolicy

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")

__all__ = ["FrameSource", "GStreamerSource", "ImageSequenceSource", "LiveSource", "ReconnectPolicy",
           "VideoFileSource", "open_source"]


def open_source(spec: int | str | Path, *, fps: float | None = None,
                reconnect: ReconnectPolicy | None = None) -> FrameSource:
    """Open SOURCE; raise ``SourceError`` saying what was wrong when it cannot be opened.

    ``fps`` sets the timestamps of folders/globs (default 30) and overrides a file's own rate.
    """
    if isinstance(spec, int):
        return LiveSource(spec, reconnect=reconnect)
    text = str(spec)
    path = Path(text)
    camera = re.fullmatch(r"(?:camera)?(\d+)", text)
    if camera and not path.exists():
        return LiveSource(int(camera.group(1)), reconnect=reconnect)
    if is_gstreamer_pipeline(text) and not path.exists():
        return GStreamerSource(text, reconnect=reconnect)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    if scheme:
        if scheme.group(1).lower() not in STREAM_SCHEMES:
            raise SourceError(f"unsupported URL scheme in {text!r}; use one of "
                              f"{', '.join(s + '://' for s in STREAM_SCHEMES)} or a local path")
        return LiveSource(text, reconnect=reconnect)
    if path.is_dir():
        return ImageSequenceSource.from_folder(path, fps=fps)
    if any(ch in text for ch in "*?["):
        return ImageSequenceSource.from_glob(text, fps=fps)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSequenceSource([path], description=f"image {path}", fps=fps)
    return VideoFileSource(path, fps=fps)
