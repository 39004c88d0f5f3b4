"""detectron2's bottleneck ResNet with frozen BN, under detectron2's module names.

Key layout (official): ``stem.conv1.{weight,norm.*}``, ``res{2..5}.{b}.conv{1,2,3}.{weight,norm.*}``,
``res{n}.0.shortcut.{weight,norm.*}``. The stem is 7×7/2 conv + FrozenBN + ReLU + 3×3/2 max-pool;
block 0 of res3..res5 downsamples by 2, in the first 1×1 conv (MSRA, ``stride_in_1x1``) or in
the 3×3 conv (torchvision). IFC uses res3, res4, res5 (strides 8, 16, 32); res2 is computed only
as the input of res3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.ifc.config import IFCConfig


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (detectron2's ``FrozenBN``, eps 1e-5).

    Buffers ``weight, bias, running_mean, running_var`` as in the official checkpoints. Computed as
    one inference-mode ``batch_norm`` (exported as ONNX BatchNormalization, which runtimes fold
    into the preceding conv) instead of the official scale/shift arithmetic; equal up to fp32
    rounding.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=0.0, eps=self.eps)


class ConvNorm(nn.Conv2d):
    """Bias-free conv followed by FrozenBN (eps 1e-5), detectron2's ``Conv2d(norm=...)``."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = FrozenBatchNorm2d(cout, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class BasicStem(nn.Module):
    """Tensor[N, 3, H, W] -> Tensor[N, C, H/4, W/4]."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = ConvNorm(3, width, 7, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1×1 -> 3×3 -> 1×1 with a projection shortcut when the channel count changes."""

    def __init__(self, cin: int, cout: int, *, stride: int, stride_in_1x1: bool):
        super().__init__()
        mid = cout // 4
        if cin != cout:
            self.shortcut = ConvNorm(cin, cout, 1, stride=stride)
        else:
            self.shortcut = None
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(cin, mid, 1, stride=s1)
        self.conv2 = ConvNorm(mid, mid, 3, stride=s3)
        self.conv3 = ConvNorm(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """Tensor[N, 3, H, W] (normalised) -> (res3 [N, C3, H/8, W/8], res4 [.., H/16], res5 [.., H/32])."""

    def __init__(self, cfg: IFCConfig):
        super().__init__()
        self.stem = BasicStem(cfg.stem_width)
        cin = cfg.stem_width
        for i, (blocks, cout) in enumerate(zip(cfg.depth, cfg.stage_channels, strict=True)):
            first_stride = 1 if i == 0 else 2
            stage = nn.Sequential(*[
                BottleneckBlock(cin if b == 0 else cout, cout, stride=first_stride if b == 0 else 1,
                                stride_in_1x1=cfg.stride_in_1x1)
                for b in range(blocks)
            ])
            self.add_module(f"res{i + 2}", stage)
            cin = cout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        res2 = self.res2(self.stem(x))
        res3 = self.res3(res2)
        res4 = self.res4(res3)
        return res3, res4, self.res5(res4)


class MaskedBackbone(nn.Module):
    """The official wrapper (``detr.backbone.0``). Its padding masks (``ifc.py:45-58``) are
    built by the clip stage from ``content_hw`` (``IFCModel.decode``); the ResNet never reads
    them."""

    def __init__(self, cfg: IFCConfig):
        super().__init__()
        self.backbone = ResNet(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.backbone(x)


class Joiner(nn.Sequential):
    """``detr.backbone`` = [MaskedBackbone, position encoding]; only index 0 holds weights."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self[0](x)


def build_backbone(cfg: IFCConfig) -> Joiner:
    from models.ifc.position import PositionEmbeddingSine

    return Joiner(MaskedBackbone(cfg), PositionEmbeddingSine(cfg.hidden_dim // 2))
