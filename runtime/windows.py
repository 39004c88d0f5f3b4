"""Letterboxing into the model input and cutting the frame stream into overlapping windows.

Geometry (docs/contract.md §1): a frame is resized keep-ratio into (H, W) and padded bottom/right with
the mean colour, so model pixel ``x_m`` and source pixel ``x_s`` relate by ``x_m = x_s * scale``
(no offset). Masks come back at (H/4, W/4) and are mapped to the source in one affine warp.

Windows (docs/runtime.md): window k covers frames [k*S, k*S + T). The stream's last window is aligned
to the end (frames [n-T, n)) so every frame is covered by a full-length window when n >= T; a
stream shorter than T gives one short window. Frames before the next window's start are final.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from runtime.errors import ConfigError
from runtime.types import Frame

MASK_STRIDE = 4  # model masks are at 1/4 of the input resolution (docs/contract.md §1)


@dataclass(frozen=True)
class Letterbox:
    """Keep-ratio resize of a ``src_hw`` frame into ``dst_hw``, content at the top-left."""

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    scale: float

    @classmethod
    def fit(cls, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> Letterbox:
        if min(src_hw) <= 0:
            raise ValueError(f"letterbox: source size must be positive, got {src_hw}")
        scale = min(dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1])
        return cls(src_hw=tuple(src_hw), dst_hw=tuple(dst_hw), scale=scale)

    @property
    def content_hw(self) -> tuple[int, int]:
        """Size of the resized content inside the model input (the rest is padding)."""
        h = min(self.dst_hw[0], max(1, round(self.src_hw[0] * self.scale)))
        w = min(self.dst_hw[1], max(1, round(self.src_hw[1] * self.scale)))
        return h, w

    def apply(self, image: np.ndarray, fill: np.ndarray) -> np.ndarray:
        """uint8 ``[h, w, 3]`` source -> uint8 ``[H, W, 3]`` model input padded with ``fill``."""
        if image.shape[:2] != self.src_hw:
            raise ValueError(f"letterbox built for {self.src_hw}, got image {image.shape[:2]}")
        ch, cw = self.content_hw
        out = np.empty((*self.dst_hw, 3), np.uint8)
        out[...] = fill
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        out[:ch, :cw] = cv2.resize(image, (cw, ch), interpolation=interp)
        return out

    def mask_to_source(self, mask_prob: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
        """float ``[H/4, W/4]`` probability in model coordinates -> bool ``[h, w]`` at source size.

        Bilinear, pixel-centre aligned: source pixel centre ``x_s + 0.5`` sits at model
        coordinate ``(x_s + 0.5) * scale`` and at mask coordinate that over 4; padding is cut off.
        Only the region around the cells above ``threshold`` is warped (bilinear values can
        pass the threshold only next to such a cell), so cost follows the object's size.
        """
        a = self.scale / MASK_STRIDE
        h, w = self.src_hw
        out = np.zeros((h, w), bool)
        cells = np.asarray(mask_prob) > threshold
        rows, cols = np.flatnonzero(cells.any(axis=1)), np.flatnonzero(cells.any(axis=0))
        if not len(rows):
            return out
        # source pixels whose mask coordinate u = (x + 0.5) * a - 0.5 lies in (first-1, last+1)
        y0, y1 = _source_span(rows[0], rows[-1], a, h)
        x0, x1 = _source_span(cols[0], cols[-1], a, w)
        warp = np.array([[a, 0.0, (x0 + 0.5) * a - 0.5], [0.0, a, (y0 + 0.5) * a - 0.5]])
        prob = cv2.warpAffine(
            np.ascontiguousarray(mask_prob, np.float32), warp, (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
        out[y0:y1, x0:x1] = prob > threshold
        return out

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """float ``[..., 4]`` xyxy model pixels -> xyxy source pixels, clipped to the frame."""
        out = np.asarray(boxes, np.float32) / self.scale
        h, w = self.src_hw
        out[..., 0::2] = np.clip(out[..., 0::2], 0, w)
        out[..., 1::2] = np.clip(out[..., 1::2], 0, h)
        return out


def _source_span(first: int, last: int, a: float, size: int) -> tuple[int, int]:
    """Half-open source pixel range whose mask coordinate lies in (first - 1, last + 1)."""
    lo = int(np.floor((first - 0.5) / a - 0.5))
    hi = int(np.ceil((last + 1.5) / a - 0.5)) + 1
    return max(lo, 0), min(hi, size)


@dataclass(frozen=True)
class PreparedFrame:
    """A source frame with its letterboxed model input ``uint8 [H, W, 3]``; ``arrival_s``
    (``time.perf_counter()`` when it was decoded) starts its latency."""

    frame: Frame
    model_image: np.ndarray
    letterbox: Letterbox
    arrival_s: float | None = None


@dataclass(frozen=True)
class Window:
    """T consecutive prepared frames; ``overlap`` of them were already in the previous window."""

    frames: tuple[PreparedFrame, ...]
    overlap: int

    @property
    def start(self) -> int:
        return self.frames[0].frame.index

    @property
    def frame_indices(self) -> list[int]:
        return [p.frame.index for p in self.frames]

    def stack(self) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` model input of the window."""
        return np.stack([p.model_image for p in self.frames])

    @property
    def content_hw(self) -> tuple[int, int]:
        """(h, w) of the real image inside the window's letterboxed frames (the engine's
        ``content_hw`` row). Frames of one stream share it; where the source changed size inside
        the window, the largest content is taken so no frame's image is treated as padding."""
        sizes = np.array([p.letterbox.content_hw for p in self.frames])
        return int(sizes[:, 0].max()), int(sizes[:, 1].max())


def check_window(length: int, stride: int, *, max_frames: int | None = None) -> None:
    """Raise ``ConfigError`` unless 1 <= stride < length (<= max_frames)."""
    if not isinstance(length, int) or not isinstance(stride, int):
        raise ConfigError(f"window and stride must be integers, got {length!r}, {stride!r}")
    if not 1 <= stride < length:
        raise ConfigError(
            f"window={length} stride={stride}: need 1 <= stride < window so consecutive windows "
            f"overlap by at least one frame for linking (e.g. --window 5 --stride 3)"
        )
    if max_frames is not None and length > max_frames:
        raise ConfigError(
            f"window={length} is longer than the artifact accepts (frames.max={max_frames} in "
            f"manifest.json); use --window {max_frames} or less, or re-export with a larger range"
        )


class Windower:
    """Collects prepared frames and emits overlapping windows of ``length`` every ``stride``."""

    def __init__(self, length: int, stride: int) -> None:
        check_window(length, stride)
        self.length, self.stride = length, stride
        self.reset()

    def reset(self) -> None:
        self._buffer: deque[PreparedFrame] = deque()
        self._next_start = 0  # first frame of the next regular window
        self._covered_end = 0  # frames < this were in some emitted window
        self._count = 0

    @property
    def final_before(self) -> int:
        """Frames with index below this are covered by no future window."""
        return self._next_start

    def push(self, prepared: PreparedFrame) -> Window | None:
        """Add the next frame; return a window when one is complete."""
        if prepared.frame.index != self._count:
            raise ValueError(
                f"frames must arrive in order: expected {self._count}, got {prepared.frame.index}"
            )
        self._buffer.append(prepared)
        self._count += 1
        # Keep the last `length` frames (for the end-aligned final window) and all frames a
        # future regular window needs: at most `length` frames in all.
        while len(self._buffer) > self.length and self._buffer[0].frame.index < self._next_start:
            self._buffer.popleft()
        if self._count < self._next_start + self.length:
            return None
        window = self._emit(self._next_start)
        self._next_start += self.stride
        return window

    def flush(self) -> Window | None:
        """End of stream: the end-aligned window over frames no window covered yet (or None)."""
        window = None
        if self._count > self._covered_end:
            window = self._emit(max(0, self._count - self.length))
        self._buffer.clear()
        self._next_start = self._count
        return window

    def _emit(self, start: int) -> Window:
        frames = tuple(p for p in self._buffer if p.frame.index >= start)
        overlap = max(0, self._covered_end - start)
        self._covered_end = self._count
        return Window(frames=frames, overlap=overlap)


def pad_cyclic(frames: np.ndarray, target: int) -> np.ndarray:
    """uint8 ``[n, H, W, 3]`` -> ``[target, H, W, 3]`` repeating frames from the start (VisTR)."""
    n = len(frames)
    if n >= target:
        return frames
    return frames[np.arange(target) % n]
