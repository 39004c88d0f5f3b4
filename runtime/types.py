"""Data passed between runtime stages: a decoded ``Frame`` and one window's ``WindowInstances``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded source frame.

    Attributes:
        index: 0-based position in the stream (consecutive, also across camera reconnects).
        timestamp_s: seconds since the start of the stream (media time for files and folders,
            wall-clock time for live sources).
        image: uint8 ``[H, W, 3]`` RGB at source resolution.
    """

    index: int
    timestamp_s: float
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the source image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass(frozen=True)
class WindowInstances:
    """Chunk-local instances of one window, one row per instance (N rows).

    Shapes (T = frames in the window, h, w = model input H/4, W/4, C = classes, D = embedding):
        scores ``float32 [N]`` clip score of the row's label; labels ``int64 [N]``;
        class_scores ``float32 [N, C]`` best score per class over rows of the same query;
        masks ``float32 [N, T, h, w]`` probabilities in model-input coordinates;
        boxes ``float32 [N, T, 4]`` xyxy model-input pixels; embeddings ``float32 [N, D]``
        L2-normalised; query_index ``int64 [N]``.

    Index it like a numpy array (``inst[inst.scores > 0.5]``, ``inst[[2, 0]]``) to get a subset.
    """

    scores: np.ndarray
    labels: np.ndarray
    class_scores: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    embeddings: np.ndarray
    query_index: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.scores)
        fields = ("labels", "class_scores", "masks", "boxes", "embeddings", "query_index")
        for name in fields:
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"WindowInstances: {name} has {len(getattr(self, name))} rows, scores has {n}"
                )
        if self.masks.ndim != 4 or self.boxes.shape[1:] != (self.masks.shape[1], 4):
            raise ValueError(
                f"WindowInstances: expected masks [N, T, h, w] and boxes [N, T, 4], got "
                f"{self.masks.shape} and {self.boxes.shape}"
            )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> WindowInstances:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return WindowInstances(
            scores=self.scores[index],
            labels=self.labels[index],
            class_scores=self.class_scores[index],
            masks=self.masks[index],
            boxes=self.boxes[index],
            embeddings=self.embeddings[index],
            query_index=self.query_index[index],
        )

    @property
    def num_frames(self) -> int:
        return int(self.masks.shape[1])

    @classmethod
    def empty(
        cls, *, num_frames: int, mask_hw: tuple[int, int], num_classes: int, embedding_dim: int
    ) -> WindowInstances:
        """No instances, with the trailing shapes of a real window."""
        return cls(
            scores=np.zeros(0, np.float32),
            labels=np.zeros(0, np.int64),
            class_scores=np.zeros((0, num_classes), np.float32),
            masks=np.zeros((0, num_frames, *mask_hw), np.float32),
            boxes=np.zeros((0, num_frames, 4), np.float32),
            embeddings=np.zeros((0, embedding_dim), np.float32),
            query_index=np.zeros(0, np.int64),
        )
