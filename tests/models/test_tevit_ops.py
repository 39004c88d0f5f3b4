"""TeViT's export-friendly ops equal their references: roll shift, RoIAlign, box decoding, paste."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from models.common.box_ops import delta_xywh_decode, masks_to_boxes, paste_masks
from models.common.roi_align import map_roi_levels, multilevel_roi_align, roi_align_per_frame
from models.tevit.config import PRESETS
from models.tevit.msgshift import block_offsets, messenger_shift


def _static_shift(clip: torch.Tensor, s: int) -> torch.Tensor:
    """Reference cyclic shift along dim 1 with explicit indices: out[t] = in[(t - s) mod T]."""
    t = clip.shape[1]
    index = [(i - s) % t for i in range(t)]
    return clip[:, index]


@pytest.mark.parametrize("frames", [1, 2, 3, 5, 7])
def test_messenger_shift_rolls_each_group_cyclically(frames):
    batch, tokens, c = 2, 8, 3
    m = torch.randn(batch * frames, tokens, c)
    offsets = (1, -1, 2, -2)
    out = messenger_shift(m, batch, offsets).reshape(batch, frames, tokens, c)
    clip = m.reshape(batch, frames, tokens, c)
    for g, s in enumerate(offsets):
        sl = slice(2 * g, 2 * g + 2)
        torch.testing.assert_close(out[:, :, sl], _static_shift(clip[:, :, sl], s), rtol=0, atol=0)


def test_shift_moves_messengers_to_later_frames_and_wraps():
    m = torch.arange(4.0).reshape(4, 1, 1).expand(4, 4, 1).contiguous()  # value = frame index
    out = messenger_shift(m, 1, (1, -1, 2, -2)).reshape(4, 4)
    assert out[:, 0].tolist() == [3.0, 0.0, 1.0, 2.0]  # +1: frame t receives frame t-1
    assert out[:, 1].tolist() == [1.0, 2.0, 3.0, 0.0]  # -1


def test_block_offsets_follow_the_official_pattern():
    cfg = PRESETS["msgshift"]
    assert block_offsets(cfg, 2, 0) == (1, -1, 2, -2)
    assert block_offsets(cfg, 2, 1) == (-1, 1, -2, 2)
    assert block_offsets(cfg, 3, 2) is None  # last block of an odd-depth stage does not shift


def _boxes(n: int, p: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, p, 2, generator=gen) * torch.tensor([w, h]) * 1.2 - 0.1 * torch.tensor([w, h])
    wh = torch.rand(n, p, 2, generator=gen) * torch.tensor([w, h]) * 0.6 + 0.2
    return torch.cat((xy, xy + wh), dim=-1)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("size,scale", [(7, 0.25), (14, 0.125)])
def test_roi_align_equals_torchvision_aligned(dtype, tol, size, scale):
    gen = torch.Generator().manual_seed(1)
    n, p, c, h, w = 3, 6, 4, 13, 21
    feats = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    boxes = _boxes(n, p, int(h / scale), int(w / scale), gen).to(dtype)
    boxes[0, 0] = torch.tensor([-30.0, -30.0, -5.0, -5.0], dtype=dtype)  # fully outside
    boxes[0, 1] = torch.tensor([10.0, 10.0, 10.5, 10.2], dtype=dtype)  # smaller than a pixel
    ours = roi_align_per_frame(feats, boxes, size, scale, 2)
    rois = torch.cat((torch.arange(n, dtype=dtype).repeat_interleave(p)[:, None], boxes.reshape(-1, 4)), 1)
    ref = roi_align(feats, rois, size, spatial_scale=scale, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(ours.reshape(n * p, c, size, size), ref, rtol=0, atol=tol)


def test_multilevel_roi_align_picks_the_mmdet_level():
    gen = torch.Generator().manual_seed(2)
    strides = [4, 8, 16, 32]
    levels = [torch.randn(1, 2, 256 // s, 512 // s, generator=gen, dtype=torch.float64) for s in strides]
    boxes = torch.tensor([[[0, 0, 50, 50], [0, 0, 150, 150], [10, 10, 310, 310], [0, 0, 500, 460]]],
                         dtype=torch.float64)
    assert map_roi_levels(boxes, 4).tolist() == [[0, 1, 2, 3]]
    out = multilevel_roi_align(levels, strides, boxes, 7)
    for i, s in enumerate(strides):
        ref = roi_align(levels[i], torch.cat((torch.zeros(1, 1, dtype=torch.float64), boxes[0, i : i + 1]), 1),
                        7, spatial_scale=1 / s, sampling_ratio=2, aligned=True)
        torch.testing.assert_close(out[0, i], ref[0], rtol=0, atol=1e-10)


def test_delta_decode_matches_the_mmdet_formula():
    boxes = torch.tensor([[10.0, 20.0, 50.0, 100.0]])
    deltas = torch.tensor([[0.2, -0.4, 0.5, 10.0]])  # dh is clamped at |ln(0.016)|
    out = delta_xywh_decode(boxes, deltas)
    cx, cy, w, h = 30 + 40 * 0.1, 60 + 80 * -0.2, 40 * torch.exp(torch.tensor(0.5)), 80 * (1000 / 16)
    expected = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    torch.testing.assert_close(out, expected)


def test_paste_masks_fills_the_box_and_zero_outside():
    masks = torch.ones(1, 28, 28)
    pasted = paste_masks(masks, torch.tensor([[16.0, 8.0, 48.0, 40.0]]), (16, 16), stride=4)
    inside = pasted[0, 3:9, 5:11]
    assert torch.all(inside > 0.99)
    assert pasted[0, 12:, :].abs().max() == 0 and pasted[0, :, 13:].abs().max() == 0
    box = masks_to_boxes(pasted, stride=4)
    torch.testing.assert_close(box, torch.tensor([[16.0, 8.0, 48.0, 40.0]]))
    assert masks_to_boxes(torch.zeros(1, 4, 4), stride=4).tolist() == [[0.0, 0.0, 0.0, 0.0]]


def test_gathered_training_roi_align_equals_the_export_form():
    from models.common.roi_align import multilevel_roi_align_gathered

    gen = torch.Generator().manual_seed(3)
    strides = [4, 8, 16, 32]
    levels = [torch.randn(2, 3, 256 // s, 512 // s, generator=gen, dtype=torch.float64) for s in strides]
    boxes = _boxes(2, 9, 256, 512, gen).to(torch.float64) * 2
    torch.testing.assert_close(multilevel_roi_align_gathered(levels, strides, boxes, 7),
                               multilevel_roi_align(levels, strides, boxes, 7), rtol=0, atol=1e-10)


def test_onnx_roi_align_form_equals_the_grid_sample_form():
    from models.common.roi_align import multilevel_roi_align_onnx

    gen = torch.Generator().manual_seed(4)
    strides = [4, 8, 16, 32]
    levels = [torch.randn(3, 5, 256 // s, 384 // s, generator=gen, dtype=torch.float64) for s in strides]
    boxes = _boxes(3, 11, 256, 384, gen).to(torch.float64) * 2  # some boxes leave the map
    torch.testing.assert_close(multilevel_roi_align_onnx(levels, strides, boxes, 7, 2),
                               multilevel_roi_align(levels, strides, boxes, 7, 2), rtol=0, atol=1e-10)


def test_gathered_onnx_form_equals_the_one_hot_onnx_form_with_empty_levels():
    from models.common.roi_align import (
        multilevel_roi_align_gathered,
        multilevel_roi_align_onnx,
    )

    gen = torch.Generator().manual_seed(5)
    strides = [4, 8, 16, 32]
    levels = [torch.randn(3, 5, 256 // s, 384 // s, generator=gen, dtype=torch.float64)
              for s in strides]
    mixed = _boxes(3, 11, 256, 384, gen).to(torch.float64) * 2  # some boxes leave the map
    small = mixed.clone()
    small[..., 2:] = small[..., :2] + 20.0  # every box on level 0: levels 1-3 pool nothing
    assert set(map_roi_levels(small, 4).flatten().tolist()) == {0}
    for boxes in (mixed, small):
        torch.testing.assert_close(multilevel_roi_align_gathered(levels, strides, boxes, 7, 2),
                                   multilevel_roi_align_onnx(levels, strides, boxes, 7, 2),
                                   rtol=0, atol=0)


def test_gathered_onnx_form_exports_and_runs_on_both_cpu_runtimes(tmp_path):
    """The NonZero -> GatherND -> RoiAlign -> ScatterND pattern with a dynamic RoI count per
    level, including levels with no RoI (a zero-length RoiAlign), runs on onnxruntime and
    OpenVINO with PyTorch's values."""
    import numpy as np
    import onnxruntime as ort
    import openvino as ov
    import torchvision  # noqa: F401  (registers roi_align's ONNX translation)

    from models.common.roi_align import multilevel_roi_align_gathered

    strides = [4, 8, 16, 32]

    class Pool(torch.nn.Module):
        def forward(self, f0, f1, f2, f3, boxes):
            return multilevel_roi_align_gathered([f0, f1, f2, f3], strides, boxes, 7, 2)

    gen = torch.Generator().manual_seed(6)
    levels = [torch.randn(2, 4, 512 // s, 512 // s, generator=gen) for s in strides]
    boxes = _boxes(2, 9, 512, 512, gen) * 2
    path = tmp_path / "pool.onnx"
    names = ["f0", "f1", "f2", "f3", "boxes"]
    torch.onnx.export(Pool().eval(), (*levels, boxes), str(path), dynamo=True, opset_version=18,
                      input_names=names, output_names=["pooled"], external_data=False)
    ops = [n.op_type for n in __import__("onnx").load(str(path)).graph.node]
    assert ops.count("NonZero") == 4 and ops.count("RoiAlign") == 4
    from export.trt_support import lint_onnx, load_support_table
    for major in (10, 11):  # NonZero on a float mask: a type TensorRT's operator table lists
        report = lint_onnx(path, load_support_table(major))
        assert report.ok and "NonZero" not in report.format(), report.format()
    small = boxes.clone()
    small[..., 2:] = small[..., :2] + 20.0  # only level 0 gets RoIs
    ov_model = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for case in (boxes, small):
        with torch.no_grad():
            expected = Pool()(*levels, case).numpy()
        feeds = dict(zip(names, [t.numpy() for t in (*levels, case)]))
        np.testing.assert_allclose(session.run(None, feeds)[0], expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(ov_model(feeds)[0], expected, rtol=0, atol=1e-5)


def test_use_roi_align_switches_every_head_and_refuses_unknown_forms():
    from models.tevit.model import build

    model = build("tiny").eval()
    frames = torch.randint(0, 256, (1, 2, *model.spec.input_hw, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(frames)
        model.use_roi_align("onnx")
        out = model(frames)
    assert model.spec.extra["roi_align"] == "onnx"
    forms = {m.roi_align_form for m in model.roi_head.modules() if hasattr(m, "roi_align_form")}
    assert forms == {"onnx"}
    for name in ("scores", "masks", "boxes"):
        torch.testing.assert_close(out[name], ref[name], rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="grid_sample"):
        model.use_roi_align("nearest")
