"""Deformable convolution v1 as standard ops: bilinear ``grid_sample`` per kernel tap + matmul.

VisTR's mask head uses a CUDA-only DCNv1 (``models/dcn``). Its offset layout (Epiphqny/VisTR models/dcn, models/segmentation.py)
equals ``torchvision.ops.deform_conv2d``: for kernel tap k = i·kw + j (row-major), offset channel
2k is the **y** offset and 2k+1 the **x** offset; output (oy, ox) samples the input at
(oy·s − p + i·d + dy, ox·s − p + j·d + dx) bilinearly, with zeros outside the map.

Export form: for each of the kh·kw taps, one ``grid_sample`` (bilinear, zeros,
``align_corners=False`` with pixel centres at (u + 0.5)/n, so a 1-pixel map stays valid) gives
Tensor[N, C, Ho, Wo], and one matmul with that tap's weight slice accumulates the output. Summing
per tap keeps the peak memory at one sampled copy of the input instead of kh·kw copies
(0.7 GB instead of 6.3 GB for the official R-50 at 320x544). The test compares it with torchvision
at fp32 and fp64.

Second export form, ``onnx`` (``use_deform_conv(model, "onnx")``, ``python -m export vistr
--deform-conv onnx``): torchvision's ``deform_conv2d``, which the dynamo exporter writes as the
standard ONNX ``DeformConv`` op (opset 19; onnxscript torch_lib ``torchvision::deform_conv2d``).
onnxruntime 1.32 runs it on CPU; TensorRT's parser maps it to its ``ModulatedDeformConv2d``
plugin from 10.1 on (onnx-tensorrt 10.1 ``docs/Changelog.md``, ``importerUtils.cpp``; see
plugins/). Training always uses the grid-sample form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EXPORT_FORMS = ("grid_sample", "onnx")
ONNX_FORM_OPSET = 19  # DeformConv's first opset


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> torch.Tensor:
    """DCNv1 (one group, one offset group, no bias) equal to ``torchvision.ops.deform_conv2d``.

    Args:
        x: Tensor[N, C, H, W].
        offset: Tensor[N, 2·kh·kw, Ho, Wo], (dy, dx) pairs per tap, row-major taps.
        weight: Tensor[O, C, kh, kw].

    Returns:
        Tensor[N, O, Ho, Wo].
    """
    n, c, h, w = x.shape
    o, c_w, kh, kw = weight.shape
    ho = _output_size(h, kh, stride, padding, dilation)
    wo = _output_size(w, kw, stride, padding, dilation)
    if c_w != c:
        raise ValueError(f"deform_conv2d: weight has {c_w} input channels, input has {c}")
    if offset.shape[1] != 2 * kh * kw or tuple(offset.shape[-2:]) != (ho, wo):
        raise ValueError(
            f"deform_conv2d: offset must be [N, {2 * kh * kw}, {ho}, {wo}] (one offset group), "
            f"got {list(offset.shape)}"
        )
    offset = offset.reshape(n, kh * kw, 2, ho, wo)
    base_y = (torch.arange(ho, dtype=x.dtype, device=x.device) * stride - padding)[
        :, None
    ]  # [Ho, 1]
    base_x = (torch.arange(wo, dtype=x.dtype, device=x.device) * stride - padding)[
        None, :
    ]  # [1, Wo]
    out = None
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            py = base_y + i * dilation + offset[:, k, 0]  # [N, Ho, Wo] input rows
            px = base_x + j * dilation + offset[:, k, 1]  # [N, Ho, Wo] input columns
            grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
            sampled = F.grid_sample(
                x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            tap = torch.matmul(weight[:, :, i, j], sampled.reshape(n, c, ho * wo))  # [N, O, Ho*Wo]
            out = tap if out is None else out + tap
    return out.reshape(n, o, ho, wo)


class DeformConv2d(nn.Module):
    """The official ``DeformConv`` module layout: a ``weight`` [O, C, k, k] and no bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
    ):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.form = "grid_sample"  # inference form (use_deform_conv); training ignores it
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        stdv = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # official init
        nn.init.uniform_(self.weight, -stdv, stdv)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """x Tensor[N, C, H, W], offset Tensor[N, 2k², Ho, Wo] -> Tensor[N, O, Ho, Wo].

        The standard-ops form in training too: its backward pass is ~8x faster on CPU than
        torchvision's C++ kernel (0.6 s vs 3.7 s forward + backward for the tiny preset's
        60 x 12 x 48 x 80 input), and its gradients equal torchvision's except at the
        measure-zero bilinear kinks (tested).
        """
        if self.form == "onnx" and not self.training:
            from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

            return torchvision_deform_conv2d(x, offset, self.weight, stride=self.stride,
                                             padding=self.padding, dilation=self.dilation)
        return deform_conv2d(
            x, offset, self.weight, stride=self.stride, padding=self.padding, dilation=self.dilation
        )


def use_deform_conv(model: nn.Module, form: str) -> int:
    """Set the inference form of every ``DeformConv2d`` in ``model`` (``grid_sample``: 9
    GridSample + MatMul, opset 18; ``onnx``: the ONNX DeformConv op, opset 19) and record it in
    ``model.spec.extra["deform_conv"]`` when the model has a spec. Returns how many were set;
    raises ValueError for an unknown form."""
    if form not in EXPORT_FORMS:
        raise ValueError(f"unknown deformable-conv form {form!r}; choose one of "
                         f"{', '.join(EXPORT_FORMS)}")
    convs = [m for m in model.modules() if isinstance(m, DeformConv2d)]
    for conv in convs:
        conv.form = form
    if convs and hasattr(model, "spec"):
        model.spec.extra["deform_conv"] = form
    return len(convs)
