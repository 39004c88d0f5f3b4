"""Pure association helpers: similarity matrices, gated Hungarian assignment, mask NMS.

Every function takes arrays and returns arrays; none keeps state. Empty inputs are handled
first and give correctly shaped empty results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_INFEASIBLE = 1e6  # finite stand-in for gated pairs (scipy refuses all-inf rows)


def soft_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Soft IoU of mask probabilities: ``sum(p*q) / sum(p + q - p*q)`` (dense reference).

    Args: a ``float32 [N, P]``, b ``float32 [M, P]`` (flattened masks over the same pixels).
    Returns ``float32 [N, M]``; 0 where both masks are empty. Equals IoU for binary masks.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity ``float32 [N, M]`` of embeddings a ``[N, D]`` and b ``[M, D]``."""
    if len(a) == 0 or len(b) == 0 or a.shape[1] == 0:
        return np.zeros((len(a), len(b)), np.float32)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a @ b.T).astype(np.float32)


def label_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``float32 [N, M]``: 1 where labels a ``[N]`` and b ``[M]`` agree, else 0."""
    return (np.asarray(a)[:, None] == np.asarray(b)[None, :]).astype(np.float32)


def linear_assignment(cost: np.ndarray, *, max_cost: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows to columns, keeping pairs with cost <= max_cost.

    Args: cost ``float [N, M]``; ``inf``/``nan`` entries are never matched.
    Returns (matches ``int64 [L, 2]`` as (row, col), unmatched rows ``[N-L]``, unmatched cols
    ``[M-L]``), all sorted by index.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n), np.arange(m)
    allowed = np.isfinite(cost) & (cost <= max_cost)
    from scipy.optimize import linear_sum_assignment  # lazy: ~0.5 s import

    rows, cols = linear_sum_assignment(np.where(allowed, cost, _INFEASIBLE))
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    free_rows, free_cols = np.ones(n, bool), np.ones(m, bool)
    free_rows[matches[:, 0]] = False
    free_cols[matches[:, 1]] = False
    return matches, np.flatnonzero(free_rows), np.flatnonzero(free_cols)


def mask_nms(masks: PackedMasks, scores: np.ndarray, *, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices (by descending score) of the N masks kept after removing any mask
    whose video IoU with a higher-scored kept mask is >= ``iou_threshold``."""
    if len(masks) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    iou = packed_iou_matrix(masks)[np.ix_(order, order)]  # permute the matrix, not the masks
    keep: list[int] = []
    for i in range(len(order)):
        if not keep or iou[i, keep].max() < iou_threshold:
            keep.append(i)
    return order[keep].astype(np.int64)


def binary_subsample(masks: np.ndarray, stride: int, *, threshold: float = 0.5) -> np.ndarray:
    """bool masks: ``masks > threshold`` sampled every ``stride`` pixels on the last two axes
    (nearest-neighbour downsampling, so IoU stays exact on the sampled grid)."""
    return masks[..., ::stride, ::stride] > threshold


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits per uint8 element (numpy >= 2 has a ufunc; older ones use a lookup table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    return _POPCOUNT_TABLE[values]


_POPCOUNT_TABLE = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
_PAIR_CHUNK = 4096  # (pair, frame) rows intersected per vectorised step (bounded memory)


@dataclass(frozen=True)
class PackedMasks:
    """Bool masks ``[N, F, h, w]`` bit-packed along w, with per-frame boxes and areas.

    bits ``uint8 [N, F, h, ceil(w/8)]``; boxes ``int64 [N, F, 4]`` half-open (y0, x0, y1, x1),
    zeros when empty; areas ``int64 [N, F]``. Built once per window, reused by every stage.
    """

    bits: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray

    @classmethod
    def from_bool(cls, masks: np.ndarray) -> PackedMasks:
        h, w = masks.shape[2:]
        bits = np.packbits(masks, axis=-1)
        # row/column occupancy from the packed bits (8x less data than the bool masks)
        rows = bits.any(axis=3)
        cols = np.unpackbits(np.bitwise_or.reduce(bits, axis=2), axis=-1, count=w).astype(bool)
        boxes = np.stack([rows.argmax(axis=2), cols.argmax(axis=2),
                          h - rows[..., ::-1].argmax(axis=2),
                          w - cols[..., ::-1].argmax(axis=2)], axis=-1).astype(np.int64)
        boxes[~rows.any(axis=2)] = 0
        return cls(bits, boxes, _popcount(bits).sum(axis=(2, 3), dtype=np.int64))

    def row(self, index: int) -> PackedMasks:
        """Row ``index`` as a 1-row view (no copy)."""
        return PackedMasks(self.bits[index:index + 1], self.boxes[index:index + 1],
                           self.areas[index:index + 1])

    def __len__(self) -> int:
        return len(self.bits)

    @property
    def present(self) -> np.ndarray:
        """bool ``[N, F]``: mask non-empty."""
        return self.areas > 0

    def select(self, rows, frames=None) -> PackedMasks:
        """Subset of rows (and frames), numpy-style indices."""
        index = (rows,) if frames is None else np.ix_(np.asarray(rows), np.asarray(frames))
        return PackedMasks(self.bits[index], self.boxes[index], self.areas[index])

    @classmethod
    def concatenate(cls, parts: list[PackedMasks]) -> PackedMasks:
        return cls(*(np.concatenate([getattr(p, k) for p in parts])
                     for k in ("bits", "boxes", "areas")))


def packed_iou_matrix(a: PackedMasks, b: PackedMasks | None = None) -> np.ndarray:
    """Video IoU ``float32 [N, M]`` (intersections and unions summed over the F frames, as
    YTVIS). ``b=None`` compares ``a`` with itself (only pairs i < j are intersected).

    Only (pair, frame) combinations whose boxes meet are intersected, on bit-packed rows, so
    the cost follows the number of touching objects rather than N * M.
    """
    same = b is None
    b = a if same else b
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return np.zeros((n, m), np.float32)
    lo = np.maximum(a.boxes[:, None, :, :2], b.boxes[None, :, :, :2])  # [N, M, F, 2]
    hi = np.minimum(a.boxes[:, None, :, 2:], b.boxes[None, :, :, 2:])
    meet = np.all(hi > lo, axis=-1)
    if same:
        meet &= np.triu(np.ones((n, n), bool), k=1)[:, :, None]
    rows, cols, frames = np.nonzero(meet)
    inter = np.zeros(n * m, np.int64)
    for start in range(0, len(rows), _PAIR_CHUNK):
        r, c, f = (v[start:start + _PAIR_CHUNK] for v in (rows, cols, frames))
        counts = _popcount(a.bits[r, f] & b.bits[c, f]).sum(axis=(1, 2), dtype=np.int64)
        inter += np.bincount(r * m + c, weights=counts, minlength=n * m).astype(np.int64)
    inter = inter.reshape(n, m)
    if same:
        inter = inter + inter.T + np.diag(a.areas.sum(axis=1))
    union = a.areas.sum(axis=1)[:, None] + b.areas.sum(axis=1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float32)


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Video IoU ``float32 [N, M]`` of bool masks a ``[N, F, h, w]`` and b ``[M, F, h, w]``."""
    return packed_iou_matrix(PackedMasks.from_bool(a), PackedMasks.from_bool(b))
