"""A small progress bar for calibration phases (windows read, variants measured).

On a terminal the line is redrawn in place; in logs (no TTY) a plain line is printed at most
every few seconds and once at the end, so CI output stays short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24


class ProgressBar:
    """``update(done)`` after each step, ``finish()`` at the end.

    Args:
        label: what is counted ("windows", "blocks").
        total: expected count, or None when unknown (a counter is shown instead of a bar).
        enabled: False silences it (tests, ``--quiet``).
    """

    def __init__(self, label: str, *, total: int | None, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval_s = 0.1 if self.tty else 5.0
        self.start = time.monotonic()
        self._last = float("-inf")
        self._done = 0

    def _line(self, done: int) -> str:
        elapsed = time.monotonic() - self.start
        if self.total:
            frac = min(done / self.total, 1.0)
            filled = int(frac * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            return f"{self.label} [{bar}] {done}/{self.total} ({elapsed:.1f} s)"
        return f"{self.label}: {done} ({elapsed:.1f} s)"

    def update(self, done: int) -> None:
        self._done = done
        now = time.monotonic()
        if not self.enabled or now - self._last < self.interval_s:
            return
        self._last = now
        self._emit(self._line(done))

    def _emit(self, line: str) -> None:
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def finish(self) -> None:
        if not self.enabled:
            return
        self._emit(self._line(self._done))
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
