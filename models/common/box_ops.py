"""Box conversions, delta decoding and mask pasting as dense tensor ops (no loops, no masking)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Tensor[..., 4] (cx, cy, w, h) -> Tensor[..., 4] (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def delta_xywh_decode(
    boxes: torch.Tensor,
    deltas: torch.Tensor,
    stds: tuple[float, float, float, float] = (0.5, 0.5, 1.0, 1.0),
    wh_ratio_clip: float = 16 / 1000,
) -> torch.Tensor:
    """mmdet ``DeltaXYWHBBoxCoder.decode`` (means 0, no clipping to the image).

    boxes, deltas: Tensor[..., 4] -> refined Tensor[..., 4] xyxy.
    """
    std = deltas.new_tensor(stds)
    d = deltas * std
    max_ratio = abs(math.log(wh_ratio_clip))
    dwh = d[..., 2:].clamp(min=-max_ratio, max=max_ratio)
    ctr = (boxes[..., :2] + boxes[..., 2:]) * 0.5
    wh = boxes[..., 2:] - boxes[..., :2]
    new_ctr = ctr + wh * d[..., :2]
    new_wh = wh * dwh.exp()
    return torch.cat((new_ctr - 0.5 * new_wh, new_ctr + 0.5 * new_wh), dim=-1)


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, out_hw: tuple[int, int], stride: int) -> torch.Tensor:
    """Paste box-relative masks onto an image grid (mmdet ``_do_paste_mask``, whole-image form).

    Output pixel (i, j) has its centre at ((j + 0.5)·stride, (i + 0.5)·stride) in input pixels;
    it samples the mask bilinearly (``align_corners=False``) at that point relative to the box;
    outside the box the value is 0.

    Args:
        masks: Tensor[N, M, M] probabilities (or logits) in box coordinates.
        boxes: Tensor[N, 4] xyxy in input pixels.
        out_hw: (h, w) of the output grid.
        stride: input pixels per output pixel.

    Returns:
        Tensor[N, h, w].
    """
    n = masks.shape[0]
    h, w = out_hw
    px = (torch.arange(w, device=masks.device, dtype=masks.dtype) + 0.5) * stride  # [w]
    py = (torch.arange(h, device=masks.device, dtype=masks.dtype) + 0.5) * stride  # [h]
    x1, y1, x2, y2 = (boxes[:, i : i + 1] for i in range(4))  # each [N, 1]
    gx = (px - x1) / (x2 - x1) * 2.0 - 1.0  # [N, w]
    gy = (py - y1) / (y2 - y1) * 2.0 - 1.0  # [N, h]
    grid = torch.stack((gx.unsqueeze(1).expand(n, h, w), gy.unsqueeze(2).expand(n, h, w)), dim=-1)
    pasted = F.grid_sample(masks.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return pasted.squeeze(1)


def masks_to_boxes(masks: torch.Tensor, stride: int, threshold: float = 0.5) -> torch.Tensor:
    """Tight xyxy box (input pixels) of ``masks`` > threshold: Tensor[..., h, w] -> Tensor[..., 4].

    Empty masks give (0, 0, 0, 0). Dense reductions only, so it exports without data-dependent shapes.
    """
    h, w = masks.shape[-2:]
    on = masks > threshold
    cols = on.any(dim=-2)  # [..., w]
    rows = on.any(dim=-1)  # [..., h]
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype)
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype)
    big = float(max(h, w))
    x1 = torch.where(cols, xs, big).amin(dim=-1)
    x2 = torch.where(cols, xs, -1.0).amax(dim=-1) + 1.0
    y1 = torch.where(rows, ys, big).amin(dim=-1)
    y2 = torch.where(rows, ys, -1.0).amax(dim=-1) + 1.0
    box = torch.stack((x1, y1, x2, y2), dim=-1) * stride
    return torch.where(rows.any(dim=-1, keepdim=True), box, torch.zeros_like(box))
