"""Training clips from synthetic VIS videos, letterboxed exactly like the runtime does.

A pool of videos is rendered once (in memory); each sample is a T-frame clip at a random start
and frame step, with per-instance masks, boxes and presence per frame at model-input resolution.
With ``refresh_every`` the pool keeps changing: after every that many samples its oldest video
is replaced by a newly rendered, never-seen one, so a long run sees thousands of distinct videos
instead of memorising a fixed pool (each object's random colour and texture otherwise give its
class away on the training videos only; docs/notes/lab-notebook.md, VisTR session 8).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import numpy as np

from evaluation.synthetic import generate_video, resolve_preset
from runtime.windows import Letterbox


@dataclass
class Clip:
    """One training clip: ``frames uint8[T, H, W, 3]``, ``labels int64[N]`` (0-based),
    ``masks bool[N, T, H, W]``, ``boxes float32[N, T, 4]`` xyxy, ``present bool[N, T]``,
    ``content_hw`` (h, w) of the real image inside the letterboxed frames (None = all of it)."""

    frames: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    present: np.ndarray
    content_hw: tuple[int, int] | None = None


def clips_content_hw(clips: list[Clip]) -> np.ndarray:
    """int32[B, 2]: each clip's real image size (the whole frame where a clip has none)."""
    return np.array([c.content_hw or c.frames.shape[1:3] for c in clips], np.int32)


def parse_aspects(text: str) -> tuple[tuple[int, int], ...] | None:
    """``"16:9,4:3"`` -> ((16, 9), (4, 3)); ``""`` -> None (the default 16:9 pool)."""
    if not text:
        return None
    aspects = []
    for part in text.split(","):
        w, _, h = part.strip().partition(":")
        if not (w.isdigit() and h.isdigit()) or int(w) == 0 or int(h) == 0:
            raise ValueError(f"aspect ratios are W:H pairs such as 16:9,4:3; got {part!r} in {text!r}")
        aspects.append((int(w), int(h)))
    return tuple(aspects)


def _fit_aspect(aspect: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """Render size (h, w) of a W:H video that fills the model input on its longer side."""
    (aw, ah), (h, w) = aspect, input_hw
    return (h, round(h * aw / ah)) if w * ah >= h * aw else (round(w * ah / aw), w)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (pixel edges) of bool[..., H, W] masks; zeros where empty."""
    rows, cols = masks.any(-1), masks.any(-2)
    h, w = masks.shape[-2:]
    y1 = np.where(rows.any(-1), rows.argmax(-1), 0)
    y2 = np.where(rows.any(-1), h - rows[..., ::-1].argmax(-1), 0)
    x1 = np.where(cols.any(-1), cols.argmax(-1), 0)
    x2 = np.where(cols.any(-1), w - cols[..., ::-1].argmax(-1), 0)
    return np.stack([x1, y1, x2, y2], -1).astype(np.float32)


class ClipSampler:
    """Random clips from a pool of rendered synthetic videos (deterministic by seed).

    ``refresh_every`` > 0 replaces the pool's oldest video by a new one (the next unused index of
    the ``train`` preset under ``seed``) after every that many samples; ``video_frames`` sets the
    rendered videos' length (default: the ``train`` preset's 36).
    """

    def __init__(self, *, input_hw: tuple[int, int], mean: tuple[float, float, float], clip_frames: int = 5,
                 pool_size: int = 120, render_hw: tuple[int, int] | None = None, seed: int = 0,
                 max_step: int = 2, verbose: bool = True, refresh_every: int = 0,
                 video_frames: int | None = None,
                 aspects: tuple[tuple[int, int], ...] | None = None):
        if refresh_every < 0:
            raise ValueError(f"refresh_every must be >= 0 (0 keeps the pool fixed), got {refresh_every}")
        self.input_hw, self.clip_frames, self.max_step = input_hw, clip_frames, max_step
        self.fill = np.asarray(mean, dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.seed, self.refresh_every, self.samples = seed, refresh_every, 0
        sizes = [render_hw or (input_hw[0] * 15 // 16, input_hw[1])]  # 16:9 content, like val
        if aspects:
            sizes = [_fit_aspect(a, input_hw) for a in aspects]
        self.presets = [resolve_preset("train", height=h - h % 2, width=w - w % 2,
                                       videos=pool_size, frames=video_frames) for h, w in sizes]
        self.preset = self.presets[0]
        self.videos = []
        for i in range(pool_size):
            self.videos.append(self._render(i))
            if verbose:
                print(f"\r[train] rendering synthetic videos {i + 1}/{pool_size}", end="", file=sys.stderr)
        if verbose:
            print(file=sys.stderr)

    def _render(self, index: int):
        """Video ``index`` of the pool's stream, at the aspect ratio its index selects."""
        return generate_video(index, preset=self.presets[index % len(self.presets)], seed=self.seed)

    def _letterbox_masks(self, masks: np.ndarray, box: Letterbox) -> np.ndarray:
        """bool[N, T, h, w] -> bool[N, T, H, W] with the frames' letterbox geometry."""
        ch, cw = box.content_hw
        out = np.zeros(masks.shape[:2] + self.input_hw, dtype=bool)
        for n in range(masks.shape[0]):
            for t in range(masks.shape[1]):
                out[n, t, :ch, :cw] = cv2.resize(masks[n, t].astype(np.uint8), (cw, ch),
                                                 interpolation=cv2.INTER_NEAREST) > 0
        return out

    @property
    def rendered(self) -> int:
        """How many distinct videos this sampler has rendered so far."""
        return len(self.videos) + (self.samples // self.refresh_every if self.refresh_every else 0)

    def _refresh(self) -> None:
        """Replace the oldest pool video by the next never-rendered one (round robin)."""
        index = self.rendered - 1  # the counter already includes this replacement
        self.videos[index % len(self.videos)] = self._render(index)

    def sample(self) -> Clip:
        self.samples += 1
        if self.refresh_every and self.samples % self.refresh_every == 0:
            self._refresh()
        video = self.videos[self.rng.integers(len(self.videos))]
        total = video.frames.shape[0]
        step = int(self.rng.integers(1, self.max_step + 1))
        span = (self.clip_frames - 1) * step + 1
        start = int(self.rng.integers(0, max(total - span, 0) + 1))
        index = np.minimum(start + step * np.arange(self.clip_frames), total - 1)
        box = Letterbox.fit(video.frames.shape[1:3], self.input_hw)
        frames = np.stack([box.apply(f, self.fill) for f in video.frames[index]])
        masks = self._letterbox_masks(video.masks[:, index], box)
        keep = masks.any(axis=(1, 2, 3))
        masks = masks[keep]
        labels = video.category_ids[keep].astype(np.int64) - 1
        if self.rng.random() < 0.5:  # horizontal flip inside the content area
            cw = box.content_hw[1]
            frames[:, :, :cw] = frames[:, :, :cw][:, :, ::-1]
            masks[..., :cw] = masks[..., :cw][..., ::-1]
        return Clip(frames, labels, masks, mask_boxes(masks), masks.any(axis=(2, 3)),
                    content_hw=box.content_hw)
