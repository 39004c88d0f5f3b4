"""IFC heads: class MLP, the pixel decoder ("spatial decoder") and the dynamic 1×1 mask kernel.

Pixel decoder (official ``MaskHead``), on the encoder's frame tokens [B·T, C, h32, w32]:
lay1 -> gn1 (no ReLU) -> + adapter1(res4) with nearest upsampling -> lay2 -> gn2 (no ReLU)
-> + adapter2(res3) -> lay3 -> gn3 -> ReLU -> depthwise 5×5 (+bias) -> ReLU -> pointwise 1×1 -> ReLU.
The adapters are per-frame 1×1 convs of backbone features, so the two-stage export runs them in
the frame stage (``adapt``). Mask logits = kernel · pixel feature for every frame (no bias): the
official grouped ``F.conv2d(groups=B·T)`` written as one batched MatMul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """DETR's MLP: ``num_layers`` Linear layers with ReLU between them. Tensor[..., Cin] -> [..., Cout]."""

    def __init__(self, cin: int, hidden: int, cout: int, num_layers: int):
        super().__init__()
        dims = [cin] + [hidden] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [cout], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class DepthwiseSeparableConv2d(nn.Module):
    """detectron2's block without norms: depthwise k×k (+bias) -> ReLU -> pointwise 1×1 (+bias) -> ReLU."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(F.relu(self.depthwise(x))))


class MaskHead(nn.Module):
    """``detr.mask_head``: pixel decoder + ``convert_to_weight`` (query -> 1×1 mask kernel)."""

    def __init__(self, dim: int, fpn_dims: tuple[int, int], gn_groups: int):
        super().__init__()
        self.lay1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.gn1 = nn.GroupNorm(gn_groups, dim)
        self.lay2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.gn2 = nn.GroupNorm(gn_groups, dim)
        self.lay3 = nn.Conv2d(dim, dim, 3, padding=1)
        self.gn3 = nn.GroupNorm(gn_groups, dim)
        self.out_lay = DepthwiseSeparableConv2d(dim, 5)
        self.adapter1 = nn.Conv2d(fpn_dims[0], dim, 1)
        self.adapter2 = nn.Conv2d(fpn_dims[1], dim, 1)
        self.convert_to_weight = MLP(dim, dim, dim, 3)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.constant_(m.bias, 0)

    def adapt(self, res4: torch.Tensor, res3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame: res4 Tensor[N, C4, h16, w16], res3 [N, C3, h8, w8] -> both at C channels."""
        return self.adapter1(res4), self.adapter2(res3)

    def pixel_features(
        self, x: torch.Tensor, fpn1: torch.Tensor, fpn2: torch.Tensor
    ) -> torch.Tensor:
        """x Tensor[N, C, h32, w32] (encoded frames), adapted fpn1/fpn2 -> Tensor[N, C, h8, w8]."""
        x = self.gn1(self.lay1(x))
        x = fpn1 + F.interpolate(x, size=fpn1.shape[-2:], mode="nearest")
        x = self.gn2(self.lay2(x))
        x = fpn2 + F.interpolate(x, size=fpn2.shape[-2:], mode="nearest")
        x = F.relu(self.gn3(self.lay3(x)))
        return self.out_lay(x)

    def mask_logits(self, kernels: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """kernels Tensor[B, K, C] x pixels Tensor[B·T, C, h, w] -> Tensor[B, K, T, h, w]."""
        _, c, h, w = pixels.shape
        b, k, _ = kernels.shape
        flat = pixels.reshape(b, -1, c, h * w).transpose(1, 2).reshape(b, c, -1)  # [B, C, T·h·w]
        return (kernels @ flat).reshape(b, k, -1, h, w)
