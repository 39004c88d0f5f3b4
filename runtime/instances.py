"""Engine outputs (DESIGN §4) -> one window's ``WindowInstances``.

Top-K may repeat a query with another label (TeViT's (query, label) pairs): rows of one query
become one instance whose ``class_scores`` hold each label's score, labelled by its best row.
"""

from __future__ import annotations

import numpy as np

from runtime.errors import ArtifactError
from runtime.types import WindowInstances


def decode_outputs(outputs: dict[str, np.ndarray], *, num_frames: int, num_classes: int,
                   min_score: float, batch_index: int = 0,
                   content_hw: tuple[int, int] | None = None) -> WindowInstances:
    """Rows of batch element ``batch_index`` with score >= ``min_score``, one per query.

    Only the first ``num_frames`` frames are kept (the rest were cyclic padding). Instances are
    ordered by descending score. With ``content_hw`` (the real image inside the letterbox, model
    pixels) mask cells wholly in the padding are zeroed: no tracker compares masks over padding
    (IFC's official near-online matching runs on unpadded frames, so its mask IoU covers the
    image only; zero cells add nothing to a soft IoU, which equals cropping).
    """
    scores = np.asarray(outputs["scores"][batch_index], np.float32)
    labels = np.asarray(outputs["labels"][batch_index], np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ArtifactError(f"engine label {labels.max()} is outside the manifest's "
                            f"{num_classes} classes; artifact and manifest.json disagree")
    queries = np.asarray(outputs["query_index"][batch_index], np.int64)
    rows = np.flatnonzero(scores >= min_score)
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    # np.unique's first index per query, over score-sorted rows, is the query's best row
    _, first, inverse = np.unique(queries[rows], return_index=True, return_inverse=True)
    class_scores = np.zeros((len(first), num_classes), np.float32)
    np.maximum.at(class_scores, (inverse.ravel(), labels[rows]), scores[rows])
    order = np.argsort(-scores[rows[first]], kind="stable")
    best = rows[first][order]
    masks = np.asarray(outputs["masks"][batch_index, best, :num_frames], np.float32)
    if content_hw is not None:
        masks = zero_padding_cells(masks, content_hw)
    return WindowInstances(
        scores=scores[best],
        labels=labels[best],
        class_scores=class_scores[order],
        masks=masks,
        boxes=np.asarray(outputs["boxes"][batch_index, best, :num_frames], np.float32),
        embeddings=np.asarray(outputs["embeddings"][batch_index, best], np.float32),
        query_index=queries[best],
    )


def zero_padding_cells(masks: np.ndarray, content_hw: tuple[int, int], stride: int = 4) -> np.ndarray:
    """float ``[..., h, w]`` masks at 1/``stride`` of the input -> a copy with the cells that lie
    wholly in the padding (rows >= ceil(H_c / stride), columns >= ceil(W_c / stride)) set to 0."""
    rows, cols = -(-content_hw[0] // stride), -(-content_hw[1] // stride)
    if rows >= masks.shape[-2] and cols >= masks.shape[-1]:
        return masks
    out = np.zeros_like(masks)
    out[..., :rows, :cols] = masks[..., :rows, :cols]
    return out
