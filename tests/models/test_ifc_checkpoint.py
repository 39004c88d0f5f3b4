"""Official IFC R-50 / R-101 checkpoint layout (key tables of the spec) loads strictly."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model
from models.checkpoint import check_keys
from models.errors import CheckpointError
from models.ifc.keymap import KEY_MAP
from models.ifc.model import build


@pytest.mark.parametrize("preset", ["r50", "r101"])
def test_model_matches_the_key_table_and_parameter_count(preset, key_table):
    table, stated = key_table(f"ifc_{preset}")
    assert sum(math.prod(s) for s in table.values()) == stated
    model = build(preset)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: table[k] for k in KEY_MAP(table)}
    # Everything in the official file but the criterion's [41] class weights is a model tensor.
    assert sum(v.numel() for v in model.state_dict().values()) == stated - 41


@pytest.mark.parametrize("preset", ["r50", "r101"])
def test_official_checkpoint_file_loads_through_build_model(preset, tmp_path, key_table):
    table, _ = key_table(f"ifc_{preset}")
    g = torch.Generator().manual_seed(0)
    state = {k: torch.rand(s, generator=g) for k, s in table.items()}
    path = tmp_path / f"ifc_{preset}.pth"
    torch.save({"model": state, "iteration": 5999}, path)  # detectron2 checkpointer layout
    model = build_model("ifc", preset, checkpoint=path)
    loaded = model.state_dict()
    for key in ("detr.query_embed.weight", "detr.backbone.0.backbone.res4.5.conv2.norm.running_var",
                "detr.transformer.encoder.bus_layers.2.self_attn.in_proj_weight"):
        assert torch.equal(loaded[key], state[key]), key
    assert not model.training


def test_key_map_drops_only_the_training_buffer():
    w = torch.zeros(3)
    assert KEY_MAP({"criterion.empty_weight": torch.ones(41), "detr.query_embed.weight": w}) == {
        "detr.query_embed.weight": w
    }
    model = build("tiny")
    state = dict(model.state_dict(), **{"criterion.empty_weight": torch.ones(6)})
    with pytest.raises(CheckpointError, match="criterion.empty_weight"):
        check_keys(model, state)  # without the key map it would be unexpected
    check_keys(model, KEY_MAP(state))


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    state = build("tiny").state_dict()
    state.pop("detr.mask_head.adapter1.weight")
    state["detr.transformer.memory_bus"] = torch.zeros(5, 64)
    state["detr.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as err:
        build_model("ifc", "tiny", checkpoint=path)
    msg = str(err.value)
    for key in ("detr.mask_head.adapter1.weight", "detr.extra.weight", "detr.transformer.memory_bus"):
        assert key in msg
