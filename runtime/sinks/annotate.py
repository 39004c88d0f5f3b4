"""Draw a ``FrameResult`` onto its frame: per-ID colours, masks, boxes, labels and scores."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from runtime import rle as rle_codec
from runtime.results import FrameResult

GOLDEN_RATIO = 0.618033988749895


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track ID (golden-ratio hue walk)."""
    hue = (track_id * GOLDEN_RATIO) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def annotate(result: FrameResult, *, alpha: float = 0.45, image: np.ndarray | None = None
             ) -> np.ndarray:
    """BGR uint8 ``[H, W, 3]``: ``result.image`` (or ``image``, RGB) with the tracks drawn."""
    rgb = image if image is not None else result.image
    if rgb is None:
        raise ValueError("annotate needs the frame: run the pipeline with keep_images=True")
    canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(0.35, min(canvas.shape[:2]) / 720)
    for record in result:
        colour = np.array(track_colour(record.track_id), np.float32)
        mask = record.mask if isinstance(record.mask, np.ndarray) else rle_codec.decode(record.mask)
        canvas[mask] = (canvas[mask] * (1 - alpha) + colour * alpha).astype(np.uint8)
        x0, y0, x1, y1 = (int(round(v)) for v in record.box)
        bgr = tuple(int(c) for c in colour)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), bgr, max(1, int(2 * scale)))
        text = f"#{record.track_id} {record.class_name} {record.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
        top = max(0, y0 - th - base - 2)
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 2, top + th + base + 2), bgr, -1)
        cv2.putText(canvas, text, (x0 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
