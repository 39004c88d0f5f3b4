"""IFC and VisTR training criteria, the shared softmax pieces, the recipes and checkpoint history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import build_model
from training.data import ClipSampler
from training.loop import TrainConfig, reproduce_command, save_checkpoint
from training.recipes import stage_commands
from training.softmax_criterion import no_object_ce, pairwise_dice_cost, resize_masks


def test_no_object_column_is_down_weighted():
    logits = torch.zeros(2, 3)
    targets = torch.tensor([2, 2])  # both no-object
    plain = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(no_object_ce(logits, targets), plain)  # weighted mean, one class
    mixed = torch.tensor([0, 2])
    w = torch.tensor([1.0, 0.1])
    expected = (plain * w).sum() / w.sum()
    torch.testing.assert_close(no_object_ce(logits, mixed), expected)


def test_dice_cost_prefers_the_overlapping_mask():
    target = torch.zeros(2, 16)
    target[0, :8], target[1, 8:] = 1, 1
    logits = torch.full((2, 16), -9.0)
    logits[0, 8:], logits[1, :8] = 9.0, 9.0  # prediction 0 covers target 1 and vice versa
    cost = pairwise_dice_cost(logits, target)
    assert cost[0, 1] < 0.01 and cost[0, 0] > 0.9 and cost[1, 0] < 0.01  # smoothing 1: 1 - 1/17


def test_resize_masks_keeps_area_fractions():
    masks = torch.zeros(1, 2, 8, 8)
    masks[0, :, :4] = 1
    small = resize_masks(masks, (4, 4))
    assert small.shape == (1, 2, 4, 4) and float(small.mean()) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["ifc", "vistr"])
def test_a_training_step_is_finite_and_reaches_every_head(name, tmp_path):
    from training.loop import LOSSES

    torch.manual_seed(0)
    model = build_model(name, "tiny").train()
    frames = model.spec.fixed_frames or 2
    sampler = ClipSampler(input_hw=model.spec.input_hw, mean=model.spec.mean, clip_frames=frames,
                          pool_size=2, verbose=False)
    losses = LOSSES[name](model, [sampler.sample(), sampler.sample()])
    expected = {"cls", "mask", "dice"} | ({"l1", "giou"} if name == "vistr" else set())
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total) and float(total) > 0
    total.backward()
    head = model.detr.mask_head if name == "ifc" else model.insmask_head
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    path = save_checkpoint(model.eval(), TrainConfig(model=name, iterations=1), [], tmp_path / "c.pth")
    build_model(name, "tiny", checkpoint=path)  # strict, weights_only


def test_vistr_matching_is_per_slot_over_the_clip():
    from training.vistr_loss import VisTRLossWeights, _match

    t, s = 3, 4
    probs = torch.full((t, s, 3), 1 / 3)
    boxes = torch.full((t, s, 4), 0.5)
    gt = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.8, 0.7, 0.2, 0.2]])
    boxes[:, 2] = gt[0]
    boxes[:, 1] = gt[1]
    gt_boxes = gt[:, None].expand(2, t, 4)
    slot, g = _match(probs, boxes, torch.tensor([0, 1]), gt_boxes, torch.ones(2, t, dtype=torch.bool),
                     VisTRLossWeights())
    assert dict(zip(g.tolist(), slot.tolist())) == {0: 2, 1: 1}


def test_recipe_stages_chain_their_checkpoints():
    commands = stage_commands("tevit", "checkpoints/tevit_tiny.pth")
    assert len(commands) >= 1 and commands[-1][-1] == "checkpoints/tevit_tiny.pth"
    for previous, current in zip(commands, commands[1:]):
        assert current[current.index("--init") + 1] == previous[-1]
    with pytest.raises(SystemExit, match="recipe"):
        stage_commands("nope", "x.pth")


def test_checkpoint_meta_keeps_the_earlier_stages(tmp_path):
    model = build_model("ifc", "tiny")
    first = save_checkpoint(model, TrainConfig(model="ifc", lr=1e-4), [{"step": 1}], tmp_path / "a.pth")
    cfg = TrainConfig(model="ifc", init=str(first))
    second = save_checkpoint(model, cfg, [{"step": 2}], tmp_path / "b.pth")
    meta = torch.load(second, weights_only=True)["meta"]
    assert meta["history"][0]["curve"] == [{"step": 1}]
    assert "--lr 0.0001" in meta["history"][0]["command"]
    assert reproduce_command(cfg, "b.pth").endswith(f"--init {first} --out b.pth")
    assert np.isfinite(meta["config"]["lr"])
