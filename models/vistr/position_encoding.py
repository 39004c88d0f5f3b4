"""VisTR's 3-D sine positional encoding over (t, y, x) (``models/position_encoding.py:29-55``).

With no padding (all frames of a clip share one size), the official cumulative sums of the
not-padded mask are ``1…n`` along each axis, so the encoding depends only on (T, h, w). We build
those ramps with ``arange`` and the same float32 operations, which gives bit-identical values and
no data-dependent ops in the exported graph. With padding (``masked``), each clip's rectangle of
real cells gives its own running counts (``models.common.padding.cumsum_ramp``); a padded cell
counts 0 frames, so its z is 0, as the official cumsum over T of an all-padded column.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.common.padding import cell_mask, cumsum_ramp, sine_channels


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

    def masked(self, rows: torch.Tensor, cols: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Real cells bool[B, h] x bool[B, w] of every frame of a clip -> Tensor[B, T*h*w, 3F].

        Official ``z_embed = not_mask.cumsum(1)`` over the T frames of the same mask: t+1 on a
        real cell and 0 on padding, then normalised by its last value like y and x.
        """
        b, h, w = rows.shape[0], rows.shape[1], cols.shape[1]
        f, t = self.num_pos_feats, num_frames
        y = cumsum_ramp(rows, cols, self.scale)  # [B, h, w]
        x = cumsum_ramp(cols, rows, self.scale).transpose(1, 2)  # [B, h, w]
        real = cell_mask(rows, cols).to(torch.float32)  # [B, h, w]
        frame = torch.arange(1, t + 1, dtype=torch.float32, device=rows.device)
        z = frame[None, :, None, None] * real[:, None]  # [B, T, h, w]
        z = z / (z[:, -1:] + 1e-6) * self.scale
        shape = (b, t, h, w, f)
        pos = torch.cat((
            sine_channels(z, f, self.temperature),
            sine_channels(y, f, self.temperature)[:, None].expand(shape),
            sine_channels(x, f, self.temperature)[:, None].expand(shape),
        ), dim=-1)
        return pos.reshape(b, t * h * w, 3 * f)
