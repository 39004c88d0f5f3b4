"""The VisTR mask-stage warm start: only the attention-map columns of mask_head.lay1 are scaled."""

from __future__ import annotations

import pytest
import torch

from models import build_model
from training.warm_start import scale_attention_inputs


def test_scales_only_the_attention_columns_and_keeps_the_layout():
    model = build_model("vistr", "tiny", None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = model.cfg.hidden_dim
    assert scale_attention_inputs(model, 300.0) == model.cfg.nheads
    after = model.state_dict()
    assert after.keys() == before.keys()
    w0, w1 = before["mask_head.lay1.weight"], after["mask_head.lay1.weight"]
    torch.testing.assert_close(w1[:, :d], w0[:, :d])
    torch.testing.assert_close(w1[:, d:], 300.0 * w0[:, d:])
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert changed == ["mask_head.lay1.weight"]


def test_attention_maps_then_move_the_first_mask_layer():
    """The reason for the gain: at equal weights the maps barely reach lay1's output."""
    torch.manual_seed(0)
    model = build_model("vistr", "tiny", None).eval()
    lay1, d = model.mask_head.lay1, model.cfg.hidden_dim
    memory = torch.randn(2, d, 6, 10)
    attn = torch.softmax(torch.randn(2, model.cfg.nheads * 60), -1).reshape(2, -1, 6, 10)

    def attention_share() -> float:
        with torch.no_grad():
            full = lay1(torch.cat((memory, attn), 1))
            no_attn = lay1(torch.cat((memory, torch.zeros_like(attn)), 1))
        return float((full - no_attn).std() / full.std())

    assert attention_share() < 0.02
    scale_attention_inputs(model, 300.0)
    assert attention_share() > 0.1


def test_other_models_get_a_clear_error():
    model = build_model("tevit", "tiny", None)
    with pytest.raises(SystemExit, match="applies to VisTR"):
        scale_attention_inputs(model, 2.0)
