"""DETR's sequence-first layer pieces as the official IFC and VisTR code computes them, on
weights read by their official names (``sd[prefix + name]``), for the official transcriptions
(``ifc_official.py``, ``vistr_official.py``). Shares no code with ``models/``."""

from __future__ import annotations

import torch.nn.functional as F


def _ln(sd, p, x):
    return F.layer_norm(x, x.shape[-1:], sd[p + "weight"], sd[p + "bias"])


def _mha(sd, p, q, k, v, heads, key_padding_mask):
    """nn.MultiheadAttention forward, sequence-first [L, N, E]; bool mask True = ignore (-inf)."""
    return F.multi_head_attention_forward(
        q, k, v, q.shape[-1], heads, sd[p + "in_proj_weight"], sd[p + "in_proj_bias"],
        None, None, False, 0.0, sd[p + "out_proj.weight"], sd[p + "out_proj.bias"],
        training=False, key_padding_mask=key_padding_mask, need_weights=False,
    )[0]


def _ffn(sd, p, x):
    x1 = F.relu(F.linear(x, sd[p + "linear1.weight"], sd[p + "linear1.bias"]))
    return F.linear(x1, sd[p + "linear2.weight"], sd[p + "linear2.bias"])
