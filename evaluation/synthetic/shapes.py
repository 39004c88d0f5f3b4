"""Shape classes of the synthetic videos: unit polygons and exact rasterisation.

A shape is a polygon around the origin whose farthest vertex is at distance 1. Its pixels and
its mask come from the same ``cv2.fillPoly`` call (no anti-aliasing), so masks are exact.
"""

from __future__ import annotations

import cv2
import numpy as np

CATEGORIES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
"""Class names; the YouTube-VIS category id of ``CATEGORIES[i]`` is ``i + 1``."""

_SHIFT = 4  # fillPoly sub-pixel bits: vertex coordinates are multiples of 1/16 px


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def unit_polygon(category: str) -> np.ndarray:
    """Vertices ``float64[V, 2]`` (x, y) of ``category`` with circumradius 1."""
    if category == "circle":
        return _regular(48)
    if category == "square":
        return _regular(4, np.pi / 4)
    if category == "triangle":
        return _regular(3, -np.pi / 2)
    if category == "star":
        outer, inner = _regular(5, -np.pi / 2), 0.45 * _regular(5, -np.pi / 2 + np.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(10, 2)
    if category == "cross":
        a, b = 1 / np.sqrt(1 + 0.35**2), 0.35 / np.sqrt(1 + 0.35**2)
        quarter = np.array([[b, -a], [b, -b], [a, -b], [a, b]])
        rot = np.array([[0, -1], [1, 0]])
        parts = [quarter]
        for _ in range(3):
            parts.append(parts[-1] @ rot.T)
        return np.concatenate(parts)
    raise KeyError(f"unknown shape class {category!r}; known: {', '.join(CATEGORIES)}")


def unit_area(category: str) -> float:
    """Area of the unit polygon (shoelace), to size shapes by target pixel area."""
    x, y = unit_polygon(category).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def place(category: str, center: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Pixel-space vertices ``float64[V, 2]``: rotate by ``angle``, scale, translate."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return unit_polygon(category) @ rot.T * radius + np.asarray(center, dtype=np.float64)


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """``bool[H, W]`` mask of the filled polygon, clipped to the frame."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    points = np.round(polygon * (1 << _SHIFT)).astype(np.int32).reshape(1, -1, 2)
    cv2.fillPoly(canvas, points, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.astype(bool)
