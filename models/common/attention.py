"""Multi-head attention with the packed parameter layout of ``nn.MultiheadAttention``.

Official checkpoints store ``in_proj_weight`` (3C, C), ``in_proj_bias`` (3C) and ``out_proj``.
We keep those names (so state dicts load strictly) but write the computation explicitly:
``nn.MultiheadAttention`` bakes sequence lengths into legacy exports and hides the pattern from
TensorRT's fusions (docs/architecture.md "Toolchain facts").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PackedAttention(nn.Module):
    """softmax(Q Kᵀ / √d) V over ``num_heads`` heads, batch-first.

    Parameter names equal ``nn.MultiheadAttention``'s (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj.weight``, ``out_proj.bias``).
    """

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query Tensor[N, Lq, C], key/value Tensor[N, Lk, C] -> Tensor[N, Lq, C].

        ``key_bias`` Tensor[N, Lk] is added to every head's logits before the softmax: the
        official ``key_padding_mask`` as 0 / ``models.common.padding.MASKED_LOGIT``.
        """
        c, heads = self.embed_dim, self.num_heads
        w, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(query, w[:c], b[:c])
        k = F.linear(key, w[c : 2 * c], b[c : 2 * c])
        v = F.linear(value, w[2 * c :], b[2 * c :])
        n, lq, lk = query.shape[0], query.shape[1], key.shape[1]
        d = c // heads
        q = q.reshape(n, lq, heads, d).transpose(1, 2) * (1.0 / math.sqrt(d))  # [N, h, Lq, d]
        k = k.reshape(n, lk, heads, d).transpose(1, 2)  # [N, h, Lk, d]
        v = v.reshape(n, lk, heads, d).transpose(1, 2)  # [N, h, Lk, d]
        logits = q @ k.transpose(-1, -2)  # [N, h, Lq, Lk]
        if key_bias is not None:
            logits = logits + key_bias[:, None, None, :].to(logits.dtype)
        attn = torch.softmax(logits, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, lq, c)
        return self.out_proj(out)


class ResidualSelfAttention(nn.Module):
    """mmcv ``MultiheadAttention`` as used by the heads: ``x + attn(x, x, x)`` (dropout 0).

    The packed attention lives in ``self.attn`` so keys read ``<name>.attn.in_proj_weight``.
    """

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.attn = PackedAttention(embed_dim, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor[N, L, C] -> Tensor[N, L, C]."""
        return x + self.attn(x, x, x)
