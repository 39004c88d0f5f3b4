"""Render a :class:`VideoScript` into RGB frames and exact visible masks.

Per frame: crop the panning background, rasterise every shown object once, paint objects bottom
to top (increasing ``z``) with their textured colour exactly on their mask, then derive visible
masks top to bottom (``visible = full & ~covered``). Pixels and masks therefore agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.synthetic.script import ObjectScript, VideoScript
from evaluation.synthetic.shapes import CATEGORIES, place, rasterize
from evaluation.synthetic.textures import TextureBank

OCCLUSION_LABELS = ("no_occlusion", "slight_occlusion", "severe_occlusion")
"""OVIS labels: occluded fraction 0, in (0, 0.5], above 0.5 (of the in-frame shape area)."""


@dataclass
class SyntheticVideo:
    """One rendered video.

    ``frames uint8[F, H, W, 3]`` RGB (``None`` when rendered without pixels),
    ``masks bool[N, F, H, W]`` visible (after occlusion, clipped to the frame),
    ``full_areas``/``visible_areas int64[N, F]`` in-frame area before / after occlusion,
    ``category_ids int64[N]``
    (1-based into :data:`CATEGORIES`), ``script`` the geometry it came from.
    """

    frames: np.ndarray | None
    masks: np.ndarray
    full_areas: np.ndarray
    visible_areas: np.ndarray
    category_ids: np.ndarray
    script: VideoScript

    @property
    def visibility(self) -> np.ndarray:
        """``float64[N, F]`` visible / in-frame area, 0 where the shape is not in the frame."""
        full = self.full_areas.astype(np.float64)
        return np.divide(self.visible_areas, full, out=np.zeros_like(full), where=full > 0)

    def occlusion_labels(self) -> list[list[str | None]]:
        """Per object, per frame: an OVIS occlusion label, ``None`` when not visible."""
        vis, present = self.visibility, self.visible_areas > 0
        out = []
        for n in range(vis.shape[0]):
            row = []
            for f in range(vis.shape[1]):
                occluded = 1.0 - vis[n, f]
                label = 0 if vis[n, f] >= 1.0 else (1 if occluded <= 0.5 else 2)
                row.append(OCCLUSION_LABELS[label] if present[n, f] else None)
            out.append(row)
        return out


def _paint(canvas: np.ndarray, mask: np.ndarray, window: tuple[int, int, int, int],
           obj: ObjectScript, center: np.ndarray, texture: np.ndarray) -> None:
    """Write the object's textured colour into ``canvas[H, W, 3]`` exactly where ``mask``;
    ``window`` = (y0, y1, x0, x1) bounds the mask's pixels. The texture moves with the object."""
    y0, y1, x0, x1 = window
    if y1 <= y0 or x1 <= x0:
        return
    cy, cx = int(round(center[1])), int(round(center[0]))
    rows = (np.arange(y0, y1) - cy + obj.texture_offset[0]) % texture.shape[0]
    cols = (np.arange(x0, x1) - cx + obj.texture_offset[1]) % texture.shape[1]
    shade = 0.5 + 0.5 * texture[np.ix_(rows, cols)]
    colour = np.asarray(obj.color, dtype=np.float32)[None, None, :] * shade[:, :, None]
    inside = mask[y0:y1, x0:x1]
    canvas[y0:y1, x0:x1][inside] = np.clip(colour[inside], 0, 255).astype(np.uint8)


def _frame_masks(script: VideoScript, f: int, order: list[int]
                 ) -> dict[int, tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Full (pre-occlusion) in-frame masks of the objects shown at frame ``f``, each with a
    window (y0, y1, x0, x1) that contains all its pixels."""
    out = {}
    for i in order:
        obj = script.objects[i]
        if obj.shown[f]:
            polygon = place(obj.category, obj.centers[f], obj.radii[f], obj.angles[f])
            low, high = np.floor(polygon.min(axis=0)) - 1, np.ceil(polygon.max(axis=0)) + 2
            x0, y0 = (int(v) for v in np.clip(low, 0, [script.width, script.height]))
            x1, y1 = (int(v) for v in np.clip(high, 0, [script.width, script.height]))
            out[i] = rasterize(polygon, script.height, script.width), (y0, y1, x0, x1)
    return out


def render_video(script: VideoScript, bank: TextureBank | None = None, *,
                 pixels: bool = True) -> SyntheticVideo:
    """Render ``script``; with ``pixels=False`` only masks are computed (no textures needed)."""
    n, frames, h, w = len(script.objects), script.frames, script.height, script.width
    if pixels and bank is None:
        bank = TextureBank()
    masks = np.zeros((n, frames, h, w), dtype=bool)
    full_areas = np.zeros((n, frames), dtype=np.int64)
    visible_areas = np.zeros((n, frames), dtype=np.int64)
    video = np.zeros((frames, h, w, 3), dtype=np.uint8) if pixels else None
    order = sorted(range(n), key=lambda i: script.objects[i].z)  # bottom to top
    if pixels:
        background = bank.background(script.background, h + script.pad, w + script.pad)
        textures = [bank.texture(obj.texture) for obj in script.objects]
    for f in range(frames):
        full = _frame_masks(script, f, order)
        if pixels:
            dy, dx = script.pan[f]
            canvas = background[dy:dy + h, dx:dx + w].copy()
            for i in order:
                if i in full:
                    _paint(canvas, *full[i], script.objects[i], script.objects[i].centers[f],
                           textures[i])
            video[f] = canvas
        covered = np.zeros((h, w), dtype=bool)
        for i in reversed(order):
            if i in full:
                mask = full[i][0]
                full_areas[i, f] = int(mask.sum())
                masks[i, f] = mask & ~covered
                visible_areas[i, f] = int(masks[i, f].sum())
                covered |= mask
    category_ids = np.array([CATEGORIES.index(o.category) + 1 for o in script.objects],
                            dtype=np.int64)
    return SyntheticVideo(frames=video, masks=masks, full_areas=full_areas,
                          visible_areas=visible_areas, category_ids=category_ids, script=script)
