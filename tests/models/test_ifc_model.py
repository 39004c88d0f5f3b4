"""IFC tiny: contract outputs, stage composition, memory-token exchange, post-processing rules."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from models import available, build_model
from models.common.attention import PackedAttention as MultiheadAttention
from models.common.box_ops import masks_to_boxes
from models.common.detr_layers import PostNormEncoderLayer
from models.ifc.config import PRESETS
from models.ifc.memory_bus import exchange_over_time
from models.ifc.model import IFCModel
from models.ifc.postprocess import rank_pairs

H, W = PRESETS["tiny"].input_hw


def _frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, H, W, 3), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def model() -> IFCModel:
    torch.manual_seed(0)
    return build_model("ifc", "tiny")


def test_available_lists_presets():
    assert available()["ifc"] == ["r101", "r50", "tiny"]


@pytest.mark.parametrize("b,t", [(1, 1), (2, 3)])
def test_contract_shapes_dtypes_ranges(model, b, t):
    k, d = model.spec.num_outputs, model.spec.embedding_dim
    with torch.no_grad():
        out = model(_frames(b, t))
    assert out["scores"].shape == (b, k) and out["scores"].dtype == torch.float32
    assert out["labels"].shape == (b, k) and out["labels"].dtype == torch.int32
    assert out["masks"].shape == (b, k, t, H // 4, W // 4)
    assert out["boxes"].shape == (b, k, t, 4)
    assert out["embeddings"].shape == (b, k, d)
    assert out["query_index"].dtype == torch.int32
    assert ((out["scores"] >= 0) & (out["scores"] <= 1)).all()
    assert ((out["labels"] >= 0) & (out["labels"] < len(model.spec.classes))).all()
    assert ((out["query_index"] >= 0) & (out["query_index"] < model.cfg.num_queries)).all()
    torch.testing.assert_close(out["embeddings"].norm(dim=-1), torch.ones(b, k))
    assert (out["scores"][:, :-1] >= out["scores"][:, 1:]).all(), "rows are sorted by score"


def test_frame_features_computed_separately_give_the_window_output(model):
    """Streaming property: features of each frame alone, stacked along T, equal the clip's."""
    frames = _frames(1, 4, seed=1)
    with torch.no_grad():
        whole = model(frames)
        per_frame = [model.frame_stage(frames[:, i : i + 1]) for i in range(4)]
        stacked = [torch.cat(parts, dim=1) for parts in zip(*per_frame, strict=True)]
        streamed = model.clip_stage(*stacked)
    for name, ref in whole.items():
        torch.testing.assert_close(streamed[name], ref, rtol=1e-5, atol=1e-5, msg=name)


def test_contract_rows_are_the_official_clip_outputs(model):
    """scores = softmax p of (query, label) for kept queries; masks = sigmoid(×2 bilinear logits)."""
    frames = _frames(1, 3, seed=6)
    with torch.no_grad():
        raw, out = model.official_outputs(frames), model(frames)
        q, lab = out["query_index"][0].long(), out["labels"][0].long()
        prob = raw["pred_logits"][0].softmax(-1)
        kept = prob[:, :-1].max(-1).values >= prob[:, -1]
        expected = torch.where(kept[q], prob[q, lab], torch.zeros(()))
        up = torch.nn.functional.interpolate(raw["pred_masks"][0, q], scale_factor=2,
                                             mode="bilinear", align_corners=False)
    torch.testing.assert_close(out["scores"][0], expected)
    torch.testing.assert_close(out["masks"][0], up.sigmoid(), rtol=1e-5, atol=1e-6)


def test_frames_communicate_through_memory_tokens(model):
    """Frame 1's masks depend on frame 0 only through the memory exchange and the decoder."""
    a = _frames(1, 2, seed=2)
    b = a.clone()
    b[:, 0] = 255 - b[:, 0]
    with torch.no_grad():
        fa, fb = model.frame_stage(a), model.frame_stage(b)
        # Frame 1's own features are identical; its decoded output is not.
        torch.testing.assert_close(fa[0][:, 1], fb[0][:, 1])
        _, _, _, pa = model.decode(*fa)
        _, _, _, pb = model.decode(*fb)
    # Bitwise-equal inputs would give bitwise-equal rows; random init makes the effect small.
    assert (pa[1] - pb[1]).abs().max() > 1e-6


def test_output_is_equivariant_to_frame_order(model):
    """No temporal encoding: permuting frames permutes masks and leaves scores unchanged."""
    frames = _frames(1, 3, seed=3)
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        ref, out = model(frames), model(frames[:, perm])
    torch.testing.assert_close(out["scores"], ref["scores"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["masks"], ref["masks"][:, :, perm], rtol=1e-4, atol=1e-4)


def test_exchange_over_time_equals_per_slot_loop():
    """Reference: slot m of clip b attends over the T frames of that clip only (Python loop)."""
    torch.manual_seed(0)
    layer = PostNormEncoderLayer(16, 4, 32).eval()
    b, t, m, c = 2, 5, 3, 16
    bus = torch.randn(b * t, m, c)
    with torch.no_grad():
        fast = exchange_over_time(bus, b, layer)
        ref = torch.empty_like(bus)
        for i in range(b):
            for j in range(m):
                ref[i * t : (i + 1) * t, j] = layer(bus[i * t : (i + 1) * t, j][None])[0]
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)


def test_attention_equals_nn_multihead_attention():
    torch.manual_seed(0)
    ours = MultiheadAttention(32, 4).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())  # same parameter names and layout
    q, k = torch.randn(2, 7, 32), torch.randn(2, 11, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(q, k, k), ref(q, k, k, need_weights=False)[0],
                                   rtol=1e-5, atol=1e-6)


def test_rank_pairs_follows_the_official_keep_rule():
    # 2 classes + no-object. q0: no-object wins -> its pairs score 0 and rank last.
    # q1: class 1 wins. q2: tie between class 0 and no-object -> kept (first maximum).
    logits = torch.log(torch.tensor([[[0.2, 0.1, 0.7], [0.1, 0.6, 0.3], [0.4, 0.2, 0.4]]]))
    scores, labels, query = rank_pairs(logits, 6)
    assert query[0, :4].tolist() == [1, 2, 2, 1]
    assert labels[0, :4].tolist() == [1, 0, 1, 0]
    torch.testing.assert_close(scores[0, :4], torch.tensor([0.6, 0.4, 0.2, 0.1]))
    assert scores[0, 4:].tolist() == [0.0, 0.0] and query[0, 4:].tolist() == [0, 0]
    assert labels[0, 4:].tolist() == [0, 1], "dropped pairs stay ordered by p, not tied"


def test_boxes_are_the_boxes_of_the_masks(model):
    with torch.no_grad():
        out = model(_frames(1, 2, seed=5))
    torch.testing.assert_close(out["boxes"], masks_to_boxes(out["masks"], stride=4))


def test_bgr_preset_flips_channels_and_msra_moves_the_stride():
    torch.manual_seed(0)
    tiny = PRESETS["tiny"]
    bgr = IFCModel(dataclasses.replace(tiny, input_format="BGR")).eval()
    # An RGB-input model fed BGR frames with BGR-ordered mean/std sees the same network input.
    rgb = IFCModel(dataclasses.replace(tiny, mean=tiny.mean[::-1], std=tiny.std[::-1])).eval()
    rgb.load_state_dict(bgr.state_dict())
    frames = _frames(1, 2, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(bgr(frames)["masks"], rgb(frames.flip(-1))["masks"])
    msra = IFCModel(dataclasses.replace(PRESETS["tiny"], stride_in_1x1=True))
    block = msra.detr.backbone[0].backbone.res3[0]
    assert (block.conv1.stride, block.conv2.stride) == ((2, 2), (1, 1))
    block = rgb.detr.backbone[0].backbone.res3[0]
    assert (block.conv1.stride, block.conv2.stride) == ((1, 1), (2, 2))
    r101 = PRESETS["r101"]
    assert (r101.stride_in_1x1, r101.input_format, r101.std) == (True, "BGR", (1.0, 1.0, 1.0))
    assert r101.mean == (123.675, 116.28, 103.53), "RGB-ordered = official BGR mean reversed"
