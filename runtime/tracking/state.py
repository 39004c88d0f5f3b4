"""Track states and the per-track summary the tracker keeps between windows."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from runtime.tracking.costs import PackedMasks


class TrackState(enum.Enum):
    """ACTIVE: matched in the latest window (has overlap masks). LOST: missed, kept for re-ID
    until its lifespan runs out. REMOVED: expired or evicted; its ID is never given again."""

    ACTIVE = "active"
    LOST = "lost"
    REMOVED = "removed"


@dataclass(eq=False)
class Track:
    """One identity across windows.

    Attributes:
        track_id: unique, never reused within a tracker.
        embedding: ``float32 [D]`` L2-normalised running average (EMA) of matched embeddings.
        class_score_sum: ``float32 [C]`` per-class score summed over matched windows.
        windows: number of windows the track was matched in.
        first_frame, last_frame: first and last frame index where its mask was present.
        masks: packed masks (1 row, T frames) from the latest matched window, at frames
            ``mask_frames`` (only while ACTIVE; dropped when lost to bound memory).
        box: ``float32 [4]`` last xyxy box in model-input pixels.
    """

    track_id: int
    embedding: np.ndarray
    class_score_sum: np.ndarray
    first_frame: int
    last_frame: int
    box: np.ndarray
    windows: int = 0
    state: TrackState = TrackState.ACTIVE
    masks: PackedMasks | None = None
    mask_frames: tuple[int, ...] = ()

    @property
    def label(self) -> int:
        """Class with the highest mean score over the track's life."""
        return int(self.class_score_sum.argmax())

    @property
    def score(self) -> float:
        """Mean score of ``label`` over matched windows."""
        return float(self.class_score_sum[self.label] / max(self.windows, 1))

    @property
    def class_scores(self) -> np.ndarray:
        """``float32 [C]`` mean per-class score over matched windows."""
        return self.class_score_sum / max(self.windows, 1)

    def observe(self, *, embedding: np.ndarray, class_scores: np.ndarray, masks: PackedMasks,
                boxes: np.ndarray, frames: list[int], momentum: float) -> None:
        """Fold in one window's instance: masks (1 row, T frames), boxes ``[T, 4]``."""
        if self.windows:
            blended = momentum * self.embedding + (1.0 - momentum) * embedding
        else:
            blended = np.asarray(embedding, np.float32)
        norm = float(np.sqrt(np.dot(blended, blended)))
        self.embedding = (blended / norm if norm > 0 else blended).astype(np.float32)
        self.class_score_sum = self.class_score_sum + class_scores
        self.windows += 1
        self.masks, self.mask_frames = masks, tuple(frames)
        present = np.flatnonzero(masks.areas[0])
        if len(present):
            if self.windows == 1:
                self.first_frame = frames[present[0]]
            self.last_frame = max(self.last_frame, frames[present[-1]])
            self.box = np.asarray(boxes[present[-1]], np.float32)
        self.state = TrackState.ACTIVE

    def mark_lost(self) -> None:
        self.state = TrackState.LOST
        self.masks, self.mask_frames = None, ()
