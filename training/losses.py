"""Loss terms of the set-prediction criterion (torch): focal, box L1/GIoU, mask dice/BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Summed focal loss; logits and one-hot targets Tensor[..., C]."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    return (loss * (alpha * targets + (1 - alpha) * (1 - targets))).sum()


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU between every box of a Tensor[N, 4] and b Tensor[M, 4] -> Tensor[N, M]."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None] - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull.clamp(min=1e-6)


def paired_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of matching rows: Tensor[N, 4] x Tensor[N, 4] -> Tensor[N]."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a) + box_area(b) - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed dice loss over rows: Tensor[N, ...] logits and {0,1} targets (smoothing 1)."""
    prob = logits.sigmoid().flatten(1)
    tgt = targets.flatten(1)
    inter = (prob * tgt).sum(1)
    return (1 - (2 * inter + 1) / (prob.sum(1) + tgt.sum(1) + 1)).sum()


def mask_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row mean BCE, summed over rows."""
    return F.binary_cross_entropy_with_logits(logits.flatten(1), targets.flatten(1), reduction="none").mean(1).sum()
