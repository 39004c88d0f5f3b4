"""TeViT's training criterion: video-level matching per stage, focal class, L1 + GIoU boxes,
dice + BCE masks from the stage's dynamic mask head (deep supervision on all 6 stages).

Weights follow TeViT (focal 2, L1 5, GIoU 2, dice 8); the mask BCE term (weight 2) is ours: it
speeds up training from scratch on CPU and keeps masks empty on frames where an object is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import roi_align

from training.data import Clip, clips_content_hw
from training.losses import dice_loss, mask_bce, paired_giou, sigmoid_focal_loss
from training.matching import MatchWeights, match_clip


@dataclass(frozen=True)
class LossWeights:
    cls: float = 2.0
    l1: float = 5.0
    giou: float = 2.0
    dice: float = 8.0
    bce: float = 2.0


def _mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop GT masks to predicted boxes like mmdet's mask targets.

    gt_masks Tensor[M, T, H, W] {0,1}, boxes Tensor[T, M, 4] -> Tensor[M, T, size, size] {0,1}.
    """
    m, t = gt_masks.shape[:2]
    flat = gt_masks.reshape(m * t, 1, *gt_masks.shape[2:])
    rois = torch.cat((torch.arange(m * t, dtype=boxes.dtype)[:, None], boxes.transpose(0, 1).reshape(m * t, 4)), 1)
    crops = roi_align(flat, rois, size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return (crops >= 0.5).float().reshape(m, t, size, size)


def _stage_clip_losses(model, stage: int, out: dict, levels_b: list[torch.Tensor], clip: Clip,
                       weights: LossWeights, image_whwh: torch.Tensor) -> dict[str, torch.Tensor]:
    """Losses of one clip at one stage; ``out`` holds that clip's [T, P, ...] tensors and
    ``image_whwh`` Tensor[4] its real image size (official: ``imgs_whwh`` from ``img_shape``)."""
    labels = torch.as_tensor(clip.labels)
    gt_boxes = torch.as_tensor(clip.boxes).float()
    present = torch.as_tensor(clip.present)
    q_idx, g_idx = match_clip(out["cls"], out["boxes"], labels, gt_boxes, present, image_whwh,
                              MatchWeights(weights.cls, weights.l1, weights.giou))
    target = torch.zeros_like(out["cls"])
    target[:, q_idx, labels[g_idx]] = 1.0
    losses = {"cls": weights.cls * sigmoid_focal_loss(out["cls"], target) / out["cls"].shape[0]}
    zero = out["cls"].sum() * 0.0
    if len(q_idx) == 0:
        return {**losses, "l1": zero, "giou": zero, "dice": zero, "bce": zero}
    pred = out["boxes"][:, q_idx]  # [T, M, 4]
    gt = gt_boxes[g_idx].transpose(0, 1)  # [T, M, 4]
    on = present[g_idx].transpose(0, 1)  # [T, M]
    frames_on = on.sum().clamp(min=1)
    l1 = ((pred - gt).abs() / image_whwh).sum(-1)
    giou = 1 - paired_giou(pred.reshape(-1, 4), gt.reshape(-1, 4)).reshape(on.shape)
    losses["l1"] = weights.l1 * (l1 * on).sum() / frames_on * len(q_idx)
    losses["giou"] = weights.giou * (giou * on).sum() / frames_on * len(q_idx)
    boxes = pred.detach()
    logits = model.roi_head.mask_logits(stage, levels_b, boxes, out["attn"][:, q_idx])  # [T, M, C, S, S]
    t, m, _, s, _ = logits.shape
    pick = labels[g_idx][None, :, None, None, None].expand(t, m, 1, s, s)
    logits = torch.gather(logits, 2, pick).squeeze(2).transpose(0, 1)  # [M, T, S, S]
    targets = _mask_targets(torch.as_tensor(clip.masks[g_idx.numpy()]).float(), boxes, s)
    losses["dice"] = weights.dice * dice_loss(logits.reshape(m * t, -1), targets.reshape(m * t, -1)) / t
    losses["bce"] = weights.bce * mask_bce(logits.reshape(m * t, -1), targets.reshape(m * t, -1)) / t
    return losses


def tevit_losses(model, clips: list[Clip], weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Summed losses over clips and stages, normalised by the number of GT instances."""
    frames = torch.as_tensor(__import__("numpy").stack([c.frames for c in clips]))
    content_hw = torch.as_tensor(clips_content_hw(clips))
    b, t = frames.shape[:2]
    levels, stages = model.decode(frames, content_hw)
    whwh = model.image_whwh(frames, content_hw)  # [B, 4]
    num_gt = max(sum(len(c.labels) for c in clips), 1)
    totals: dict[str, torch.Tensor] = {}
    for s, stage in enumerate(stages):
        for i, clip in enumerate(clips):
            out = {k: v[i] for k, v in stage.items()}
            levels_b = [lv[i * t : (i + 1) * t] for lv in levels]
            for name, value in _stage_clip_losses(model, s, out, levels_b, clip, weights, whwh[i]).items():
                totals[name] = totals.get(name, 0.0) + value / num_gt
    return totals
