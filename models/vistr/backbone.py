"""Frozen-BN ResNet body returning C2…C5 (VisTR ``models/backbone.py``, Epiphqny/VisTR @445c9e4).

Official presets use torchvision's ResNet-50/101 with ``FrozenBatchNorm2d`` (eps 1e-5) and no
dilation, wrapped in ``IntermediateLayerGetter`` so state-dict keys read ``body.layer1.0.conv1…``.
The tiny preset uses the same module tree with BasicBlocks and small stage widths.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d

_RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


class BasicResNet(nn.Module):
    """torchvision-style ResNet (stem + 4 stages of BasicBlocks) with configurable widths.

    Child names (conv1, bn1, relu, maxpool, layer1…layer4) equal torchvision's, so the body and
    its state-dict keys have the official layout; there is no avgpool/fc (the body drops them).
    """

    def __init__(self, layers: tuple[int, int, int, int], widths: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = widths[0]
        for i, (blocks, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            self.add_module(f"layer{i + 1}", _basic_stage(in_ch, width, blocks, stride))
            in_ch = width


def _basic_stage(in_ch: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_ch != width:
        downsample = nn.Sequential(
            nn.Conv2d(in_ch, width, kernel_size=1, stride=stride, bias=False),
            FrozenBatchNorm2d(width),
        )
    stage = [resnet.BasicBlock(in_ch, width, stride, downsample, norm_layer=FrozenBatchNorm2d)]
    stage += [
        resnet.BasicBlock(width, width, norm_layer=FrozenBatchNorm2d) for _ in range(blocks - 1)
    ]
    return nn.Sequential(*stage)


def build_resnet(
    name: str, *, basic_layers=(1, 1, 1, 1), basic_widths=(64, 128, 256, 512)
) -> nn.Module:
    """``resnet50``/``resnet101`` (torchvision Bottleneck, FrozenBN) or ``basic`` (BasicResNet)."""
    if name in _DEPTHS:
        return resnet.ResNet(resnet.Bottleneck, list(_DEPTHS[name]), norm_layer=FrozenBatchNorm2d)
    if name == "basic":
        return BasicResNet(basic_layers, basic_widths)
    raise ValueError(f"unknown VisTR backbone {name!r}; use resnet50, resnet101 or basic")


class Backbone(nn.Module):
    """ResNet body: Tensor[N, 3, H, W] -> [C2, C3, C4, C5], Tensor[N, C_i, H/2^(i+1), W/2^(i+1)]."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = IntermediateLayerGetter(body, return_layers=_RETURN_LAYERS)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = self.body(images)
        return [out[k] for k in ("0", "1", "2", "3")]
