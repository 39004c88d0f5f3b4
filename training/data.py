"""Training clips from synthetic VIS videos, letterboxed exactly like the runtime does.

A pool of videos is rendered once (in memory); each sample is a T-frame clip at a random start
and frame step, with per-instance masks, boxes and presence per frame at model-input resolution.
With ``refresh_every`` the pool keeps changing: after every that many samples its oldest video
is replaced by a newly rendered, never-seen one, so a long run sees thousands of distinct videos
instead of memorising a fixed pool (each object's random colour and texture otherwise give its
class away on the training videos only; bench/RESULTS.md, VisTR session 8).
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
                 video_frames: int | None = None):
        if refresh_every < 0:
            raise ValueError(f"refresh_every must be >= 0 (0 keeps the pool fixed), got {refresh_every}")
        self.input_hw, self.clip_frames, self.max_step = input_hw, clip_frames, max_step
        self.fill = np.asarray(mean, dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.seed, self.refresh_every, self.samples = seed, refresh_every, 0
        h, w = render_hw or (input_hw[0] * 15 // 16, input_hw[1])  # 16:9 content, like the val set
        self.preset = resolve_preset("train", height=h - h % 2, width=w - w % 2, videos=pool_size,
                                     frames=video_frames)
        self.videos = []
        for i in range(pool_size):
            self.videos.append(generate_video(i, preset=self.preset, seed=seed))
            if verbose:
                print(f"\r[train] rendering synthetic videos {i + 1}/{pool_size}", end="", file=sys.stderr)
        if verbose:
            print(file=sys.stderr)
        self.box = Letterbox.fit(self.videos[0].frames.shape[1:3], input_hw)

    def _letterbox_masks(self, masks: np.ndarray) -> np.ndarray:
        """bool[N, T, h, w] -> bool[N, T, H, W] with the frames' letterbox geometry."""
        ch, cw = self.box.content_hw
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
        self.videos[index % len(self.videos)] = generate_video(index, preset=self.preset, seed=self.seed)

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
        frames = np.stack([self.box.apply(f, self.fill) for f in video.frames[index]])
        masks = self._letterbox_masks(video.masks[:, index])
        keep = masks.any(axis=(1, 2, 3))
        masks = masks[keep]
        labels = video.category_ids[keep].astype(np.int64) - 1
        if self.rng.random() < 0.5:  # horizontal flip inside the content area
            cw = self.box.content_hw[1]
            frames[:, :, :cw] = frames[:, :, :cw][:, :, ::-1]
            masks[..., :cw] = masks[..., :cw][..., ::-1]
        return Clip(frames, labels, masks, mask_boxes(masks), masks.any(axis=(2, 3)),
                    content_hw=self.box.content_hw)
