"""DETR post-norm transformer layers (batch-first, dropout omitted: inference only), shared by
IFC (official ``projects/IFC/ifc/models/transformer.py``) and VisTR (official
``models/transformer.py``): both keep DETR's ``TransformerEncoderLayer.forward_post`` /
``TransformerDecoderLayer.forward_post`` with the same parameter names, so one implementation
loads both checkpoints. The padding mask is an optional additive ``key_bias`` [N, L] (0 /
``MASKED_LOGIT``): ``src_key_padding_mask`` in the encoder's self-attention and
``memory_key_padding_mask`` in the decoder's cross-attention (IFC ``transformer.py:239-240,
308-311``; VisTR ``transformer.py:56-58``); the queries' self-attention is unmasked.

Attention is ``models.common.attention.PackedAttention``: ``nn.MultiheadAttention``'s parameter
names (``in_proj_weight`` [3C, C] with q, k, v rows in that order, ``in_proj_bias``, ``out_proj``)
so official weights load unchanged, computed with explicit reshapes, so exported graphs stay valid
for any sequence length (the legacy exporter bakes it into ``nn.MultiheadAttention``'s Reshapes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.common.attention import PackedAttention


def _ffn(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The FFN half of a DETR layer (``linear1`` -> ReLU -> ``linear2``, on the layer itself)."""
    return layer.linear2(F.relu(layer.linear1(x)))


class PostNormEncoderLayer(nn.Module):
    """Post-norm: x = LN(x + SA(x+pos, x+pos, x)); x = LN(x + FFN(x)). Tensor[N, L, C]."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int):
        super().__init__()
        self.self_attn = PackedAttention(dim, nheads)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor | None = None, key_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x Tensor[N, L, C]; pos Tensor[L, C], [N, L, C] or None; ``key_bias`` Tensor[N, L]:
        the padding mask as an additive bias (official ``src_key_padding_mask``)."""
        qk = x if pos is None else x + pos
        x = self.norm1(x + self.self_attn(qk, qk, x, key_bias))
        return self.norm2(x + _ffn(self, x))


class PostNormDecoderLayer(nn.Module):
    """Post-norm self-attention, cross-attention to memory, FFN. tgt Tensor[N, Q, C]."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int):
        super().__init__()
        self.self_attn = PackedAttention(dim, nheads)
        self.multihead_attn = PackedAttention(dim, nheads)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        key_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tgt/query_pos Tensor[N, Q, C]; memory/pos Tensor[N, L, C]; ``key_bias`` Tensor[N, L]
        masks the memory in cross-attention only (``memory_key_padding_mask``; the queries'
        self-attention is unmasked)."""
        qk = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(qk, qk, tgt))
        cross = self.multihead_attn(tgt + query_pos, memory + pos, memory, key_bias)
        tgt = self.norm2(tgt + cross)
        return self.norm3(tgt + _ffn(self, tgt))
