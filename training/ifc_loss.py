"""IFC's training criterion (``ifc/models/criterion.py``, ``matcher.py``; sukjunhwang/IFC @880d646, projects/IFC/ifc/models/).

Clip-level queries: each query predicts one class for the clip and a mask in every frame.
Matching cost = class probability (weight 1) + 3 · dice over the clip's stacked masks; losses =
cross-entropy with no-object weight 0.1, mask focal 3 and dice 3, with predictions compared at
stride 4 (the stride-8 logits upsampled ×2 as at inference). Official training also supervises the
intermediate decoder layers; our ``decode`` returns only the last one, so only it is supervised.
The model masks each clip's padding from its ``content_hw``, as official training masks the
padding of its batch (``ifc.py:33-58``, images padded by ``ImageList.from_tensors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from training.data import Clip, clips_content_hw
from training.losses import dice_loss
from training.softmax_criterion import mask_focal, no_object_ce, pairwise_dice_cost, resize_masks


@dataclass(frozen=True)
class IFCLossWeights:
    cls: float = 1.0
    mask: float = 3.0
    dice: float = 3.0


def _clip_losses(logits: torch.Tensor, mask_logits: torch.Tensor, clip: Clip, w: IFCLossWeights) -> dict:
    """logits Tensor[Q, C+1], mask_logits Tensor[Q, T, h4, w4] of one clip -> summed losses."""
    q, t, h, wd = mask_logits.shape
    labels = torch.as_tensor(clip.labels)
    gt = resize_masks(torch.as_tensor(clip.masks), (h, wd)).reshape(len(labels), -1)
    pred = mask_logits.reshape(q, -1)
    target_cls = torch.full((q,), logits.shape[-1] - 1, dtype=torch.long)
    if len(labels) == 0:
        return {"cls": w.cls * no_object_ce(logits, target_cls), "mask": pred.sum() * 0, "dice": pred.sum() * 0}
    with torch.no_grad():
        cost = -logits.softmax(-1)[:, labels] * w.cls + w.dice * pairwise_dice_cost(pred, gt)
        rows, cols = linear_sum_assignment(cost.numpy())
    rows, cols = torch.as_tensor(rows), torch.as_tensor(cols)
    target_cls[rows] = labels[cols]
    return {"cls": w.cls * no_object_ce(logits, target_cls),
            "mask": w.mask * mask_focal(pred[rows], gt[cols]),
            "dice": w.dice * dice_loss(pred[rows], gt[cols])}


def ifc_losses(model, clips: list[Clip], weights: IFCLossWeights = IFCLossWeights()) -> dict[str, torch.Tensor]:
    """Class loss averaged over clips; mask terms summed and normalised by the number of GT
    instances (DETR's ``num_boxes``)."""
    frames = torch.as_tensor(np.stack([c.frames for c in clips]))
    out = model.official_outputs(frames, torch.as_tensor(clips_content_hw(clips)))
    logits, masks = out["pred_logits"], out["pred_masks"]  # [B, Q, C+1], [B, Q, T, h8, w8]
    b, q, t, h, w = masks.shape
    masks = F.interpolate(masks.reshape(b * q, t, h, w), scale_factor=2, mode="bilinear",
                          align_corners=False).reshape(b, q, t, 2 * h, 2 * w)
    num_gt = max(sum(len(c.labels) for c in clips), 1)
    totals: dict[str, torch.Tensor] = {}
    for i, clip in enumerate(clips):
        for name, value in _clip_losses(logits[i], masks[i], clip, weights).items():
            totals[name] = totals.get(name, 0.0) + value / (len(clips) if name == "cls" else num_gt)
    return totals
