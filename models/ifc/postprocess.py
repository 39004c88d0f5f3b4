"""From IFC's raw clip outputs to the engine contract (docs/contract.md §1), with fixed shapes.

Official per-clip semantics (``Ifc.inference_clip``): p = softmax over the C+1 logits; a query is
kept iff its argmax is not the no-object column; each kept query carries its C real-class
probabilities (the video level then emits every (track, class) with averaged p > 0.01). Here the
(query, class) pairs are ranked with kept queries first and the top K are exported: ``scores`` is
p(class) for kept queries and 0 for dropped ones (they fill the tail only when fewer than K pairs
exist; ranking them by p - 1 keeps the order deterministic instead of tying at 0).
Masks: mask logits at stride 8, bilinear ×2 (align_corners=False) to stride 4, sigmoid.
Boxes: ``models.common.box_ops.masks_to_boxes`` of the stride-4 masks (IFC has no box head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rank_pairs(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits Tensor[B, Q, C+1] -> (scores f32 [B, K], labels int64 [B, K], query int64 [B, K])."""
    prob = torch.softmax(logits, dim=-1)
    fg, no_object = prob[..., :-1], prob[..., -1:]
    num_classes = fg.shape[-1]
    # torch.max returns the first maximum, so a tie with no-object keeps the query (as official).
    keep = fg.amax(dim=-1, keepdim=True) >= no_object
    rank = torch.where(keep, fg, fg - 1.0).flatten(1)  # [B, Q·C]; dropped pairs rank below 0
    top, idx = torch.topk(rank, k, dim=1, largest=True, sorted=True)
    query = torch.div(idx, num_classes, rounding_mode="floor")
    return top.clamp(min=0.0), idx - query * num_classes, query


def gather_queries(x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """x Tensor[B, Q, D], query int64 [B, K] -> Tensor[B, K, D]."""
    return torch.gather(x, 1, query[..., None].expand(-1, -1, x.shape[-1]))


def upsample_masks(mask_logits: torch.Tensor) -> torch.Tensor:
    """Tensor[B, K, T, h8, w8] logits -> Tensor[B, K, T, 2·h8, 2·w8] probabilities."""
    b, k, _, h, w = mask_logits.shape
    up = F.interpolate(
        mask_logits.reshape(b * k, -1, h, w), size=(2 * h, 2 * w), mode="bilinear",
        align_corners=False,
    )
    return torch.sigmoid(up).reshape(b, k, -1, 2 * h, 2 * w)
