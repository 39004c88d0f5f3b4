"""Backbone pretraining (VisTR and IFC): BatchNorm in and out of each family's FrozenBN, dense
targets, real short runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models import build_model
from training.backbone_pretrain import (
    ADAPTERS,
    PretrainConfig,
    freeze_batchnorm,
    main,
    pretrain,
    semantic_targets,
    unfreeze_batchnorm,
)

# where each family's body sits in the state dict, and a key of its official FrozenBN layout
BODY_PREFIX = {"vistr": "vistr.backbone.0.", "ifc": "detr.backbone.0."}
OFFICIAL_NORM_KEY = {"vistr": "vistr.backbone.0.body.layer1.0.bn1.running_var",
                     "ifc": "detr.backbone.0.backbone.res2.0.conv1.norm.running_var"}


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_batchnorm_round_trip_keeps_the_function_and_the_layout(name):
    torch.manual_seed(0)
    adapter = ADAPTERS[name]
    body = adapter.body(build_model(name, "tiny", None))
    frozen = adapter.frozen
    frozen_total = _count(body, frozen)
    keys = list(body.state_dict())
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        before = [f.clone() for f in body(images)]
    assert unfreeze_batchnorm(body, frozen) == frozen_total > 0
    assert _count(body, frozen) == 0
    body.eval()
    with torch.no_grad():
        for a, b in zip(before, body(images)):
            torch.testing.assert_close(a, b)
    # Training statistics change the running buffers; folding keeps exactly what eval computes.
    body.train()
    with torch.no_grad():
        body(images * 3 + 1)
    body.eval()
    with torch.no_grad():
        trained = [f.clone() for f in body(images)]
    assert freeze_batchnorm(body, frozen) == frozen_total
    assert _count(body, nn.BatchNorm2d) == 0 and _count(body, frozen) == frozen_total
    with torch.no_grad():
        for a, b in zip(trained, body(images)):
            torch.testing.assert_close(a, b)
    assert list(body.state_dict()) == keys  # official FrozenBN keys, no num_batches_tracked


def test_the_adapters_feed_the_dense_head_strides_8_16_32():
    for name, adapter in ADAPTERS.items():
        model = build_model(name, "tiny", None)
        frames = torch.zeros(2, *model.spec.input_hw, 3, dtype=torch.uint8)
        with torch.no_grad():
            levels = adapter.levels(adapter.body(model)(adapter.images(model, frames)))
        h, w = model.spec.input_hw
        assert [tuple(f.shape) for f in levels] == [
            (2, c, h // s, w // s) for c, s in zip(adapter.channels(model), (8, 16, 32))], name


@pytest.mark.parametrize("input_format", ["RGB", "BGR"])
def test_the_ifc_adapter_feeds_the_body_what_the_frame_stage_feeds_it(input_format):
    import dataclasses

    from models.ifc.config import PRESETS
    from models.ifc.model import IFCModel

    torch.manual_seed(0)
    model = IFCModel(dataclasses.replace(PRESETS["tiny"], input_format=input_format)).eval()
    frames = torch.randint(0, 256, (1, 2, *model.spec.input_hw, 3), dtype=torch.uint8)
    seen = {}
    hook = model.detr.backbone.register_forward_hook(lambda m, i, o: seen.update(levels=o))
    with torch.no_grad():
        model.frame_stage(frames)
        hook.remove()
        adapter = ADAPTERS["ifc"]
        levels = adapter.levels(adapter.body(model)(adapter.images(model, frames[0])))
    for a, b in zip(seen["levels"], levels, strict=True):
        torch.testing.assert_close(a, b)


def test_an_unknown_model_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no adapter for 'tevit'; models: ifc, vistr"):
        pretrain(PretrainConfig(model="tevit"), tmp_path / "x.pth")
    with pytest.raises(SystemExit):
        main(["--model", "tevit", "--out", str(tmp_path / "x.pth")])
    assert "invalid choice: 'tevit'" in capsys.readouterr().err


def test_semantic_targets_sample_cell_centres_with_class_plus_one():
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, :4, :4] = True  # top-left quadrant, class 0
    masks[1, 4:, 4:] = True  # bottom-right quadrant, class 3
    target = semantic_targets(np.array([0, 3]), masks, (2, 2))
    np.testing.assert_array_equal(target, [[1, 0], [0, 4]])
    assert semantic_targets(np.zeros(0, dtype=np.int64), masks[:0], (2, 2)).sum() == 0


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_short_run_trains_only_the_backbone_and_loads_strictly(name, tmp_path):
    cfg = PretrainConfig(model=name, iterations=2, frames_per_step=2, pool_size=2, warmup=1,
                         video_frames=3)
    out = tmp_path / f"{name}_tiny.pth.backbone"
    pretrain(cfg, out, log_every=1)
    torch.manual_seed(cfg.seed)
    init = build_model(name, "tiny", None).state_dict()
    trained = build_model(name, "tiny", out).state_dict()  # strict load
    assert list(trained) == list(init)  # the official key layout, nothing added or lost
    changed = {k for k in init if not torch.equal(init[k].half().float(), trained[k].float())}
    assert changed and all(k.startswith(BODY_PREFIX[name]) for k in changed)
    assert OFFICIAL_NORM_KEY[name] in changed  # the BatchNorm statistics were folded
    assert any(trained[k].dim() == 4 for k in changed)  # the convolutions trained too
    meta = torch.load(out, map_location="cpu", weights_only=True)["meta"]
    assert meta["config"]["stage"] == "backbone_pretrain" and meta["config"]["model"] == name
    assert [row["step"] for row in meta["curve"]] == [1, 2]
    assert meta["command"].startswith("python -m training.backbone_pretrain")
    assert ("--model ifc" in meta["command"]) == (name == "ifc")  # vistr is the default


def test_a_run_continues_from_an_earlier_pretraining_on_a_refreshing_pool(tmp_path):
    first = tmp_path / "first.pth"
    pretrain(PretrainConfig(iterations=1, frames_per_step=2, pool_size=2, warmup=1, video_frames=3), first)
    cfg = PretrainConfig(iterations=2, frames_per_step=2, pool_size=2, warmup=1, video_frames=3,
                         refresh_every=1, seed=1, init=str(first))
    second = tmp_path / "second.pth"
    pretrain(cfg, second, log_every=1)
    before = build_model("vistr", "tiny", first).state_dict()
    after = build_model("vistr", "tiny", second).state_dict()  # strict load
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("vistr.backbone.0.") for k in changed)
    meta = torch.load(second, map_location="cpu", weights_only=True)["meta"]
    assert meta["history"][-1]["config"]["stage"] == "backbone_pretrain"  # the first run, recorded
    assert "--init" in meta["command"] and "--refresh-every 1" in meta["command"]

