"""Training pieces: Hungarian matching, loss terms, clip sampling, a seeded step, checkpoint format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import build_model
from training.data import ClipSampler, mask_boxes
from training.loop import TrainConfig, save_checkpoint
from training.losses import dice_loss, paired_giou, pairwise_giou
from training.matching import match_clip
from training.tevit_loss import tevit_losses


def test_matching_finds_the_obvious_assignment():
    whwh = torch.tensor([100.0, 100.0, 100.0, 100.0])
    gt_boxes = torch.tensor([[[10, 10, 30, 30]] * 2, [[60, 60, 90, 90]] * 2], dtype=torch.float32)  # [N=2, T=2, 4]
    boxes = torch.tensor([[[0, 0, 5, 5], [61, 59, 90, 91], [11, 10, 29, 31]]] * 2, dtype=torch.float32)  # [T, P=3, 4]
    logits = torch.zeros(2, 3, 2)
    q, g = match_clip(logits, boxes, torch.tensor([0, 1]), gt_boxes, torch.ones(2, 2, dtype=torch.bool), whwh)
    assert dict(zip(g.tolist(), q.tolist())) == {0: 2, 1: 1}


def test_matching_ignores_frames_where_the_object_is_absent():
    whwh = torch.full((4,), 100.0)
    gt = torch.tensor([[[10, 10, 30, 30], [70, 70, 90, 90]]], dtype=torch.float32)  # absent in frame 1
    boxes = torch.tensor([[[10, 10, 30, 30], [70, 70, 90, 90]], [[70, 70, 90, 90], [10, 10, 30, 30]]],
                         dtype=torch.float32)  # query 0 fits frame 0, query 1 fits frame 1 only
    q, _ = match_clip(torch.zeros(2, 2, 1), boxes, torch.tensor([0]), gt, torch.tensor([[True, False]]), whwh)
    assert q.tolist() == [0]


def test_giou_and_dice_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    assert abs(float(paired_giou(a, b)) - (1 / 7 - 2 / 9)) < 1e-6
    assert torch.allclose(pairwise_giou(a, a), torch.ones(1, 1))
    big = torch.full((1, 4), 20.0)
    assert float(dice_loss(big, torch.ones(1, 4))) < 1e-6


def test_mask_boxes_are_tight_pixel_edges():
    masks = np.zeros((2, 5, 6), dtype=bool)
    masks[0, 1:3, 2:5] = True
    assert mask_boxes(masks).tolist() == [[2, 1, 5, 3], [0, 0, 0, 0]]


def test_a_refreshing_pool_renders_new_videos_oldest_first_and_a_fixed_pool_never_does():
    from evaluation.synthetic import generate_video

    kwargs = dict(input_hw=(64, 96), mean=(0.0, 0.0, 0.0), clip_frames=2, pool_size=3, video_frames=4,
                  verbose=False)
    fixed = ClipSampler(**kwargs)
    before = [v.frames.copy() for v in fixed.videos]
    for _ in range(10):
        fixed.sample()
    assert fixed.rendered == 3 and all(np.array_equal(a, v.frames) for a, v in zip(before, fixed.videos))

    fresh = ClipSampler(**kwargs, refresh_every=2, seed=4)
    for _ in range(5):
        fresh.sample()
    assert fresh.rendered == 5  # 3 + one new video after samples 2 and 4
    # videos 3 and 4 replaced the two oldest (0 and 1); video 2 is still there
    expected = [generate_video(i, preset=fresh.preset, seed=4).frames for i in (3, 4, 2)]
    assert all(np.array_equal(e, v.frames) for e, v in zip(expected, fresh.videos))
    assert fresh.videos[0].frames.shape[0] == 4


def test_mixed_aspect_pools_letterbox_each_video_with_its_own_content_size():
    from training.data import parse_aspects

    sampler = ClipSampler(input_hw=(64, 96), mean=(0.0, 0.0, 0.0), clip_frames=2, pool_size=4,
                          video_frames=3, verbose=False, aspects=parse_aspects("16:9,4:3"))
    shapes = [v.frames.shape[1:3] for v in sampler.videos]
    assert shapes == [(54, 96), (64, 84), (54, 96), (64, 84)]  # even sizes, filling one side
    seen = set()
    for _ in range(30):
        clip = sampler.sample()
        h, w = clip.content_hw
        seen.add((h, w))
        assert clip.masks[..., h:, :].sum() == 0 and clip.masks[..., :, w:].sum() == 0
        assert (clip.frames[:, h:] == 0).all() and (clip.frames[:, :, w:] == 0).all()  # padding
    assert seen == {(54, 96), (64, 84)}
    assert parse_aspects("") is None
    with pytest.raises(ValueError, match="W:H pairs such as 16:9,4:3"):
        parse_aspects("16:9,four:3")


def test_a_negative_refresh_interval_is_a_clear_error():
    with pytest.raises(ValueError, match="refresh_every must be >= 0"):
        ClipSampler(input_hw=(64, 96), mean=(0.0, 0.0, 0.0), pool_size=1, refresh_every=-1, verbose=False)


def test_a_training_step_reduces_nothing_to_nan_and_saves_a_loadable_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("tevit", "tiny").train()
    sampler = ClipSampler(input_hw=model.spec.input_hw, mean=model.spec.mean, clip_frames=2, pool_size=2,
                          verbose=False)
    clip = sampler.sample()
    assert clip.frames.shape == (2, 192, 320, 3) and clip.masks.shape[1:] == (2, 192, 320)
    losses = tevit_losses(model, [clip])
    assert set(losses) == {"cls", "l1", "giou", "dice", "bce"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.roi_head.mask_head[5].parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    path = save_checkpoint(model.eval(), TrainConfig(iterations=1), [{"step": 1, "total": float(total.detach())}],
                           tmp_path / "tevit_tiny.pth")
    reloaded = build_model("tevit", "tiny", checkpoint=path)  # weights_only=True, strict
    torch.testing.assert_close(reloaded.rpn_head.init_proposal_bboxes.weight,
                               model.rpn_head.init_proposal_bboxes.weight)


def test_tiny_presets_use_the_synthetic_dataset_classes_in_its_order():
    from evaluation.synthetic import CATEGORIES
    from models.base import SYNTHETIC_CLASSES

    assert SYNTHETIC_CLASSES == CATEGORIES
