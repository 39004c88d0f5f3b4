"""DETR's 2-D sine positional encoding for un-padded frames (IFC has no temporal encoding).

With the padding mask all-False, row i of h and column j of w get
y = (i+1)/(h+1e-6)·2π and x = (j+1)/(w+1e-6)·2π; channel 2k is sin(u/10000^(2k/F)), channel
2k+1 is cos of the same frequency; the result is [y (F channels); x (F channels)].
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """(h, w) -> Tensor[h·w, 2F] (row-major tokens), identical for every frame."""

    def __init__(self, num_pos_feats: int, *, temperature: float = 10000.0):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature

    def _encode(self, coords: torch.Tensor, dim_t: torch.Tensor) -> torch.Tensor:
        """Tensor[n] -> Tensor[n, F], interleaved sin/cos."""
        u = coords[:, None] / dim_t
        return torch.stack((u[:, 0::2].sin(), u[:, 1::2].cos()), dim=2).flatten(1)

    def forward(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        scale, eps = 2 * math.pi, 1e-6
        f = self.num_pos_feats
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 1) / (h + eps) * scale
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 1) / (w + eps) * scale
        k = torch.arange(f, device=device, dtype=torch.float32)
        dim_t = self.temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / f)
        pos_y = self._encode(ys, dim_t)[:, None, :].expand(h, w, f)
        pos_x = self._encode(xs, dim_t)[None, :, :].expand(h, w, f)
        return torch.cat((pos_y, pos_x), dim=2).reshape(h * w, 2 * f)
