"""Official VisTR R-50 / R-101 checkpoint layout (key tables of the spec) loads strictly."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model
from models.errors import CheckpointError
from models.vistr.model import build


def _synthetic_state(table: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A tensor of every key/shape of the table, each key a distinct positive constant (cheap)."""
    return {k: torch.full(s, 0.01 + 1e-5 * i) for i, (k, s) in enumerate(table.items())}


@pytest.mark.parametrize(("preset", "entries"), [("r50", 503), ("r101", 758)])
def test_model_matches_the_key_table_and_parameter_count(preset, entries, key_table):
    table, stated = key_table(f"vistr_{preset}")
    assert len(table) == entries and sum(math.prod(s) for s in table.values()) == stated
    model = build(preset)
    # Module names mirror the official VisTRsegm, so there is no key map: same keys, same shapes.
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == table
    assert sum(v.numel() for v in model.state_dict().values()) == stated  # 57,222,369 / 76,266,721


@pytest.mark.parametrize("preset", ["r50", "r101"])
def test_official_checkpoint_file_loads_through_build_model(preset, tmp_path, key_table):
    table, _ = key_table(f"vistr_{preset}")
    state = _synthetic_state(table)
    path = tmp_path / f"vistr_{preset}.pth"
    torch.save({"model": state, "epoch": 17}, path)  # main.py's checkpoint layout
    model = build_model("vistr", preset, checkpoint=path)
    loaded = model.state_dict()
    for key in (
        "vistr.query_embed.weight",
        "vistr.backbone.0.body.layer3.5.bn2.running_var",
        "mask_head.dcn.weight",
        "insmask_head.9.weight",
        "bbox_attention.k_linear.bias",
        "vistr.transformer.decoder.layers.5.multihead_attn.in_proj_weight",
    ):
        assert torch.equal(loaded[key], state[key]), key
    assert not model.training


def test_pre_fix_checkpoint_with_41_logits_is_refused_by_name(tmp_path, key_table):
    """Checkpoints from before the class-id fix (commit 3f73629) have a 41-row class_embed."""
    table, _ = key_table("vistr_r50")
    state = _synthetic_state(table)
    state["vistr.class_embed.weight"] = torch.zeros(41, 384)
    state["vistr.class_embed.bias"] = torch.zeros(41)
    del state["mask_head.dcn.weight"]
    state["mask_head.dcn.bias"] = torch.zeros(24)
    path = tmp_path / "old.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as err:
        build_model("vistr", "r50", checkpoint=path)
    message = str(err.value)
    for needle in (
        "missing keys: mask_head.dcn.weight",
        "unexpected keys: mask_head.dcn.bias",
        "vistr.class_embed.weight: checkpoint (41, 384) vs model (42, 384)",
    ):
        assert needle in message
