"""RoIAlign (mmcv ``aligned=True``, ``pool_mode='avg'``) written with standard tensor ops.

Equal to ``torchvision.ops.roi_align(aligned=True)`` with a fixed sampling ratio, but laid out
per frame: every frame owns the same number of RoIs, so no batch-index gather is needed and the
op exports to ONNX as GridSample + Mul + AveragePool (TensorRT supports all three).

Per sample point (sampling_ratio² per bin): a point outside [-1, H] x [-1, W] counts as zero;
otherwise it is clamped to [0, H-1] x [0, W-1] and bilinearly interpolated — the mmcv kernel rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _sample_coords(lo: torch.Tensor, hi: torch.Tensor, bins: int, ratio: int) -> torch.Tensor:
    """Sample positions along one axis: Tensor[..., bins*ratio] between lo and hi (feature coords)."""
    steps = torch.arange(bins * ratio, device=lo.device, dtype=lo.dtype) + 0.5
    return lo.unsqueeze(-1) + steps * ((hi - lo) / (bins * ratio)).unsqueeze(-1)


def roi_align_per_frame(
    features: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int = 2,
) -> torch.Tensor:
    """RoIAlign of ``boxes`` on ``features``, frame by frame.

    Args:
        features: Tensor[N, C, H, W], one feature map per frame.
        boxes: Tensor[N, P, 4], xyxy in input pixels; P RoIs per frame.
        output_size: S, the side of the pooled grid.
        spatial_scale: 1 / stride of this feature level.
        sampling_ratio: samples per bin side (mmcv/torchvision ``sampling_ratio``; must be > 0).

    Returns:
        Tensor[N, P, C, S, S].
    """
    n, c, h, w = features.shape
    p = boxes.shape[1]
    g = output_size * sampling_ratio
    rois = boxes * spatial_scale - 0.5  # aligned=True: pixel centres at half-integers
    xs = _sample_coords(rois[..., 0], rois[..., 2], output_size, sampling_ratio)  # [N, P, g]
    ys = _sample_coords(rois[..., 1], rois[..., 3], output_size, sampling_ratio)  # [N, P, g]
    valid_x = (xs >= -1.0) & (xs <= w)
    valid_y = (ys >= -1.0) & (ys <= h)
    # Clamp, then normalise for align_corners=True (pixel i sits at -1 + 2i/(size-1)).
    gx = torch.minimum(xs.clamp(min=0.0), torch.full_like(xs, w - 1)) * (2.0 / max(w - 1, 1)) - 1.0
    gy = torch.minimum(ys.clamp(min=0.0), torch.full_like(ys, h - 1)) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack(
        (gx.unsqueeze(-2).expand(n, p, g, g), gy.unsqueeze(-1).expand(n, p, g, g)), dim=-1
    )  # [N, P, g(y), g(x), 2]
    sampled = F.grid_sample(
        features,
        grid.reshape(n, p * g, g, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )  # [N, C, P*g, g]
    valid = (valid_y.unsqueeze(-1) & valid_x.unsqueeze(-2)).to(features.dtype)  # [N, P, g, g]
    sampled = sampled.reshape(n, c, p, g, g).transpose(1, 2) * valid.unsqueeze(2)  # [N, P, C, g, g]
    pooled = F.avg_pool2d(sampled.reshape(n * p, c, g, g), kernel_size=sampling_ratio)
    return pooled.reshape(n, p, c, output_size, output_size)


def map_roi_levels(boxes: torch.Tensor, num_levels: int, finest_scale: float = 56.0) -> torch.Tensor:
    """FPN level per RoI (mmdet ``SingleRoIExtractor.map_roi_levels``): Tensor[..., 4] -> int64[...].

    ``floor(log2(sqrt(w*h) / finest_scale + 1e-6))`` clamped to [0, num_levels-1]; the area is
    clamped at 0 so a degenerate learned box cannot produce NaN.
    """
    wh = (boxes[..., 2:] - boxes[..., :2])
    scale = torch.sqrt((wh[..., 0] * wh[..., 1]).clamp(min=0.0))
    level = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return level.clamp(min=0, max=num_levels - 1).long()


def _keep_target_level(target: torch.Tensor, pooled_levels) -> torch.Tensor:
    """Sum of each level's pooled RoIs Tensor[..., C, S, S] masked by ``target == level``
    (int64[...]): every RoI keeps its own level's result, with fixed shapes (no gather)."""
    out = None
    for index, pooled in enumerate(pooled_levels):
        pick = (target == index).to(pooled.dtype)[..., None, None, None]
        out = pooled * pick if out is None else out + pooled * pick
    return out


def multilevel_roi_align(
    levels: list[torch.Tensor],
    strides: list[int],
    boxes: torch.Tensor,
    output_size: int,
    sampling_ratio: int = 2,
    finest_scale: float = 56.0,
) -> torch.Tensor:
    """RoIAlign each RoI on its FPN level without data-dependent shapes.

    Every RoI is pooled on every level and the right one is kept with a one-hot mask, so the
    graph has fixed shapes. That is 4x the sampling work of one level; at the official size it
    is most of onnxruntime's CPU time (GridSample, docs/notes/lab-notebook.md).

    Args:
        levels: per level Tensor[N, C, H_l, W_l].
        strides: per level stride in input pixels.
        boxes: Tensor[N, P, 4] xyxy input pixels.

    Returns:
        Tensor[N, P, C, S, S].
    """
    target = map_roi_levels(boxes, len(levels), finest_scale)  # [N, P]
    return _keep_target_level(target, (
        roi_align_per_frame(feat, boxes, output_size, 1.0 / stride, sampling_ratio)
        for feat, stride in zip(levels, strides)))


def _rois_and_levels(boxes: torch.Tensor, num_levels: int, finest_scale: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor[N, P, 4] xyxy -> (rois Tensor[N*P, 5] as (frame index, x1, y1, x2, y2), each RoI's
    FPN level int64[N*P])."""
    n, p = boxes.shape[:2]
    frame = torch.arange(n, device=boxes.device, dtype=boxes.dtype).repeat_interleave(p)
    rois = torch.cat((frame[:, None], boxes.reshape(n * p, 4)), dim=1)
    return rois, map_roi_levels(boxes, num_levels, finest_scale).reshape(n * p)


def multilevel_roi_align_onnx(
    levels: list[torch.Tensor],
    strides: list[int],
    boxes: torch.Tensor,
    output_size: int,
    sampling_ratio: int = 2,
    finest_scale: float = 56.0,
) -> torch.Tensor:
    """``multilevel_roi_align`` with torchvision's kernel on every level, which the exporter writes
    as the standard ONNX ``RoiAlign`` op (opset >= 16, ``coordinate_transformation_mode=
    half_pixel`` = mmcv/torchvision ``aligned=True``). Same fixed shapes and one-hot level
    selection; runtimes run RoiAlign much faster than the GridSample form (TensorRT through its
    built-in ROIAlign_TRT plugin). Shapes as ``multilevel_roi_align``.
    """
    from torchvision.ops import roi_align

    rois, target = _rois_and_levels(boxes, len(levels), finest_scale)
    out = _keep_target_level(target, (
        roi_align(feat, rois, output_size, 1.0 / stride, sampling_ratio, aligned=True)
        for feat, stride in zip(levels, strides)))
    return out.reshape(*boxes.shape[:2], *out.shape[1:])


def multilevel_roi_align_gathered(
    levels: list[torch.Tensor],
    strides: list[int],
    boxes: torch.Tensor,
    output_size: int,
    sampling_ratio: int = 2,
    finest_scale: float = 56.0,
) -> torch.Tensor:
    """Each RoI pooled on its own level only with torchvision's kernel (``aligned=True``), as
    mmdet's ``SingleRoIExtractor.forward`` loops over levels: a quarter of the work of the
    fixed-shape forms and the same values (see the tests).

    Training always uses it (fast backward pass). Exported (``--roi-align onnx_gathered``) it is
    NonZero -> GatherND -> RoiAlign -> ScatterND per level, with data-dependent shapes inside
    the graph; a level without RoIs pools zero of them. Shapes as ``multilevel_roi_align``.
    """
    from torchvision.ops import roi_align

    rois, target = _rois_and_levels(boxes, len(levels), finest_scale)
    out = boxes.new_zeros(target.shape[0], levels[0].shape[1], output_size, output_size)
    for index, (feat, stride) in enumerate(zip(levels, strides)):
        # NonZero on a float mask: TensorRT's ONNX operator table documents FP32/FP16 inputs
        chosen = (target == index).to(boxes.dtype).nonzero().squeeze(1)
        pooled = roi_align(feat, rois[chosen], output_size, 1.0 / stride, sampling_ratio,
                           aligned=True)
        out = out.index_put((chosen,), pooled)
    return out.reshape(*boxes.shape[:2], *out.shape[1:])


# Inference forms of the multi-level RoIAlign an exported graph can use (``--roi-align``).
EXPORT_FORMS = {"grid_sample": multilevel_roi_align, "onnx": multilevel_roi_align_onnx,
                "onnx_gathered": multilevel_roi_align_gathered}
