"""Progress output for ``python -m runtime.stream`` and the final summary table.

Files and folders (known length): a progress bar with frames, fps and ETA. Live sources: a
status line once a second. On a terminal the line is redrawn in place; otherwise (logs, CI) a
plain line is printed every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Call ``update`` after each frame result, ``finish`` at the end."""

    def __init__(self, *, total: int | None, label: str, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval_s = (0.1 if total else 1.0) if self.tty else 5.0
        self.start = time.monotonic()
        self._last = 0.0
        self._width = 0

    def update(self, frames: int, *, tracks: int, latency_ms: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.interval_s:
            return
        self._last = now
        fps = frames / max(now - self.start, 1e-9)
        if self.total:
            done = min(frames / self.total, 1.0)
            bar = "#" * int(done * BAR_WIDTH) + "." * (BAR_WIDTH - int(done * BAR_WIDTH))
            eta = (self.total - frames) / fps if fps > 0 else 0.0
            line = (f"[{bar}] {done:4.0%} {frames}/{self.total} frames  {fps:5.1f} fps  "
                    f"ETA {_clock(eta)}  {tracks} tracks")
        else:
            line = (f"{self.label}: {frames} frames  {fps:5.1f} fps  {tracks} tracks  "
                    f"latency {latency_ms:.0f} ms  up {_clock(now - self.start)}")
        self._emit(line)

    def _emit(self, line: str) -> None:
        if self.tty:
            pad = " " * max(0, self._width - len(line))
            self.stream.write("\r" + line + pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


def format_summary(summary: dict, *, wall_s: float, interrupted: bool = False,
                   failed: bool = False, outputs: list[str] | tuple[str, ...] = ()) -> str:
    """Human-readable summary: frames, tracks, latency, frames/s per stage, then one line per
    output (``outputs``). ``summary["frames"]`` must count frames that reached the outputs;
    ``failed``: a processing error ended the run."""
    frames = summary["frames"]
    status = "Stopped by an error" if failed else "Stopped (Ctrl-C)" if interrupted else "Done"
    lines = [
        f"{status}: {frames} frames in {wall_s:.1f} s "
        f"({frames / max(wall_s, 1e-9):.1f} frames/s end to end), {summary['tracks']} tracks",
        f"Latency per frame: mean {summary['latency_mean_ms']:.1f} ms, "
        f"p95 {summary['latency_p95_ms']:.1f} ms",
        *([f"Backend: {summary['backend']}"] if summary.get("backend") else []),
        f"{'stage':<10} {'total s':>8} {'ms/call':>8} {'p95 ms':>8} {'frames/s':>9}",
    ]
    for name, stats in summary["stages"].items():
        lines.append(f"{name:<10} {stats['total_s']:8.2f} {stats['mean_ms']:8.2f} "
                     f"{stats['p95_ms']:8.2f} {stats['fps']:9.1f}")
    lines += [f"output {line}" for line in outputs]
    return "\n".join(lines)


class Spinner:
    """Shows that one long step is alive (``with Spinner("Exporting ONNX"): ...``).

    On a terminal a spinner and the elapsed seconds are redrawn in place ten times a second and
    cleared at the end; elsewhere (logs, CI) a ``<label>: still running (N s)`` line is printed
    every ``interval_s``. A daemon thread draws, so the step itself needs no calls.
    """

    FRAMES = "|/-\\"

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True,
                 interval_s: float = 30.0) -> None:
        import threading

        self.label, self.enabled = label, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval_s = 0.1 if self.tty else interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._draw, daemon=True, name="spinner")
        self._width = 0

    def __enter__(self) -> Spinner:
        self.start = time.monotonic()
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

    def _draw(self) -> None:
        tick = 0
        while not self._done.wait(self.interval_s):
            elapsed = time.monotonic() - self.start
            if self.tty:
                line = f"{self.FRAMES[tick % len(self.FRAMES)]} {self.label}  {elapsed:.0f} s"
                self.stream.write("\r" + line.ljust(self._width))
                self._width = max(self._width, len(line))
            else:
                self.stream.write(f"{self.label}: still running ({elapsed:.0f} s)\n")
            self.stream.flush()
            tick += 1
