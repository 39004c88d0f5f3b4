"""VisTR presets, spec, clip rule and the inference rules that produce the contract tensors."""

from __future__ import annotations

import math

import pytest
import torch

from models import available, build_model
from models.base import OUTPUT_NAMES, SYNTHETIC_CLASSES
from models.vistr.clip import ClipLengthError, cyclic_clip_indices, cyclic_pad, kept_frames
from models.vistr.config import PRESETS, VisTRConfigError, check_config
from models.vistr.heads import MHAttentionMap
from models.vistr.inference import class_scores, clip_score_and_label, contract_outputs
from models.vistr.model import build


def _official_clip_names(file_names: list, num_frames: int) -> list:
    """inference.py, verbatim logic: repeat the frame list when short, else take the first T."""
    length = len(file_names)
    if length < num_frames:
        clip_names = file_names * (math.ceil(num_frames / length))
        clip_names = clip_names[:num_frames]
    else:
        clip_names = file_names[:num_frames]
    return clip_names


@pytest.mark.parametrize("length", [1, 5, 20, 35, 36, 37, 80])
def test_cyclic_padding_follows_the_official_rule(length):
    names = [f"{i:05d}.jpg" for i in range(length)]
    assert cyclic_pad(names, 36) == _official_clip_names(names, 36)
    assert kept_frames(length, 36) == min(length, 36)


def test_cyclic_padding_examples_and_errors():
    assert cyclic_clip_indices(20, 36) == list(range(20)) + list(range(16))
    assert cyclic_clip_indices(4, 6) == [0, 1, 2, 3, 0, 1]
    assert cyclic_clip_indices(9, 6) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ClipLengthError, match="length >= 1"):
        cyclic_clip_indices(0, 6)


def test_presets_and_specs():
    assert available()["vistr"] == ["r101", "r50", "tiny"]
    for name, cfg in PRESETS.items():
        check_config(cfg)
        spec = build(name).spec if name == "tiny" else None
        if spec is not None:
            assert spec.fixed_frames == 6 and spec.frames == (6, 6, 6) and spec.window == (6, 4)
            assert spec.classes == SYNTHETIC_CLASSES and spec.num_outputs == 10
            assert spec.embedding_dim == 96 and spec.input_hw == (192, 320)
            assert spec.extra["short_clip_padding"] == "cyclic"
    official = PRESETS["r50"]
    assert (official.num_queries, official.num_logits, official.hidden_dim) == (360, 42, 384)
    assert official.mask_dims == (392, 192, 96, 48, 24) and official.class_offset == 1
    assert len(official.classes) == 40 and official.classes[0] == "person"
    assert official.input_hw == (320, 544)
    with pytest.raises(VisTRConfigError, match="multiples of 32"):
        build("tiny", input_hw=(100, 96))


def test_bad_config_is_refused_by_name():
    import dataclasses

    with pytest.raises(VisTRConfigError, match="divisible by 6"):
        check_config(dataclasses.replace(PRESETS["tiny"], hidden_dim=100))


def test_mask_width_sets_the_upsampling_widths_only():
    import dataclasses

    tiny = PRESETS["tiny"]
    assert tiny.mask_width is None and tiny.mask_dims == (104, 48, 24, 12, 6)
    wide = dataclasses.replace(tiny, mask_width=384, mask_gn_groups=8, insmask_gn_groups=4)
    assert wide.mask_dims == (104, 192, 96, 48, 24)  # the first width stays d + heads
    check_config(wide)
    with pytest.raises(VisTRConfigError, match="mask_gn_groups"):
        check_config(dataclasses.replace(tiny, mask_width=384, mask_gn_groups=7))


def test_tiny_forward_gives_the_contract_and_refuses_other_clip_lengths():
    model = build("tiny", input_hw=(64, 96)).eval()
    assert model.spec.input_hw == (64, 96)
    frames = torch.randint(0, 256, (2, 6, 64, 96, 3), dtype=torch.uint8)
    with torch.no_grad():
        out = model(frames)
    assert list(out) == list(OUTPUT_NAMES)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "scores": (2, 10),
        "labels": (2, 10),
        "masks": (2, 10, 6, 16, 24),
        "boxes": (2, 10, 6, 4),
        "embeddings": (2, 10, 96),
        "query_index": (2, 10),
    }
    assert out["labels"].dtype == torch.int32 and out["query_index"].dtype == torch.int32
    assert ((out["masks"] >= 0) & (out["masks"] <= 1)).all()
    torch.testing.assert_close(out["embeddings"].norm(dim=-1), torch.ones(2, 10))
    assert (out["labels"] >= 0).all() and (out["labels"] < len(SYNTHETIC_CLASSES)).all()
    with pytest.raises(ClipLengthError, match="exactly 6 frames.*cyclic_pad"):
        model(frames[:, :5])
    with pytest.raises(ValueError, match="expects uint8 frames"):
        build_model("vistr", "tiny")(frames)  # the preset's artifact size is 192x320


def test_attention_map_softmax_is_joint_over_heads_and_pixels():
    attn = MHAttentionMap(24, 24, num_heads=4)
    weights = attn(torch.randn(2, 3, 24), torch.randn(2, 24, 5, 7))
    assert weights.shape == (2, 3, 4, 5, 7)
    torch.testing.assert_close(weights.sum(dim=(2, 3, 4)), torch.ones(2, 3))
    assert not torch.allclose(weights.sum(dim=(3, 4)), torch.full((2, 3, 4), 1.0))  # not per head


def test_class_scores_drop_the_unused_and_no_object_columns():
    logits = torch.tensor(
        [[3.0, 1.0, 2.0, 0.0, 5.0]]
    )  # official layout: unused, 3 classes, no-object
    probs = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(class_scores(logits, class_offset=1), probs[:, 1:4])
    torch.testing.assert_close(class_scores(logits, class_offset=0), probs[:, 0:4])


def test_clip_label_is_the_mode_with_ties_to_the_lowest_class():
    # B=1, T=4, S=2, C=3: slot 0 votes 2,2,1,0 -> 2; slot 1 votes 1,2,2,1 (tie) -> 1.
    onehot = torch.eye(3)
    votes = [[2, 1], [2, 2], [1, 2], [0, 1]]
    probs = torch.stack([torch.stack([onehot[v] * 0.5 + 0.1 for v in frame]) for frame in votes])
    scores, labels = clip_score_and_label(probs.unsqueeze(0))
    assert labels.tolist() == [[2, 1]]
    torch.testing.assert_close(scores, torch.full((1, 2), 0.6))


def test_boxes_embeddings_and_slot_layout():
    b, t, s, d, h, w = 1, 2, 3, 4, 64, 96
    boxes = torch.zeros(b, t * s, 4)
    boxes[0, 1 * s + 2] = torch.tensor([0.5, 0.5, 0.25, 0.5])  # frame 1, slot 2
    hs = torch.randn(b, t * s, d)
    out = contract_outputs(
        torch.zeros(b, t * s, 5),
        boxes,
        torch.zeros(b, s, t, 16, 24),
        hs,
        num_ins=s,
        class_offset=1,
        input_hw=(h, w),
    )
    torch.testing.assert_close(out["boxes"][0, 2, 1], torch.tensor([36.0, 16.0, 60.0, 48.0]))
    expected = hs.reshape(t, s, d).mean(0)
    torch.testing.assert_close(out["embeddings"][0], expected / expected.norm(dim=-1, keepdim=True))
    assert out["query_index"].tolist() == [[0, 1, 2]]
