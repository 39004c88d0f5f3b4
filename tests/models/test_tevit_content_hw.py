"""TeViT's learned proposals are scaled by each image's own size, as the official code does.

Official (hustvl/TeViT ``mmdet/models/dense_heads/embedding_rpn_head.py:75-88``,
``_decode_init_proposals``): for every image meta, ``h, w, _ = meta['img_shape']`` (the resized
image before padding) and ``proposals = cxcywh_to_xyxy(init_proposal_bboxes) * [w, h, w, h]``.
The reference below transcribes that loop and runs the rest of our model unchanged, so any
difference comes from the proposal scaling alone. Tolerances: scores 1e-4, boxes 1e-2 px.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.tevit.config import PRESETS
from models.tevit.model import TeViT

INPUT_HW = (384, 640)
CONTENTS = {"4:3 camera": (384, 512), "16:9 camera": (360, 640)}


@pytest.fixture(scope="module")
def model():
    """Tiny widths at the official 384x640 input; trained-like proposals (spread boxes)."""
    torch.manual_seed(7)
    cfg = dataclasses.replace(PRESETS["tiny"], input_hw=INPUT_HW)
    net = TeViT(cfg, "tiny").eval()
    with torch.no_grad():
        boxes = net.rpn_head.init_proposal_bboxes.weight
        boxes[:, :2] = torch.rand(len(boxes), 2) * 0.8 + 0.1
        boxes[:, 2:] = torch.rand(len(boxes), 2) * 0.4 + 0.1
    return net


def _letterboxed(content_hw: tuple[int, int], frames: int = 2, seed: int = 0) -> torch.Tensor:
    """uint8 [1, T, 384, 640, 3]: random content top-left, mean-colour padding bottom/right."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.tensor([124, 116, 104], dtype=torch.uint8).expand(1, frames, *INPUT_HW, 3).clone()
    h, w = content_hw
    out[:, :, :h, :w] = torch.randint(0, 256, (1, frames, h, w, 3), dtype=torch.uint8, generator=gen)
    return out


def official_proposals(model: TeViT, img_metas: list[dict]) -> torch.Tensor:
    """``EmbeddingRPNHead._decode_init_proposals`` as written officially -> [B, P, 4]."""
    weight = model.rpn_head.init_proposal_bboxes.weight.clone()
    cx, cy, w, h = weight.unbind(-1)
    proposals = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)
    imgs_whwh = []
    for meta in img_metas:
        h, w, _ = meta["img_shape"]
        imgs_whwh.append(weight.new_tensor([[w, h, w, h]]))
    imgs_whwh = torch.cat(imgs_whwh, dim=0)[:, None, :]
    return proposals * imgs_whwh


def official_forward(model: TeViT, frames: torch.Tensor, img_metas: list[dict]) -> dict:
    """Our backbone, heads and post-processing fed with the official proposals."""
    b, t = frames.shape[:2]
    levels = model.features(frames)
    boxes = official_proposals(model, img_metas)  # [B, P, 4]
    queries = model.rpn_head.init_proposal_features.weight
    p, c = queries.shape
    stages = model.roi_head(queries.expand(b, t, p, c), boxes[:, None].expand(b, t, p, 4), levels)
    return model.postprocess(levels, stages, frames.shape[2:4])


@pytest.mark.parametrize("camera", sorted(CONTENTS))
def test_proposals_scaled_by_the_image_size_match_the_official_computation(model, camera):
    content = CONTENTS[camera]
    frames = _letterboxed(content)
    with torch.no_grad():
        ours = model(frames, torch.tensor([content], dtype=torch.int32))
        ref = official_forward(model, frames, [{"img_shape": (*content, 3)}])
        whole = model(frames)  # content_hw=None: the whole input, the old constant scale
    assert torch.equal(ours["labels"], ref["labels"]) and torch.equal(ours["query_index"], ref["query_index"])
    assert (ours["scores"] - ref["scores"]).abs().max() <= 1e-4
    assert (ours["boxes"] - ref["boxes"]).abs().max() <= 1e-2
    # the test can tell: scaling by the whole padded input moves the boxes by many pixels
    assert (whole["boxes"] - ref["boxes"]).abs().max() > 10.0


def test_each_batch_row_uses_its_own_size(model):
    frames = torch.cat([_letterboxed(CONTENTS["4:3 camera"]), _letterboxed(CONTENTS["16:9 camera"], seed=1)])
    hw = torch.tensor([CONTENTS["4:3 camera"], CONTENTS["16:9 camera"]], dtype=torch.int32)
    metas = [{"img_shape": (*c, 3)} for c in (CONTENTS["4:3 camera"], CONTENTS["16:9 camera"])]
    with torch.no_grad():
        ours, ref = model(frames, hw), official_forward(model, frames, metas)
    np.testing.assert_allclose(ours["scores"].numpy(), ref["scores"].numpy(), atol=1e-4)
    np.testing.assert_allclose(ours["boxes"].numpy(), ref["boxes"].numpy(), atol=1e-2)


def test_unpadded_input_equals_content_hw_none(model):
    frames = _letterboxed(INPUT_HW, frames=1)
    with torch.no_grad():
        a = model(frames)
        b = model(frames, torch.tensor([INPUT_HW], dtype=torch.int32))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_onnx_graph_follows_content_hw_at_both_aspect_ratios(tiny_tevit_export):
    """ORT parity of the exported tiny graph (192x320) at a 4:3 and a 16:9 content."""
    from export.parity import FP32_TOLERANCES, ParityReport, compare, ort_session
    from models.base import OUTPUT_NAMES

    model = tiny_tevit_export.model
    session = ort_session(tiny_tevit_export.onnx_path)
    report = ParityReport()
    for content in ((192, 256), (180, 320)):
        frames = torch.randint(0, 256, (1, 3, 192, 320, 3), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(5))
        hw = torch.tensor([content], dtype=torch.int32)
        with torch.no_grad():
            expected = {k: v.numpy() for k, v in model(frames, hw).items()}
        got = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {
            "frames": frames.numpy(), "content_hw": hw.numpy()}), strict=True))
        compare(expected, got, report, FP32_TOLERANCES, pasted_mask_cells=model.pasted_mask_cells)
    assert not report.failures, report.failures
