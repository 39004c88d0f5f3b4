"""``FrameResult``: what the pipeline returns for each frame, one row per visible track.

Columnar like supervision's Detections: index it with a numpy index (``res[res.scores > .5]``)
for a subset; iterate it for one ``TrackRecord`` per track.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TrackRecord:
    """One track in one frame. ``mask`` is bool ``[H, W]`` or a COCO RLE dict (mask_format)."""

    track_id: int
    label: int
    class_name: str
    score: float
    box: np.ndarray
    mask: np.ndarray | dict


@dataclass(frozen=True)
class FrameResult:
    """Tracks visible in frame ``index`` at source resolution ``size = (H, W)``.

    Columns (N tracks, C classes): track_ids ``int64 [N]``, labels ``int64 [N]`` (track's label),
    scores ``float32 [N]`` (track score: mean over its windows), boxes ``float32 [N, 4]`` xyxy
    source pixels, masks ``bool [N, H, W]`` or ``None`` when ``rles`` (COCO compressed RLE
    dicts) are given instead, class_scores ``float32 [N, C]`` (this frame's per-class scores,
    used by benchmark mode). ``image`` is the RGB source frame (or None), ``latency_ms`` the
    time from reading the frame to this result.
    """

    index: int
    timestamp_s: float
    size: tuple[int, int]
    class_names: tuple[str, ...]
    track_ids: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    class_scores: np.ndarray
    masks: np.ndarray | None = None
    rles: tuple[dict, ...] | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.track_ids)
        columns = {"labels": self.labels, "scores": self.scores, "boxes": self.boxes,
                   "class_scores": self.class_scores}
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"FrameResult: {name} has {len(column)} rows, track_ids {n}")
        if (self.masks is None) == (self.rles is None):
            raise ValueError("FrameResult: give exactly one of masks or rles")
        if self.masks is not None and self.masks.shape != (n, *self.size):
            raise ValueError(f"FrameResult: masks must be [{n}, {self.size[0]}, "
                             f"{self.size[1]}], got {self.masks.shape}")
        if self.rles is not None and len(self.rles) != n:
            raise ValueError(f"FrameResult: {len(self.rles)} RLEs for {n} tracks")

    def __len__(self) -> int:
        return len(self.track_ids)

    def __getitem__(self, index) -> FrameResult:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        picked = np.arange(len(self))[index]
        return FrameResult(
            index=self.index, timestamp_s=self.timestamp_s, size=self.size,
            class_names=self.class_names, track_ids=self.track_ids[picked],
            labels=self.labels[picked], scores=self.scores[picked], boxes=self.boxes[picked],
            class_scores=self.class_scores[picked],
            masks=None if self.masks is None else self.masks[picked],
            rles=None if self.rles is None else tuple(self.rles[i] for i in picked),
            image=self.image, latency_ms=self.latency_ms,
        )

    def __iter__(self) -> Iterator[TrackRecord]:
        for i in range(len(self)):
            yield TrackRecord(
                track_id=int(self.track_ids[i]), label=int(self.labels[i]),
                class_name=self.class_names[int(self.labels[i])], score=float(self.scores[i]),
                box=self.boxes[i], mask=self.masks[i] if self.masks is not None else self.rles[i],
            )

    def to_supervision(self):
        """This frame as ``supervision.Detections`` (xyxy, mask, confidence, class_id,
        tracker_id, ``data["class_name"]``); needs ``pip install 'visdeploy[interop]'``.
        See ``runtime.interop.to_supervision``."""
        from runtime.interop import to_supervision

        return to_supervision(self)

    @classmethod
    def empty(cls, index: int, timestamp_s: float, size: tuple[int, int],
              class_names: tuple[str, ...], *, rle: bool = False,
              image: np.ndarray | None = None) -> FrameResult:
        """A frame with no tracks."""
        return cls(
            index=index, timestamp_s=timestamp_s, size=size, class_names=class_names,
            track_ids=np.zeros(0, np.int64), labels=np.zeros(0, np.int64),
            scores=np.zeros(0, np.float32), boxes=np.zeros((0, 4), np.float32),
            class_scores=np.zeros((0, len(class_names)), np.float32),
            masks=None if rle else np.zeros((0, *size), bool), rles=() if rle else None,
            image=image,
        )
