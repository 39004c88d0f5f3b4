"""VisTR's 3-D sine positional encoding over (t, y, x) (``models/position_encoding.py``, A.2).

With no padding (all frames of a clip share one size), the official cumulative sums of the
not-padded mask are ``1…n`` along each axis, so the encoding depends only on (T, h, w). We build
those ramps with ``arange`` and the same float32 operations, which gives bit-identical values and
no data-dependent ops in the exported graph.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine3D(nn.Module):
    """Channels ``[z (F), y (F), x (F)]`` with F = ``num_pos_feats``; each axis interleaves sin/cos.

    For coordinate u ∈ {z, y, x} (u = (k+1)/(n+1e-6)·2π, k = 0…n-1 along an axis of length n),
    channel 2m is sin(u / 10000^(2m/F)) and channel 2m+1 is cos of the same frequency.
    """

    def __init__(
        self, num_pos_feats: int, temperature: float = 10000.0, scale: float = 2 * math.pi
    ):
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even (sin/cos pairs), got {num_pos_feats}")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale

    def _axis(self, n: int, device: torch.device) -> torch.Tensor:
        """Tensor[n, F]: the interleaved sin/cos encoding of the normalised ramp 1…n."""
        ramp = torch.arange(1, n + 1, dtype=torch.float32, device=device)
        ramp = ramp / (ramp[-1:] + 1e-6) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos = ramp[:, None] / dim_t  # [n, F]
        return torch.stack((pos[:, 0::2].sin(), pos[:, 1::2].cos()), dim=2).flatten(1)

    def forward(
        self, num_frames: int, height: int, width: int, device: torch.device
    ) -> torch.Tensor:
        """Positions of the frame-major token sequence: Tensor[T*h*w, 3F] (order t, y, x)."""
        f = self.num_pos_feats
        z = self._axis(num_frames, device)[:, None, None, :].expand(num_frames, height, width, f)
        y = self._axis(height, device)[None, :, None, :].expand(num_frames, height, width, f)
        x = self._axis(width, device)[None, None, :, :].expand(num_frames, height, width, f)
        return torch.cat((z, y, x), dim=3).reshape(num_frames * height * width, 3 * f)
