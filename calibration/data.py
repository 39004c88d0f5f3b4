"""Calibration windows: uint8 video windows prepared exactly as the runtime prepares them.

Frames come from the runtime's own sources (``runtime.sources.open_source``: video file, image
folder, glob, camera, stream URL), a generated dataset folder (``annotations.json`` + videos, as
written by ``python -m evaluation.synthetic``), or ``synthetic[:PRESET[:VIDEOS]]`` rendered in
memory. Each frame is letterboxed with ``runtime.windows.Letterbox`` (keep ratio, mean-colour
padding) and cut into windows by ``runtime.windows.Windower``; so the calibration input is the
same uint8 ``[T, H, W, 3]`` tensor the engine sees at run time. There is never a random fallback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.errors import CalibrationDataError
from calibration.progress import ProgressBar
from runtime.backends.base import engine_feeds
from runtime.errors import SourceError
from runtime.manifest import Manifest
from runtime.types import Frame
from runtime.windows import Letterbox, PreparedFrame, Windower, pad_cyclic

SYNTHETIC = "synthetic"
DEFAULT_SYNTHETIC_PRESET = "val"  # 360x640 like the deployment input
DEFAULT_SYNTHETIC_VIDEOS = 4
SYNTHETIC_SEED = 1234  # differs from the evaluation sets' default seed 0


@dataclass(frozen=True)
class Windows:
    """Engine inputs of N windows: ``frames`` uint8 ``[N, T, H, W, 3]`` RGB letterboxed like the
    runtime does, ``content_hw`` int32 ``[N, 2]`` the real image inside each letterbox.

    Index it along N (``w[:2]``, ``w[idx]``); ``feeds(names)`` yields one batch-1 feed dict per
    window for an engine with inputs ``names`` (``content_hw`` only when declared)."""

    frames: np.ndarray
    content_hw: np.ndarray

    def __post_init__(self) -> None:
        if self.frames.ndim != 5 or self.content_hw.shape != (len(self.frames), 2):
            raise ValueError(f"Windows need frames [N, T, H, W, 3] and content_hw [N, 2]; got "
                             f"{self.frames.shape} and {self.content_hw.shape}")

    @classmethod
    def unpadded(cls, frames: np.ndarray) -> Windows:
        """Windows whose images fill the whole input (no letterbox padding)."""
        return cls(frames, np.tile(np.asarray(frames.shape[2:4], np.int32), (len(frames), 1)))

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Windows]:
        """One-window ``Windows`` in order (batch 1, for ``backend.infer(w.frames, w.content_hw)``)."""
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index) -> Windows:
        index = [index] if isinstance(index, int | np.integer) else index
        return Windows(self.frames[index], self.content_hw[index])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.frames.shape

    def first_frames(self, t: int) -> Windows:
        """The same windows cut to their first ``t`` frames."""
        return Windows(self.frames[:, :t], self.content_hw)

    def feeds(self, input_names) -> Iterator[dict[str, np.ndarray]]:
        """One feed dict per window (batch 1) for an engine whose inputs are ``input_names``."""
        for frames, hw in zip(self.frames, self.content_hw, strict=True):
            yield engine_feeds(input_names, frames[None], hw[None])

    def stacked(self, input_names) -> dict[str, np.ndarray]:
        """All windows as one dict of arrays along N (calibrators that split it into steps)."""
        return engine_feeds(input_names, self.frames, self.content_hw)


@dataclass(frozen=True)
class CalibrationSet:
    """``windows``: the engine inputs (``Windows``); ``source`` describes where they came from;
    ``videos`` and ``frames`` count what was read."""

    windows: Windows
    source: str
    videos: int
    frames: int

    def __len__(self) -> int:
        return len(self.windows)

    def split(self, eval_count: int) -> tuple[CalibrationSet, CalibrationSet]:
        """(calibration, held-out evaluation) sets; evaluation takes every other window.

        With fewer than two windows both sets share the single window (said in ``source``).
        """
        n = len(self.windows)
        if n < 2:
            shared = CalibrationSet(self.windows, self.source + " (eval shares it)", self.videos,
                                    self.frames)
            return self, shared
        eval_idx = np.arange(1, n, 2)[:max(1, eval_count)]
        calib_idx = np.setdiff1d(np.arange(n), eval_idx)
        return (CalibrationSet(self.windows[calib_idx], self.source, self.videos, self.frames),
                CalibrationSet(self.windows[eval_idx], self.source, self.videos, self.frames))

    def summary(self) -> dict:
        n, t, h, w, _ = self.windows.shape
        return {"source": self.source, "windows": n, "frames_per_window": t,
                "input_hw": [h, w], "videos": self.videos, "frames_read": self.frames}


def letterbox_fill(manifest: Manifest) -> np.ndarray:
    """The padding colour, uint8 [3]: the manifest mean rounded (as ``runtime.Pipeline``)."""
    return np.clip(np.round(manifest.mean), 0, 255).astype(np.uint8)


def _synthetic_streams(spec: str) -> tuple[str, list]:
    """``synthetic[:PRESET[:VIDEOS]]`` -> (description, frame iterables rendered lazily)."""
    from evaluation.synthetic import generate_video, resolve_preset

    parts = spec.split(":")
    preset_name = parts[1] if len(parts) > 1 and parts[1] else DEFAULT_SYNTHETIC_PRESET
    try:
        videos = int(parts[2]) if len(parts) > 2 else DEFAULT_SYNTHETIC_VIDEOS
        preset = resolve_preset(preset_name)
    except (ValueError, RuntimeError) as err:
        raise CalibrationDataError(f"bad synthetic source {spec!r}: {err}; use "
                                   "synthetic[:PRESET[:VIDEOS]], e.g. synthetic:val:4") from err

    def render(index: int) -> Iterator[Frame]:
        video = generate_video(index, preset=preset, seed=SYNTHETIC_SEED)
        for f, image in enumerate(video.frames):
            yield Frame(f, f / 6.0, image)

    return (f"synthetic preset {preset_name}, {videos} videos, seed {SYNTHETIC_SEED}",
            [lambda i=i: render(i) for i in range(videos)])


def _dataset_streams(root: Path) -> tuple[str, list]:
    """A generated dataset folder: one runtime source per video (PNG frames if present)."""
    from runtime.sources import ImageSequenceSource, VideoFileSource

    gt = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    streams = []
    for video in gt.get("videos", []):
        pngs = [root / "frames" / name for name in video.get("file_names", [])]
        if pngs and all(p.is_file() for p in pngs):
            streams.append(lambda p=pngs, v=video: ImageSequenceSource(p, description=str(v["id"])))
        elif "mp4_file" in video:
            streams.append(lambda p=root / video["mp4_file"]: VideoFileSource(p))
    if not streams:
        raise CalibrationDataError(f"{root}/annotations.json lists no readable videos; "
                                   "regenerate it with python -m evaluation.synthetic")
    return f"dataset {root} ({len(streams)} videos)", streams


def open_streams(source: str | Path) -> tuple[str, list]:
    """(description, list of zero-argument callables each returning an iterable of Frames)."""
    text = str(source)
    if text == SYNTHETIC or text.startswith(SYNTHETIC + ":"):
        return _synthetic_streams(text)
    path = Path(text)
    if path.is_dir() and (path / "annotations.json").is_file():
        return _dataset_streams(path)
    from runtime.sources import open_source

    return text, [lambda: open_source(text)]


def _windows_of(frames, windower: Windower, fill: np.ndarray, input_hw, length: int,
                limit: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Letterbox ``frames`` and cut them into at most ``limit`` windows: (uint8 [T, H, W, 3],
    content (h, w))."""
    out, boxes = [], {}
    for frame in frames:
        box = boxes.get(frame.size) or boxes.setdefault(frame.size,
                                                        Letterbox.fit(frame.size, input_hw))
        window = windower.push(PreparedFrame(frame, box.apply(frame.image, fill), box))
        if window is not None:
            out.append((window.stack(), window.content_hw))
        if len(out) >= limit:
            return out
    last = windower.flush()
    if last is not None and len(out) < limit:
        out.append((pad_cyclic(last.stack(), length), last.content_hw))
    return out


def collect_windows(source: str | Path, manifest: Manifest, *, max_windows: int = 16,
                    length: int | None = None, stride: int | None = None,
                    progress: bool = True) -> CalibrationSet:
    """Read calibration windows from SOURCE, prepared like the runtime prepares them.

    Args:
        source: video file, image folder or glob, camera/URL, dataset folder, or
            ``synthetic[:PRESET[:VIDEOS]]``.
        manifest: the artifact's manifest (input size, mean colour, window length).
        max_windows: stop after this many windows, spread evenly over the videos.
        length: frames per window, >= 2 (default: the manifest's window length, or fixed T).
        stride: frames between window starts, < length (default: length - 1, the least overlap).

    Returns:
        CalibrationSet with windows uint8 [N, length, H, W, 3].

    Raises:
        CalibrationDataError: the source cannot be opened or yields no frame.
    """
    length = length or manifest.window_frames
    stride = stride or max(1, length - 1)
    if max_windows < 1 or not 1 <= stride < length:
        raise CalibrationDataError(f"need max_windows >= 1 and 1 <= stride < length, got "
                                   f"max_windows={max_windows}, length={length}, stride={stride}")
    description, streams = open_streams(source)
    per_video = math.ceil(max_windows / len(streams))
    fill, windows, frames = letterbox_fill(manifest), [], 0
    bar = ProgressBar("calibration windows", total=max_windows, enabled=progress)
    for open_stream in streams[:max_windows]:
        try:
            stream = open_stream()
        except SourceError as err:
            raise CalibrationDataError(f"calibration source {description}: {err}") from err
        counted = _Counted(stream)
        try:
            windows += _windows_of(counted, Windower(length, stride), fill, manifest.input_hw,
                                   length, min(per_video, max_windows - len(windows)))
        except SourceError as err:
            raise CalibrationDataError(f"calibration source {description}: {err}") from err
        finally:
            if hasattr(stream, "close"):
                stream.close()
        frames += counted.count
        bar.update(len(windows))
        if len(windows) >= max_windows:
            break
    bar.finish()
    if not windows:
        raise CalibrationDataError(
            f"no frames could be read from {description}; calibration needs real video frames "
            "(a video file, an image folder, a dataset folder or synthetic[:PRESET]) and never "
            "uses random data")
    stacked = Windows(np.stack([w for w, _ in windows]), np.array([hw for _, hw in windows], np.int32))
    return CalibrationSet(stacked, description, len(streams), frames)


class _Counted:
    """Iterate a frame source and count the frames read."""

    def __init__(self, frames) -> None:
        self.frames, self.count = frames, 0

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames:
            self.count += 1
            yield frame
