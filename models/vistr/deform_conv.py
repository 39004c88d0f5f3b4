"""Deformable convolution v1 as standard ops: bilinear ``grid_sample`` of the kernel taps + matmul.

VisTR's mask head uses a CUDA-only DCNv1 (``models/dcn``). Its offset layout (Epiphqny/VisTR models/dcn, models/segmentation.py)
equals ``torchvision.ops.deform_conv2d``: for kernel tap k = i·kw + j (row-major), offset channel
2k is the **y** offset and 2k+1 the **x** offset; output (oy, ox) samples the input at
(oy·s − p + i·d + dy, ox·s − p + j·d + dx) bilinearly, with zeros outside the map.

Export form: the kh·kw taps in groups of ``taps_per_call``; per group, one matmul projects the
input onto the group's taps (each tap's O output channels), one ``grid_sample`` (bilinear,
zeros, ``align_corners=False`` with pixel centres at (u + 0.5)/n, so a 1-pixel map stays valid)
samples each tap's projection at that tap's positions, Tensor[N·g, O, Ho, Wo], and a sum over
the taps accumulates the output. The group size trades memory for speed: the peak is g
projected and g sampled maps of O channels. ``taps_per_call_for`` picks the largest group whose
samples stay within 256 MiB per clip: all 9 taps in one call for the tiny preset (50 MB), one
tap per call for the official R-50 at 320x544 (0.38 GB a tap). The test compares every group
size with torchvision at fp32 and fp64.

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


SAMPLE_BYTES_PER_CLIP = 256 * 2**20  # the largest grid_sample output taps_per_call_for allows


def taps_per_call_for(
    items_per_clip: int, channels: int, out_hw: tuple[int, int], taps: int = 9,
    budget_bytes: int = SAMPLE_BYTES_PER_CLIP,
) -> int:
    """The largest number of taps one ``grid_sample`` may sample so that its fp32 output for one
    clip (``items_per_clip`` maps of ``channels`` x ``out_hw`` per tap; ``channels`` is the
    conv's output channels, the input being projected onto each tap first) stays within
    ``budget_bytes``; at least 1 (one tap per call is the smallest the form can do)."""
    per_tap = items_per_clip * channels * out_hw[0] * out_hw[1] * 4
    return max(1, min(taps, budget_bytes // per_tap))


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    taps_per_call: int = 1,
) -> torch.Tensor:
    """DCNv1 (one group, one offset group, no bias) equal to ``torchvision.ops.deform_conv2d``.

    Args:
        x: Tensor[N, C, H, W].
        offset: Tensor[N, 2·kh·kw, Ho, Wo], (dy, dx) pairs per tap, row-major taps.
        weight: Tensor[O, C, kh, kw].
        taps_per_call: how many kernel taps one ``grid_sample`` samples (1 … kh·kw); the peak
            memory is taps_per_call projected and sampled maps of O channels
            (see ``taps_per_call_for``).

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
    taps = kh * kw
    if not 1 <= taps_per_call <= taps:
        raise ValueError(f"deform_conv2d: taps_per_call must be in [1, {taps}], got {taps_per_call}")
    # Sample positions: a constant base grid of the taps (y, x in input pixels) plus the offsets,
    # then grid_sample's normalised coordinates (align_corners=False: pixel u's centre is
    # (2u + 1)/n - 1), computed in that order so the positions round as in the per-tap form. No
    # per-tap coordinate stacking in the exported graph (OpenVINO ran that Concat with its
    # reference kernel: 11 % of the VisTR tiny window). The arithmetic runs in the offsets' own
    # layout [N, taps, 2, Ho, Wo] (Wo innermost) and only the result moves (y, x) last as
    # grid_sample's (x, y): with (x, y) innermost, OpenVINO 2026.4.1 ran this one broadcast
    # multiply-add over a last axis of 2 in 15.8 ms, 13 % of the VisTR tiny window.
    rows = torch.arange(ho, dtype=x.dtype, device=x.device) * stride - padding  # [Ho]
    cols = torch.arange(wo, dtype=x.dtype, device=x.device) * stride - padding  # [Wo]
    tap_rows = torch.arange(kh, dtype=x.dtype, device=x.device).repeat_interleave(kw) * dilation
    tap_cols = torch.arange(kw, dtype=x.dtype, device=x.device).repeat(kh) * dilation  # [taps]
    base = torch.stack((
        (rows[None, :, None] + tap_rows[:, None, None]).expand(taps, ho, wo),
        (cols[None, None, :] + tap_cols[:, None, None]).expand(taps, ho, wo),
    ), dim=1)  # [taps, 2, Ho, Wo] (y, x), the offsets' channel order
    size = torch.tensor([h, w], dtype=x.dtype, device=x.device).reshape(1, 1, 2, 1, 1)
    shift = offset.reshape(n, taps, 2, ho, wo)  # (dy, dx) per tap
    grid = (2 * (base + shift) + 1) / size - 1  # [N, taps, 2, Ho, Wo] (y, x)
    grid = grid.flip(2).permute(0, 1, 3, 4, 2)  # [N, taps, Ho, Wo, 2] (x, y): grid_sample's
    # Project first, then sample: bilinear sampling with zero padding is linear, so weighing a
    # tap's samples of the C input channels equals sampling the input projected onto that tap's
    # O output channels (O = C/2 in VisTR's head). One MatMul per group projects the input onto
    # the group's taps, one grid_sample samples O channels per tap, and the taps are summed.
    # Sampling O instead of C channels: the tiny preset's layer (60 x 12 x 48 x 80 -> 6) took
    # 46 instead of 55 ms on OpenVINO 2026.4.1 and 84 instead of 145 ms in eager PyTorch
    # (2 threads); a Conv projection instead of the MatMul lost it on OpenVINO (a 14 ms Reorder
    # of its blocked output).
    weight_taps = weight.permute(2, 3, 0, 1).reshape(taps, o, c)  # tap k = i·kw + j
    flat = x.reshape(n, c, h * w)
    out = None
    for first in range(0, taps, taps_per_call):
        last = min(taps, first + taps_per_call)
        group = last - first
        projected = torch.matmul(weight_taps[first:last].reshape(group * o, c), flat)
        # [N, g·O, H·W] in (tap, channel) order = [N·g, O, H, W]: one map per (item, tap)
        sampled = F.grid_sample(
            projected.reshape(n * group, o, h, w),
            grid[:, first:last].reshape(n * group, ho, wo, 2), mode="bilinear",
            padding_mode="zeros", align_corners=False,
        )  # [N·g, O, Ho, Wo]
        part = sampled.reshape(n, group, o, ho, wo).sum(dim=1)
        out = part if out is None else out + part
    return out


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
        taps_per_call: int = 1,
    ):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.taps_per_call = taps_per_call  # grid_sample group size of the standard-ops form
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
            x, offset, self.weight, stride=self.stride, padding=self.padding,
            dilation=self.dilation, taps_per_call=self.taps_per_call,
        )


def use_deform_conv(model: nn.Module, form: str) -> int:
    """Set the inference form of every ``DeformConv2d`` in ``model`` (``grid_sample``:
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
