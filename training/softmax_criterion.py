"""The DETR-family pieces IFC and VisTR share: softmax class loss with a down-weighted no-object
column, mask focal/dice terms on flattened clip masks, and their matching costs.

Shapes: P predictions, N ground-truth instances, C real classes (+1 no-object column, last).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EOS_COEF = 0.1  # official DETR/VisTR/IFC weight of the no-object class in the cross-entropy


def no_object_ce(logits: torch.Tensor, targets: torch.Tensor, eos_coef: float = EOS_COEF) -> torch.Tensor:
    """Weighted-mean cross-entropy; logits Tensor[..., C+1], targets int64[...] (C = no-object)."""
    weight = torch.ones(logits.shape[-1], dtype=logits.dtype)
    weight[-1] = eos_coef
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), weight=weight)


def mask_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """DETR's mask focal loss: per-row mean over pixels, summed over rows. Tensor[N, D] each."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss.mean(1).sum()


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - dice between every predicted mask and every target: Tensor[P, D] x Tensor[N, D] -> [P, N]."""
    prob = logits.sigmoid()
    inter = prob @ targets.T
    return 1 - (2 * inter + 1) / (prob.sum(1)[:, None] + targets.sum(1)[None] + 1)


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """{0,1} Tensor[N, T, H, W] -> soft Tensor[N, T, h, w] by area averaging (prediction grid)."""
    n, t = masks.shape[:2]
    if n == 0:
        return masks.new_zeros(0, t, *size)
    return F.interpolate(masks.reshape(n * t, 1, *masks.shape[2:]).float(), size=size, mode="area").reshape(n, t, *size)
