"""Per-stage timing with bounded memory: running totals plus the latest samples for p95."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

STAGES = ("decode", "letterbox", "inference", "tracking", "paste", "sinks")


@dataclass
class _Series:
    samples: deque = field(default_factory=lambda: deque(maxlen=4096))
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.samples.append(value)
        self.total += value
        self.count += 1


class StageTimer:
    """Accumulates seconds per stage; ``latency`` samples are milliseconds per frame."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._series: dict[str, _Series] = {}

    @classmethod
    def combined(cls, timers) -> StageTimer:
        """One timer with every stage of ``timers``: totals and counts added, samples pooled
        (e.g. the streams of a multi-stream run, for one summary)."""
        merged = cls()
        for timer in timers:
            for name, series in timer._series.items():
                into = merged._series.setdefault(name, _Series(samples=deque()))
                into.samples.extend(series.samples)
                into.total += series.total
                into.count += series.count
        return merged

    def add(self, stage: str, seconds: float) -> None:
        self._series.setdefault(stage, _Series()).add(seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def total_s(self, stage: str) -> float:
        series = self._series.get(stage)
        return series.total if series else 0.0

    def latency_ms(self) -> tuple[float, float]:
        """(mean, 95th percentile) frame latency in ms over the recent samples."""
        series = self._series.get("latency")
        if not series or not series.count:
            return 0.0, 0.0
        return series.total / series.count * 1e3, float(np.percentile(series.samples, 95)) * 1e3

    def summary(self, frames: int) -> dict[str, dict[str, float]]:
        """stage -> {total_s, mean_ms (per call), p95_ms, fps (frames per stage-second)}."""
        out = {}
        for name, series in self._series.items():
            if name == "latency" or not series.count:
                continue
            out[name] = {
                "total_s": series.total,
                "mean_ms": series.total / series.count * 1e3,
                "p95_ms": float(np.percentile(series.samples, 95)) * 1e3,
                "fps": frames / series.total if series.total > 0 else float("inf"),
            }
        return out
