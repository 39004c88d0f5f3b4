"""DETR's 2-D sine positional encoding (IFC has no temporal encoding).

Official ``models/position_encoding.py:28-48`` (``normalize=True``, scale 2π, temperature
10000): y = cumsum of the not-padded mask down the rows, x = along the columns, each divided by
its last value (+1e-6) and scaled; channel 2k is sin(u/10000^(2k/F)), channel 2k+1 is cos of
the same frequency; the result is [y (F channels); x (F channels)].

Without padding row i of h and column j of w get y = (i+1)/(h+1e-6)·2π, x = (j+1)/(w+1e-6)·2π
(``forward``, one table for every frame). With padding (``masked``) each clip gets its own table
from the rectangle of real cells (``models.common.padding``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.common.padding import cumsum_ramp, sine_channels


class PositionEmbeddingSine(nn.Module):
    """(h, w) -> Tensor[h·w, 2F] (row-major tokens); (rows, cols) -> Tensor[B, h·w, 2F]."""

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

    def masked(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Real cells bool[B, h] x bool[B, w] (``content_cells``) -> Tensor[B, h·w, 2F].

        Padded cells get the official values: a padded column counts 0 rows (y = 0), a padded row
        of a real column keeps the last count (y = 2π·h'/(h'+1e-6)); likewise for x.
        """
        b, h, w = rows.shape[0], rows.shape[1], cols.shape[1]
        f, scale = self.num_pos_feats, 2 * math.pi
        y = cumsum_ramp(rows, cols, scale)  # [B, h, w]
        x = cumsum_ramp(cols, rows, scale).transpose(1, 2)  # [B, h, w]
        pos = torch.cat(
            (sine_channels(y, f, self.temperature), sine_channels(x, f, self.temperature)), dim=-1
        )
        return pos.reshape(b, h * w, 2 * f)

