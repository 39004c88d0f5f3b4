"""H.264 video files through PyAV (the ``video`` extra): overlays a browser plays.

OpenCV's pip wheels write MPEG-4 Part 2 (``mp4v``), which browsers do not play, and their
``avc1`` writer fails (no H.264 encoder in the wheel). PyAV's wheels bundle FFmpeg with
libx264, so ``pip install 'visdeploy[video]'`` is enough for H.264 in .mp4/.mkv/.mov.
Frames are encoded as yuv420p (the profile every browser decodes), so odd widths or heights
are padded by one replicated pixel; .mp4/.mov files get ``+faststart`` (playable while loading).
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import SinkError

ENCODER = "libx264"
FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}  # suffix -> FFmpeg muxer
H264_CONTAINERS = tuple(FORMATS)
INSTALL_HINT = "pip install 'visdeploy[video]' (PyAV, which bundles FFmpeg with libx264)"
X264_OPTIONS = {"crf": "23", "preset": "veryfast"}


def h264_unavailable(path: str | Path) -> str | None:
    """None when an H.264 file can be written at ``path``; else why not (one sentence)."""
    suffix = Path(path).suffix.lower()
    if suffix not in H264_CONTAINERS:
        return f"H.264 goes into {', '.join(H264_CONTAINERS)} files, not {suffix or 'no suffix'}"
    if importlib.util.find_spec("av") is None:
        return f"H.264 needs PyAV: {INSTALL_HINT}"
    import av

    try:
        av.codec.Codec(ENCODER, "w")
    except Exception:  # PyAV raises its own UnknownCodecError subclass, version-dependent
        return f"this PyAV's FFmpeg has no {ENCODER} encoder; reinstall PyAV from its wheels"
    return None


def _even(bgr: np.ndarray) -> np.ndarray:
    """Pad ``bgr [H, W, 3]`` by one replicated pixel at the bottom/right where H or W is odd."""
    h, w = bgr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return bgr
    return cv2.copyMakeBorder(bgr, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


class H264Writer:
    """``cv2.VideoWriter``-like (``write(bgr)``, ``release()``) H.264 writer for ``size``
    (width, height) frames at ``fps``; opens (and replaces) ``path`` at construction."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self.path = Path(path)
        muxer = FORMATS[self.path.suffix.lower()]
        options = {"movflags": "+faststart"} if muxer != "matroska" else {}
        try:  # opened here, not by FFmpeg at its first packet, so a missing folder fails now
            self._file = open(self.path, "w+b")  # +faststart reads it back
        except OSError as err:
            raise SinkError(f"cannot open the H.264 file {path}: {err.strerror or err}") from err
        try:
            self._container = av.open(self._file, "w", format=muxer, options=options)
        except av.FFmpegError as err:
            self._file.close()
            raise SinkError(f"cannot open an H.264 {muxer} file at {path}: {err}") from err
        width, height = size[0] + size[0] % 2, size[1] + size[1] % 2
        self._stream = self._container.add_stream(
            ENCODER, rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = dict(X264_OPTIONS)

    def write(self, bgr: np.ndarray) -> None:
        """Encode one BGR uint8 ``[H, W, 3]`` frame of the size given at construction."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(bgr)), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def release(self) -> None:
        """Flush the encoder and close the file; safe to call twice."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            try:
                container.close()
            finally:
                self._file.close()
