"""IFC and VisTR training criteria, the shared softmax pieces, the recipes and checkpoint history."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from models import build_model
from training.data import ClipSampler
from training.loop import TrainConfig, reproduce_command, save_checkpoint
from training.recipes import EXPERIMENTS, PRETRAIN, RECIPES, stage_commands
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
    expected = {"cls", "mask", "dice"} | ({"l1", "giou", "aux_attn"} if name == "vistr" else set())
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total) and float(total.detach()) > 0
    total.backward()
    head = model.detr.mask_head if name == "ifc" else model.insmask_head
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    if name == "vistr":  # the auxiliary term reaches the instance attention
        assert model.bbox_attention.q_linear.weight.grad.abs().sum() > 0
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


@pytest.mark.parametrize("recipes,model", [(RECIPES, m) for m in sorted(RECIPES)] +
                         [(EXPERIMENTS, m) for m in sorted(EXPERIMENTS)])
def test_recipe_stages_chain_their_checkpoints(recipes, model):
    out = f"checkpoints/{model}_tiny.pth"
    commands = stage_commands(model, out, recipes)
    assert len(commands) >= 1 and commands[-1][-1] == out
    assert "--init" not in commands[0]  # the first stage starts from nothing
    for previous, current in zip(commands, commands[1:]):
        assert current[current.index("--init") + 1] == previous[-1]
        if previous[0] != PRETRAIN:  # pretraining only comes before the detector stages
            assert current[0] != PRETRAIN
    for command in commands:  # every stage parses with its own CLI, for the recipe's model
        if command[0] == PRETRAIN:
            assert backbone_pretrain_parser_accepts(command[1:]).model == model
        else:
            assert training_parser_accepts(command).model == model
    with pytest.raises(SystemExit, match="recipe"):
        stage_commands("nope", "x.pth")


def test_the_ifc_recipe_pretrains_then_trains_on_refreshing_pools_within_90_minutes():
    commands = stage_commands("ifc", "checkpoints/ifc_tiny.pth")
    assert [c[0] for c in commands] == [PRETRAIN, "ifc", "ifc"]
    configs = [backbone_pretrain_parser_accepts(commands[0][1:])]
    configs += [training_parser_accepts(c) for c in commands[1:]]
    assert all(cfg.refresh_every > 0 for cfg in configs)  # never-repeating videos from the start
    assert sum(cfg.minutes for cfg in configs) <= 90  # the CPU budget
    for cfg in configs[1:]:  # near-online T, official backbone multiplier
        assert cfg.clip_frames == 5 and cfg.backbone_lr_mult == 0.1


def test_recipe_runs_a_pretrain_stage_with_its_own_cli(tmp_path):
    import training.__main__ as cli
    from training import backbone_pretrain

    out = str(tmp_path / "m.pth")
    recipe = {"vistr": [[PRETRAIN, "--minutes", "1"], ["--lr", "1e-4"]]}
    with mock.patch.dict(RECIPES, recipe), \
            mock.patch.object(backbone_pretrain, "main", return_value=0) as pretrain_main, \
            mock.patch.object(cli, "train", return_value=[{"step": 1}]) as train:
        assert cli.main(["vistr", "--recipe", "--out", out]) == 0
    pretrain_main.assert_called_once_with(["--preset", "tiny", "--model", "vistr", "--minutes", "1",
                                           "--out", f"{out}.stage0"])
    cfg = train.call_args.args[0]
    assert (cfg.model, cfg.lr, cfg.init, train.call_args.args[1]) == ("vistr", 1e-4, f"{out}.stage0", out)


def backbone_pretrain_parser_accepts(argv: list[str]):
    """The PretrainConfig that ``python -m training.backbone_pretrain ARGV`` would run."""
    from training import backbone_pretrain

    with mock.patch.object(backbone_pretrain, "pretrain", return_value=[]) as run:
        assert backbone_pretrain.main(argv) == 0
    assert run.call_count == 1
    return run.call_args.args[0]


def training_parser_accepts(argv: list[str]) -> TrainConfig:
    """The TrainConfig that ``python -m training ARGV`` would run."""
    import training.__main__ as cli

    with mock.patch.object(cli, "train", return_value=[{"step": 1}]) as run:
        assert cli.main(list(argv)) == 0
    assert run.call_count == 1
    return run.call_args.args[0]


def test_the_backbone_learning_rate_multiplier_scales_only_backbone_parameters():
    from training.loop import param_groups, scheduled_steps

    model = build_model("ifc", "tiny")
    params = list(model.parameters())
    assert param_groups(model, params, 1.0) == [{"params": params}]  # one rate: one group
    heads, backbone = param_groups(model, params, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert backbone["params"] and all(names[id(p)].startswith("detr.backbone.") for p in backbone["params"])
    assert heads["params"] and not any("backbone" in names[id(p)] for p in heads["params"])
    assert len(heads["params"]) + len(backbone["params"]) == len(params)
    optimizer = torch.optim.AdamW([heads, backbone], lr=1.0)
    cfg = TrainConfig(lr=3e-4, warmup=1, iterations=10)
    next(scheduled_steps(optimizer, cfg, "test"))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([3e-4, 3e-5])


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


def test_a_mask_stage_trains_only_the_named_modules_on_the_selected_terms(tmp_path):
    from training.loop import selected_terms, train, trainable_parameters

    model = build_model("vistr", "tiny").train()
    params = trainable_parameters(model, "mask_head,insmask_head")
    assert {id(p) for p in params} == {
        id(p) for m in (model.mask_head, model.insmask_head) for p in m.parameters()}
    assert not model.vistr.training and model.mask_head.training  # frozen parts: no dropout
    assert not any(p.requires_grad for p in model.vistr.parameters())
    with pytest.raises(SystemExit, match="unknown modules.*vistr, bbox_attention"):
        trainable_parameters(model, "mask_haed")
    losses = {"cls": torch.tensor(1.0), "mask": torch.tensor(2.0), "dice": torch.tensor(3.0)}
    assert list(selected_terms(losses, "mask, dice")) == ["mask", "dice"]
    with pytest.raises(SystemExit, match="unknown loss terms"):
        selected_terms(losses, "bbox")

    # Two real steps: the detector's weights stay bit-identical, the mask parts move.
    init = save_checkpoint(build_model("vistr", "tiny"), TrainConfig(model="vistr"), [], tmp_path / "a.pth")
    cfg = TrainConfig(model="vistr", iterations=2, warmup=1, pool_size=1, clips_per_step=1,
                      init=str(init), trainable="bbox_attention,mask_head,insmask_head",
                      terms="mask,dice", save_every=0)
    curve = train(cfg, tmp_path / "b.pth", log_every=1)
    assert set(curve[-1]) == {"step", "minutes", "mask", "dice", "total"}
    before = torch.load(init, weights_only=True)["state_dict"]
    after = torch.load(tmp_path / "b.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("vistr."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("mask_head."))


def test_vistr_attention_mass_loss_rewards_attention_on_the_object():
    from training.data import Clip
    from training.vistr_loss import attention_mass_loss

    t, s, heads, h, w = 2, 3, 2, 2, 4
    masks = np.zeros((1, t, 8, 16), dtype=bool)
    masks[0, :, :4, :4] = True  # the top-left cell of the 2x4 stride grid
    present = torch.tensor([[True, False]])  # frame 1 does not count
    clip = Clip(np.zeros((t, 8, 16, 3), np.uint8), np.array([0]), masks, np.zeros((1, t, 4), np.float32),
                present.numpy())
    focused = torch.zeros(t, s, heads, h, w)
    focused[:, :, 0, 0, 0] = 0.5
    focused[:, :, 1, 0, 0] = 0.5  # both heads on the object: all the mass
    uniform = torch.full((t, s, heads, h, w), 1 / (heads * h * w))
    slot, g = torch.tensor([1]), torch.tensor([0])
    assert float(attention_mass_loss(focused, 0, slot, g, clip, present)) == pytest.approx(0, abs=1e-6)
    assert float(attention_mass_loss(uniform, 0, slot, g, clip, present)) == pytest.approx(np.log(8))
    none = attention_mass_loss(uniform, 0, slot[:0], g[:0], clip, present)
    assert float(none) == 0


def test_auxiliary_terms_are_optimised_only_when_named():
    from training.loop import selected_terms

    losses = {"cls": torch.tensor(1.0), "dice": torch.tensor(2.0), "aux_attn": torch.tensor(3.0)}
    assert list(selected_terms(losses, None)) == ["cls", "dice"]
    assert list(selected_terms(losses, "dice,aux_attn")) == ["dice", "aux_attn"]


def test_vistr_region_assignment_gives_each_instance_its_nearest_free_cell():
    from training.vistr_loss import _region_match, slot_cell_centres

    cells = slot_cell_centres(10)
    assert cells.shape == (10, 2)  # 2 rows x 5 columns, row-major
    torch.testing.assert_close(cells[[0, 4, 5]], torch.tensor([[0.1, 0.25], [0.9, 0.25], [0.1, 0.75]]))
    assert slot_cell_centres(6).shape == (6, 2) and slot_cell_centres(7).shape == (7, 2)  # 2x3, 1x7
    box = [0.0, 0.0, 0.1, 0.1]
    # one instance at cell 0, one near the bottom-right cell, and one whose mean centre over its
    # present frame is at cell 1 (with its absent frame counted it would be nearer cell 2)
    gt = torch.tensor([[[0.1, 0.2] + box[2:]] * 2, [[0.88, 0.8] + box[2:]] * 2,
                       [[0.26, 0.24] + box[2:], [0.9, 0.25] + box[2:]]])
    present = torch.tensor([[True, True], [True, True], [True, False]])
    slot, g = _region_match(gt, present, 10)
    assert dict(zip(g.tolist(), slot.tolist())) == {0: 0, 1: 9, 2: 1}
    # more instances than slots: every slot gets one, no slot twice
    many = torch.rand(12, 2, 4)
    slot, g = _region_match(many, torch.ones(12, 2, dtype=torch.bool), 10)
    assert sorted(slot.tolist()) == list(range(10)) and len(set(g.tolist())) == 10


def test_vistr_assignment_choice_reaches_the_loss_and_is_checked():
    from training.loop import _loss_function
    from training.vistr_loss import vistr_losses

    torch.manual_seed(0)
    model = build_model("vistr", "tiny").train()
    sampler = ClipSampler(input_hw=model.spec.input_hw, mean=model.spec.mean,
                          clip_frames=model.spec.fixed_frames, pool_size=1, verbose=False)
    clip = sampler.sample()
    with torch.no_grad():
        official = vistr_losses(model, [clip])
        region = _loss_function(TrainConfig(model="vistr", assignment="region"))(model, [clip])
    assert set(region) == set(official) and all(torch.isfinite(v) for v in region.values())
    assert any(not torch.equal(region[k], official[k]) for k in ("l1", "giou"))  # other slots' boxes
    with pytest.raises(ValueError, match="hungarian, region"):
        vistr_losses(model, [clip], assignment="grid")
    with pytest.raises(SystemExit, match="VisTR only"):
        _loss_function(TrainConfig(model="tevit", assignment="region"))
    with pytest.raises(SystemExit, match="unknown"):
        _loss_function(TrainConfig(model="vistr", assignment="grid"))


@pytest.mark.parametrize("name", ["ifc", "vistr"])
def test_losses_give_the_model_each_clips_real_image_size(name):
    """As the official training masks its padded batch, each clip's content_hw reaches the model."""
    from training.data import Clip
    from training.loop import LOSSES

    torch.manual_seed(0)
    model = build_model(name, "tiny").train()
    t = model.spec.fixed_frames or 2
    h, w = model.spec.input_hw
    clips = []
    for content in ((180, 320), None):
        masks = np.zeros((1, t, h, w), bool)
        masks[0, :, 20:60, 40:100] = True
        clips.append(Clip(np.zeros((t, h, w, 3), np.uint8), np.array([1]), masks,
                          np.tile(np.float32([40, 20, 100, 60]), (1, t, 1)), np.ones((1, t), bool),
                          content_hw=content))
    method = "official_outputs" if name == "ifc" else "forward_raw"
    seen = []
    original = getattr(model, method)

    def spy(*args):
        seen.append(args[-1].tolist())
        return original(*args)

    with mock.patch.object(model, method, side_effect=spy):
        LOSSES[name](model, clips)
    assert seen == [[[180, 320], [h, w]]]


def test_vistr_gt_boxes_are_normalised_by_the_real_image():
    """Official ``Normalize`` divides by the image size before padding (transforms.py:507-511)."""
    from training.data import Clip
    from training.vistr_loss import clip_boxes_cxcywh

    box = np.float32([[[40, 20, 100, 60]]])  # xyxy pixels, N=1, T=1
    clip = Clip(np.zeros((1, 192, 320, 3), np.uint8), np.array([0]), np.zeros((1, 1, 192, 320), bool),
                box, np.ones((1, 1), bool), content_hw=(180, 240))
    expected = torch.tensor([[[70 / 240, 40 / 180, 60 / 240, 40 / 180]]])
    torch.testing.assert_close(clip_boxes_cxcywh(clip), expected)
    clip.content_hw = None  # the whole frame
    torch.testing.assert_close(clip_boxes_cxcywh(clip), torch.tensor([[[70 / 320, 40 / 192, 60 / 320, 40 / 192]]]))


@pytest.mark.parametrize("model", sorted(RECIPES))
def test_the_recipe_repeats_the_committed_checkpoints_last_stage(model):
    """``make train`` repeats what produced checkpoints/<model>_tiny.pth: the recipe's last
    stage runs the configuration of the command stored in that checkpoint's meta."""
    import dataclasses
    import shlex

    path = Path(__file__).resolve().parents[2] / "checkpoints" / f"{model}_tiny.pth"
    stored = shlex.split(torch.load(path, map_location="cpu", weights_only=False)["meta"]["command"])
    assert stored[:3] == ["python", "-m", "training"]
    want = dataclasses.asdict(training_parser_accepts(stored[3:]))
    got = dataclasses.asdict(training_parser_accepts(stage_commands(model, "x.pth")[-1]))
    for name in ("init", "out"):
        want.pop(name, None), got.pop(name, None)
    assert got == want


def test_experiment_without_recipe_is_refused_rather_than_ignored(capsys):
    import training.__main__ as cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["ifc", "--experiment", "--iterations", "1"])
    assert stop.value.code == 2 and "--recipe" in capsys.readouterr().err
