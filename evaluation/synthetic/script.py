"""Scripts of synthetic videos: where each object is, how big, when it is shown.

A :class:`VideoScript` is pure geometry (no pixels); :mod:`evaluation.synthetic.render` turns it
into frames and exact masks. Objects move smoothly (constant velocity plus a small sinusoidal
wobble), bounce off the frame edges, change scale and rotate. Scripted events:

- ``enter``: starts outside the frame and moves in (bounces only once fully inside);
- ``leave``: starts inside and moves out for good;
- ``vanish``: disappears for ``g`` frames (not drawn at all) and comes back on its path;
- ``cross``: two objects of the same class and similar colour whose straight paths cross;
- ``grow``: area sweeps across the 128^2 and 256^2 buckets (when the frame is large enough),
  then stays large for a random share of the video (so its average area may be large);
- ``occlude``: a larger object drawn on top passes over a slow one (slight to severe occlusion).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from evaluation.synthetic.shapes import CATEGORIES, unit_area
from evaluation.synthetic.textures import BACKGROUNDS, TEXTURES

EVENTS: tuple[str, ...] = ("enter", "leave", "vanish", "cross", "grow", "occlude")


@dataclass(frozen=True)
class ObjectScript:
    """One object. ``centers float64[F, 2]`` (x, y) px, ``radii``/``angles float64[F]``,
    ``shown bool[F]`` (False while vanished). Larger ``z`` is drawn on top."""

    category: str
    color: tuple[int, int, int]
    texture: int
    texture_offset: tuple[int, int]
    z: int
    centers: np.ndarray
    radii: np.ndarray
    angles: np.ndarray
    shown: np.ndarray
    events: tuple[str, ...]


@dataclass(frozen=True)
class VideoScript:
    """A whole video: size, background index, background pan ``int64[F, 2]`` (dy, dx) offsets
    into a background of size ``(height + pad, width + pad)``, and the objects."""

    height: int
    width: int
    frames: int
    background: int
    pad: int
    pan: np.ndarray
    objects: tuple[ObjectScript, ...]


@dataclass(frozen=True)
class _Frame:
    height: int
    width: int
    frames: int

    @property
    def size(self) -> np.ndarray:
        return np.array([self.width, self.height], dtype=np.float64)


def _color(rng: np.random.Generator, hue: float | None = None) -> tuple[int, int, int]:
    hue = rng.uniform(0, 1) if hue is None else hue % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
    return int(255 * r), int(255 * g), int(255 * b)


def _radius(category: str, area: float) -> float:
    return float(np.sqrt(area / unit_area(category)))


def _random_area(rng: np.random.Generator, fr: _Frame) -> float:
    return float(np.exp(rng.uniform(np.log(0.008), np.log(0.08))) * fr.height * fr.width)


def _wobble(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    t = np.arange(frames)[:, None]
    omega, phase = rng.uniform(0.1, 0.4, size=2), rng.uniform(0, 2 * np.pi, size=2)
    return amplitude * np.sin(omega * t + phase)


def _simulate(start: np.ndarray, velocity: np.ndarray, radii: np.ndarray, fr: _Frame,
              wobble: np.ndarray, bounce: str) -> np.ndarray:
    """Centers ``[F, 2]``; ``bounce`` is 'always', 'after_inside' or 'never'."""
    p, v, seen_inside = start.astype(np.float64).copy(), velocity.astype(np.float64).copy(), False
    out = np.zeros((fr.frames, 2))
    for t in range(fr.frames):
        out[t] = p
        r = radii[t]
        seen_inside |= bool(np.all(p - r >= 0) and np.all(p + r <= fr.size))
        if bounce == "always" or (bounce == "after_inside" and seen_inside):
            low, high = (p - r < 0) & (v < 0), (p + r > fr.size) & (v > 0)
            v = np.where(low | high, -v, v)
        p = p + v + wobble[t]
    return out


def _object(rng: np.random.Generator, category: str, centers: np.ndarray, radii: np.ndarray,
            events: tuple[str, ...], color: tuple[int, int, int] | None = None,
            spin: float | None = None) -> ObjectScript:
    frames = len(centers)
    spin = rng.uniform(-0.08, 0.08) if spin is None else spin
    return ObjectScript(
        category=category, color=color or _color(rng), texture=int(rng.integers(len(TEXTURES))),
        texture_offset=(int(rng.integers(0, 256)), int(rng.integers(0, 256))), z=0,
        centers=centers, radii=radii, angles=rng.uniform(0, 2 * np.pi) + spin * np.arange(frames),
        shown=np.ones(frames, dtype=bool), events=events)


def _breathing(rng: np.random.Generator, category: str, area: float, frames: int) -> np.ndarray:
    amp, omega, phase = rng.uniform(0.0, 0.2), rng.uniform(0.05, 0.25), rng.uniform(0, 2 * np.pi)
    return _radius(category, area) * (1 + amp * np.sin(omega * np.arange(frames) + phase))


def _speed(rng: np.random.Generator, fr: _Frame) -> float:
    return float(rng.uniform(0.004, 0.015) * fr.width)


def _wander(rng: np.random.Generator, fr: _Frame, event: str = "wander") -> ObjectScript:
    category = str(rng.choice(CATEGORIES))
    radii = _breathing(rng, category, _random_area(rng, fr), fr.frames)
    r = radii.max()
    start = rng.uniform(np.minimum(r, fr.size / 2), np.maximum(fr.size - r, fr.size / 2))
    angle = rng.uniform(0, 2 * np.pi)
    velocity = _speed(rng, fr) * np.array([np.cos(angle), np.sin(angle)])
    centers = _simulate(start, velocity, radii, fr, _wobble(rng, fr.frames, 0.5), "always")
    return _object(rng, category, centers, radii, (event,))


def _enter(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    category = str(rng.choice(CATEGORIES))
    radii = _breathing(rng, category, _random_area(rng, fr), fr.frames)
    axis, side = int(rng.integers(2)), int(rng.integers(2))
    r = radii.max()
    start = rng.uniform(r, np.maximum(fr.size - r, r + 1))
    start[axis] = -1.1 * r if side == 0 else fr.size[axis] + 1.1 * r
    velocity = rng.uniform(-0.3, 0.3, size=2) * _speed(rng, fr)
    travel = (2.3 * r + rng.uniform(0, 0.1) * fr.size[axis]) / max(1.0, fr.frames / 3)
    velocity[axis] = travel if side == 0 else -travel
    centers = _simulate(start, velocity, radii, fr, _wobble(rng, fr.frames, 0.3), "after_inside")
    return [_object(rng, category, centers, radii, ("enter",))]


def _leave(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    category = str(rng.choice(CATEGORIES))
    radii = _breathing(rng, category, _random_area(rng, fr), fr.frames)
    axis, side, r = int(rng.integers(2)), int(rng.integers(2)), radii.max()
    start = fr.size * rng.uniform(0.25, 0.75, size=2)
    distance = (start[axis] if side == 0 else fr.size[axis] - start[axis]) + 1.2 * r
    velocity = rng.uniform(-0.2, 0.2, size=2) * _speed(rng, fr)
    speed = distance / max(1.0, rng.uniform(0.5, 0.8) * fr.frames)
    velocity[axis] = -speed if side == 0 else speed
    centers = _simulate(start, velocity, radii, fr, _wobble(rng, fr.frames, 0.3), "never")
    return [_object(rng, category, centers, radii, ("leave",))]


def _vanish(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    obj = _wander(rng, fr, "vanish")
    start = int(rng.integers(max(1, fr.frames // 4), max(2, fr.frames // 2)))
    gap = int(rng.integers(1, max(2, fr.frames // 4) + 1))
    shown = obj.shown.copy()
    shown[start:min(start + gap, fr.frames - 1)] = False
    return [replace(obj, shown=shown)]


def _cross(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    category, hue = str(rng.choice(CATEGORIES)), rng.uniform(0, 1)
    meet = fr.size * rng.uniform(0.4, 0.6, size=2)
    t_meet = fr.frames // 2
    theta = rng.uniform(0, 2 * np.pi)
    spread = rng.uniform(np.radians(100), np.radians(160))
    directions = np.array([[np.cos(theta), np.sin(theta)],
                           [np.cos(theta + spread), np.sin(theta + spread)]])
    r = _radius(category, _random_area(rng, fr))
    half = max(t_meet, fr.frames - 1 - t_meet, 1)
    room = float(np.min(np.concatenate([meet, fr.size - meet]))) - r
    speed = max(room, 0.0) * rng.uniform(0.6, 1.0) / half
    r = min(r, 0.45 * speed * 2 * np.sin(spread / 2) * max(t_meet, 1))  # apart at the ends
    r = max(r, 3.0)
    offset = rng.uniform(-0.3, 0.3, size=2) * r
    t = (np.arange(fr.frames) - t_meet)[:, None]
    spin = rng.uniform(-0.05, 0.05)
    return [_object(rng, category, meet + k * offset + t * speed * directions[k],
                    np.full(fr.frames, r), ("cross",), _color(rng, hue + 0.04 * k), spin)
            for k in range(2)]


def _grow(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    category = str(rng.choice(CATEGORIES))
    area_lo = min(9000.0, 0.03 * fr.height * fr.width)
    area_hi = max(0.45 * fr.height * fr.width, area_lo)
    ramp = rng.uniform(0.3, 1.0)  # share of the video spent growing; then it stays large
    s = np.clip(np.linspace(0, 1, fr.frames) / ramp, 0, 1)
    s = s * s * (3 - 2 * s)  # smoothstep
    if rng.integers(2):
        s = s[::-1]
    radii = _radius(category, 1.0) * np.sqrt(area_lo + (area_hi - area_lo) * s)
    start = fr.size * rng.uniform(0.45, 0.55, size=2)
    velocity = rng.uniform(-0.002, 0.002, size=2) * fr.width
    centers = _simulate(start, velocity, radii, fr, np.zeros((fr.frames, 2)), "never")
    return [_object(rng, category, centers, radii, ("grow",), spin=0.0)]


def _occlude(rng: np.random.Generator, fr: _Frame) -> list[ObjectScript]:
    below = _wander(rng, fr, "occluded")
    below = replace(below, centers=below.centers[:1] + 0.15 * (below.centers - below.centers[:1]))
    category = str(rng.choice(CATEGORIES))
    area = min(unit_area(below.category) * below.radii.max() ** 2 * rng.uniform(1.5, 2.5),
               0.08 * fr.height * fr.width)
    radii = _breathing(rng, category, area, fr.frames)
    t_meet = int(rng.integers(fr.frames // 3, max(fr.frames // 3 + 1, 2 * fr.frames // 3)))
    speed = 1.5 * _speed(rng, fr) * (1 if rng.integers(2) else -1)
    t = (np.arange(fr.frames) - t_meet)[:, None]
    centers = below.centers[t_meet] + t * np.array([speed, rng.uniform(-0.2, 0.2) * speed])
    return [below, _object(rng, category, centers, radii, ("occluder",))]


_EVENT_MAKERS = {"enter": _enter, "leave": _leave, "vanish": _vanish, "cross": _cross,
                 "grow": _grow, "occlude": _occlude}


def _assign_z(rng: np.random.Generator, objects: list[ObjectScript]) -> tuple[ObjectScript, ...]:
    order = rng.permutation(len(objects))
    z = {i: int(order[i]) for i in range(len(objects))}
    for i, obj in enumerate(objects):
        if "occluder" in obj.events:
            z[i] = len(objects) + i
    return tuple(replace(obj, z=z[i]) for i, obj in enumerate(objects))


def make_script(rng: np.random.Generator, *, height: int, width: int, frames: int,
                num_objects: int, events: tuple[str, ...] = ()) -> VideoScript:
    """Script one video: the ``events`` first (unknown names raise ``KeyError``), then
    wandering objects until ``num_objects`` objects exist (events may add more)."""
    fr = _Frame(height, width, frames)
    objects: list[ObjectScript] = []
    for event in events:
        objects.extend(_EVENT_MAKERS[event](rng, fr))
    while len(objects) < num_objects:
        objects.append(_wander(rng, fr))
    pad = max(8, int(0.1 * min(height, width)))
    end = rng.integers(0, pad + 1, size=2)
    pan = np.round(np.linspace(0, 1, frames)[:, None] * end[None, :]).astype(np.int64)
    return VideoScript(height=height, width=width, frames=frames,
                       background=int(rng.integers(len(BACKGROUNDS))), pad=pad, pan=pan,
                       objects=_assign_z(rng, objects))
