"""COCO compressed RLE (the ``counts`` string of pycocotools) for YTVIS results.

pycocotools is used when importable (it is not a runtime dependency); otherwise a numpy encoder
produces the identical string (column-major runs, starting with zeros; LEB128-like 5-bit
groups offset by 48, counts after the second stored as a delta to the count two before).
"""

from __future__ import annotations

import numpy as np

try:  # optional accelerator, same output
    from pycocotools import mask as _coco_mask
except ImportError:  # pragma: no cover - depends on the install
    _coco_mask = None


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """bool ``[H, W]`` -> run lengths in column-major order, first run counts zeros."""
    flat = np.asarray(mask, bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(0, np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds)
    return np.concatenate([[0], counts]) if flat[0] else counts


def counts_to_string(counts: np.ndarray) -> str:
    """Run lengths -> COCO's compressed counts string (maskApi.c ``rleToString``)."""
    chars: list[str] = []
    for i, count in enumerate(counts.tolist()):
        x = count - counts[i - 2] if i > 2 else count
        x = int(x)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as in the C code on a signed long
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def string_to_counts(text: str) -> np.ndarray:
    """Inverse of ``counts_to_string`` (maskApi.c ``rleFrString``)."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return np.asarray(counts, np.int64)


def encode_numpy(mask: np.ndarray) -> dict:
    """bool ``[H, W]`` -> {"size": [H, W], "counts": str}, pure numpy."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(run_lengths(mask))}


def encode(mask: np.ndarray) -> dict:
    """bool ``[H, W]`` -> COCO compressed RLE with ``counts`` as str (JSON-ready)."""
    if _coco_mask is None:
        return encode_numpy(mask)
    rle = _coco_mask.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict) -> np.ndarray:
    """COCO compressed RLE (str or bytes counts) -> bool ``[H, W]``, pure numpy."""
    h, w = rle["size"]
    counts = rle["counts"]
    counts = string_to_counts(counts.decode("ascii") if isinstance(counts, bytes) else counts)
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts cover {flat.size} pixels, size says {h}x{w}={h * w}")
    return flat.reshape((w, h)).T


def area(rle: dict) -> int:
    """Foreground pixel count of a compressed RLE."""
    counts = rle["counts"]
    counts = string_to_counts(counts.decode("ascii") if isinstance(counts, bytes) else counts)
    return int(counts[1::2].sum())
