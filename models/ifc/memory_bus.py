"""IFC's encoder: per-frame layers that read/write M memory tokens, and the memory exchange over time.

One block l (order as in the official ``IFCEncoder``):
1. Encode-Receive: per frame, ``enc_layers[l]`` over [h·w frame tokens; M memory tokens], positions
   [2-D sine; ``memory_pos``] added to queries and keys.
2. Gather-Communicate: ``bus_layers[l]`` over the **time** axis, one sequence per (clip, slot): slot m
   of frame t attends only to slot m of the other frames of its clip, without positions.
3. Distribute: the updated tokens are concatenated to the frames in the next block.
The exchange is a reshape/transpose plus attention, so it works for any T without a loop.
With a padding mask, step 1 masks the frame's padded tokens as keys and never the memory tokens
(official ``transformer.py:124-125``, ``pad_zero``); step 2 is unmasked (``transformer.py:137``).
"""

from __future__ import annotations

import torch
from torch import nn

from models.common.detr_layers import PostNormEncoderLayer


def exchange_over_time(bus: torch.Tensor, batch: int, layer: nn.Module) -> torch.Tensor:
    """Tensor[B·T, M, C] (frame-major) -> Tensor[B·T, M, C] after ``layer`` runs along T per slot."""
    _, m, c = bus.shape
    per_slot = bus.reshape(batch, -1, m, c).transpose(1, 2).reshape(batch * m, -1, c)  # [B·M, T, C]
    per_slot = layer(per_slot)
    return per_slot.reshape(batch, m, -1, c).transpose(1, 2).reshape(-1, m, c)  # [B·T, M, C]


class IFCEncoder(nn.Module):
    """src Tensor[B·T, h·w, C] -> (frame tokens Tensor[B·T, h·w, C], memory Tensor[B·T, M, C])."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, num_layers: int):
        super().__init__()
        self.enc_layers = nn.ModuleList(
            PostNormEncoderLayer(dim, nheads, dim_feedforward) for _ in range(num_layers)
        )
        self.bus_layers = nn.ModuleList(
            PostNormEncoderLayer(dim, nheads, dim_feedforward) for _ in range(num_layers)
        )

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        memory_bus: torch.Tensor,
        memory_pos: torch.Tensor,
        batch: int,
        key_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """pos Tensor[P, h·w, C] with P = 1 (the same for every frame) or B·T; memory_bus and
        memory_pos Tensor[M, C] (shared); ``key_bias`` None or Tensor[B·T, h·w] (padding)."""
        bt, hw, c = src.shape
        m = memory_bus.shape[0]
        bus = memory_bus[None].expand(bt, m, c)
        bus_pos = memory_pos[None].expand(pos.shape[0], m, c)
        full_pos = torch.cat((pos, bus_pos), dim=1)  # [P, h·w+M, C]
        if key_bias is not None:  # memory tokens are never padding
            key_bias = torch.cat((key_bias, key_bias.new_zeros(bt, m)), dim=1)  # [B·T, h·w+M]
        for enc_layer, bus_layer in zip(self.enc_layers, self.bus_layers, strict=True):
            out = enc_layer(torch.cat((src, bus), dim=1), full_pos, key_bias)
            src, bus = out[:, :hw], out[:, hw:]
            bus = exchange_over_time(bus, batch, bus_layer)
        return src, bus
