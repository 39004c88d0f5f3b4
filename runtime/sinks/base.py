"""Sink interface (``write(result)``, ``close()``), the writability probe and a callback sink.

File sinks never truncate or replace an earlier output before they have a frame to write: a
run that fails before its first result leaves every earlier output as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runtime.errors import SinkError
from runtime.results import FrameResult

TEMP_SUFFIX = ".tmp"


class Sink:
    """Receives every final ``FrameResult`` in frame order; ``close()`` flushes everything."""

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release; safe to call twice. Raises ``SinkError`` when the output could
        not be finalised."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def temp_path(path: str | Path) -> Path:
    """The temporary file a sink writes before replacing ``path`` with it atomically."""
    path = Path(path)
    return path.with_name(path.name + TEMP_SUFFIX)


def ensure_writable(path: str | Path, *, temp_for: Path | None = None) -> Path:
    """Fail now (``SinkError``) if ``path`` cannot be written, before any processing starts.

    Probes by opening the file for appending (then removes it if the probe created it), so
    read-only file systems and folders, missing folders and permissions are all caught; the
    content of an existing file is not touched. ``temp_for``: ``path`` is the temporary file
    that will replace that output (the message says so).
    """
    path = Path(path)
    if path.is_dir():
        raise SinkError(f"output {path} is a directory; give a file name")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise SinkError(_refusal(path, err.strerror or str(err), temp_for)) from err
    if not existed:
        os.unlink(path)
    return path


def _refusal(path: Path, reason: str, temp_for: Path | None) -> str:
    if not path.parent.exists():
        return f"cannot write output {path}: {reason}; create the folder first"
    if temp_for is not None:
        return (f"cannot create {path}, the temporary file that replaces {temp_for} when the "
                f"run ends: {reason}; the folder {path.parent} must be writable (not only "
                f"{temp_for.name}), or choose another location")
    return f"cannot write output {path}: {reason}; choose a writable location"


class CallbackSink(Sink):
    """Calls ``callback(result)`` for every frame (for apps that want a push interface)."""

    def __init__(self, callback: Callable[[FrameResult], None]) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    def write(self, result: FrameResult) -> None:
        self.callback(result)
