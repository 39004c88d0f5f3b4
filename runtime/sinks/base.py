"""Sink interface (``write(result)``, ``close()``), the writability probe and a callback sink."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runtime.errors import SinkError
from runtime.results import FrameResult


class Sink:
    """Receives every final ``FrameResult`` in frame order; ``close()`` flushes everything."""

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release; safe to call twice."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ensure_writable(path: str | Path) -> Path:
    """Fail now (``SinkError``) if ``path`` cannot be written, before any processing starts.

    Probes by opening the file for appending (then removes it if the probe created it), so
    read-only file systems, missing folders and permissions are all caught.
    """
    path = Path(path)
    if path.is_dir():
        raise SinkError(f"output {path} is a directory; give a file name")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        hint = ("create the folder first" if not path.parent.exists()
                else "choose a writable location")
        raise SinkError(f"cannot write output {path}: {err.strerror or err}; {hint}") from err
    if not existed:
        os.unlink(path)
    return path


class CallbackSink(Sink):
    """Calls ``callback(result)`` for every frame (for apps that want a push interface)."""

    def __init__(self, callback: Callable[[FrameResult], None]) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    def write(self, result: FrameResult) -> None:
        self.callback(result)
