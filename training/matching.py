"""Video-level Hungarian matching of queries to ground-truth instances (scipy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from training.losses import pairwise_giou


@dataclass(frozen=True)
class MatchWeights:
    """Cost weights (TeViT's assigner: focal class 2, L1 5, GIoU 2)."""

    cls: float = 2.0
    l1: float = 5.0
    giou: float = 2.0


def focal_class_cost(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal classification cost: logits Tensor[P, C], labels int64[N] -> Tensor[P, N]."""
    prob = logits.sigmoid()[:, labels]
    neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    return pos - neg


@torch.no_grad()
def match_clip(logits: torch.Tensor, boxes: torch.Tensor, gt_labels: torch.Tensor, gt_boxes: torch.Tensor,
               gt_present: torch.Tensor, image_whwh: torch.Tensor, weights: MatchWeights = MatchWeights()):
    """Match P queries to N instances of one clip; costs summed over the frames where each GT exists.

    Args:
        logits: Tensor[T, P, C] per-frame class logits.
        boxes: Tensor[T, P, 4] predicted xyxy pixels.
        gt_labels: int64[N]; gt_boxes: Tensor[N, T, 4]; gt_present: bool[N, T].
        image_whwh: Tensor[4] to normalise L1.

    Returns:
        (query_index int64[M], gt_index int64[M]).
    """
    n = gt_labels.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    t = logits.shape[0]
    cost = torch.zeros(logits.shape[1], n)
    present = gt_present.float()  # [N, T]
    for f in range(t):  # T is small (training clips); matching is outside the exported graph
        cls = focal_class_cost(logits[f], gt_labels)
        l1 = torch.cdist(boxes[f] / image_whwh, gt_boxes[:, f] / image_whwh, p=1)
        giou = -pairwise_giou(boxes[f], gt_boxes[:, f])
        frame_cost = weights.cls * cls + weights.l1 * l1 + weights.giou * giou
        cost += frame_cost * present[:, f][None]
    cost = cost / present.sum(1).clamp(min=1)[None]
    rows, cols = linear_sum_assignment(np.nan_to_num(cost.numpy(), nan=1e6, posinf=1e6))
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)
