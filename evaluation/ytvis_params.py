"""Parameters of the official YouTube-VIS scorer (``Params.setDetParams``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _linspace(start: float, stop: float, step: float) -> np.ndarray:
    """Official threshold grid: linspace with an integer count (never arange), read-only."""
    grid = np.linspace(start, stop, int(np.round((stop - start) / step)) + 1, endpoint=True)
    grid.setflags(write=False)
    return grid


@dataclass(frozen=True)
class Params:
    """IoU thresholds ``[T]``, recall points ``[R]``, maxDets ``[M]`` and area ranges ``[A]``.

    Area ranges apply to the track's average per-frame area, bounds inclusive:
    all [0, 1e10], small [0, 128^2], medium [128^2, 256^2], large [256^2, 1e10].
    """

    iou_thresholds: np.ndarray = field(default_factory=lambda: _linspace(0.5, 0.95, 0.05))
    recall_thresholds: np.ndarray = field(default_factory=lambda: _linspace(0.0, 1.0, 0.01))
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_ranges: tuple[tuple[float, float], ...] = (
        (0.0**2, 1e5**2), (0.0**2, 128.0**2), (128.0**2, 256.0**2), (256.0**2, 1e5**2))
    area_labels: tuple[str, ...] = ("all", "small", "medium", "large")
