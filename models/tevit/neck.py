"""FPN neck of TeViT (mmdet ``FPN``, 4 inputs -> 4 outputs, no extra levels; hustvl/TeViT configs/tevit/tevit_r50.py ``neck``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvOnly(nn.Module):
    """mmcv ``ConvModule`` without norm or activation: keeps the ``<name>.conv.*`` key layout."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FPN(nn.Module):
    """Lateral 1x1 convs, nearest top-down sum (size-based), 3x3 output convs."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvOnly(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvOnly(out_channels, out_channels, 3, 1) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """4 maps Tensor[N, C_i, H_i, W_i] -> 4 maps Tensor[N, out, H_i, W_i] (P2..P5)."""
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        return [conv(x) for conv, x in zip(self.fpn_convs, lat)]
