"""Mask <-> RLE helpers on top of ``pycocotools.mask``.

Conventions: masks are ``bool[H, W]`` (or uint8), RLE dicts are ``{"size": [H, W], "counts": ...}``
with column-major (Fortran) run lengths, as in COCO and YouTube-VIS. ``counts`` is a ``str``
(compressed, what results files hold), ``bytes`` (pycocotools' native form) or a ``list[int]``
(uncompressed, what YouTube-VIS ground truth holds). Polygons are lists of flat ``[x0, y0, ...]``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]


def encode(mask: np.ndarray) -> RLE:
    """Compressed RLE of ``mask`` (``bool[H, W]``) with ``counts`` as ``str`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def encode_uncompressed(mask: np.ndarray) -> RLE:
    """Uncompressed RLE of ``mask`` (``bool[H, W]``): ``counts`` = run lengths, zeros first."""
    mask = np.asarray(mask, dtype=bool)
    flat = mask.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": runs}


def is_present(segmentation: Any) -> bool:
    """Official presence rule: a frame entry counts when it is truthy (``None``/``[]`` do not)."""
    return bool(segmentation)


def to_compressed(segmentation: Any, height: int, width: int) -> RLE:
    """Any YouTube-VIS frame entry -> pycocotools RLE (``counts`` as bytes).

    Polygons are rasterised at ``(height, width)`` and their parts merged; uncompressed RLE keeps
    its own ``size``; compressed RLE is returned with ``counts`` as bytes.
    """
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects(segmentation, *segmentation["size"])
    if isinstance(counts, str):
        return {"size": list(segmentation["size"]), "counts": counts.encode()}
    return segmentation


def decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode one frame entry (any form, or ``None`` for absent) to ``bool[H, W]``."""
    if not is_present(segmentation):
        return np.zeros((height, width), dtype=bool)
    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy-keyword notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(to_compressed(segmentation, height, width)).astype(bool)


def area(segmentation: Any, height: int, width: int) -> int:
    """Pixel count of one frame entry; 0 when absent."""
    if not is_present(segmentation):
        return 0
    return int(mask_utils.area(to_compressed(segmentation, height, width)))


def bbox(segmentation: Any, height: int, width: int) -> list[float] | None:
    """``[x, y, w, h]`` of one frame entry (pycocotools ``toBbox``), ``None`` when absent."""
    if not is_present(segmentation):
        return None
    return [float(v) for v in mask_utils.toBbox(to_compressed(segmentation, height, width))]
