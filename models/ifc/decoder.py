"""IFC's clip decoder and the transformer that owns the memory tokens.

The decoder's memory is every frame token of the clip and every memory token of the clip
(frame-major), with positions [2-D sine per frame; ``memory_pos`` per slot]. Queries start at zero
with ``query_embed`` as their positional embedding; post-norm layers, then a final LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from models.common.detr_layers import PostNormDecoderLayer
from models.ifc.memory_bus import IFCEncoder


class IFCDecoder(nn.Module):
    """queries Tensor[B, Q, C] x memory Tensor[B, L, C] -> Tensor[B, Q, C] (after ``norm``)."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            PostNormDecoderLayer(dim, nheads, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        key_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``key_bias`` None or Tensor[B, L]: padded frame tokens of the memory."""
        out = torch.zeros_like(query_pos)
        for layer in self.layers:
            out = layer(out, memory, pos, query_pos, key_bias)
        return self.norm(out)


class IFCTransformer(nn.Module):
    """``detr.transformer``: memory tokens, encoder, clip decoder."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, enc_layers: int,
                 dec_layers: int, num_memory_bus: int):
        super().__init__()
        self.d_model = dim
        self.encoder = IFCEncoder(dim, nheads, dim_feedforward, enc_layers)
        self.clip_decoder = IFCDecoder(dim, nheads, dim_feedforward, dec_layers)
        # Official init (matters only when training from scratch): xavier on every matrix of the
        # encoder/decoder, then kaiming-normal (fan_out, relu) memory tokens and positions.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.memory_bus = nn.Parameter(torch.empty(num_memory_bus, dim))
        self.memory_pos = nn.Parameter(torch.empty(num_memory_bus, dim))
        nn.init.kaiming_normal_(self.memory_bus, mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(self.memory_pos, mode="fan_out", nonlinearity="relu")

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        query_embed: torch.Tensor,
        batch: int,
        key_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """src Tensor[B·T, h·w, C], query_embed Tensor[Q, C]; without padding pos Tensor[h·w, C]
        and ``key_bias`` None; with padding (official ``transformer.py:60-89``) pos
        Tensor[B, h·w, C] and ``key_bias`` Tensor[B, h·w] per clip (its frames share one size).

        Returns (decoder output Tensor[B, Q, C], encoded frame tokens Tensor[B·T, h·w, C]).
        """
        c = src.shape[2]
        t = src.shape[0] // batch
        if key_bias is None:
            frame_pos, frame_bias = pos[None], None  # [1, h·w, C]
        else:
            frame_pos, frame_bias = _per_frame(pos, t), _per_frame(key_bias, t)  # [B·T, h·w, ...]
        frames, bus = self.encoder(
            src, frame_pos, self.memory_bus, self.memory_pos, batch, frame_bias
        )
        # memory = [frame tokens, frame-major; memory tokens, frame-major] (transformer.py:182-186)
        memory = torch.cat((frames.reshape(batch, -1, c), bus.reshape(batch, -1, c)), dim=1)
        bus_pos = self.memory_pos.repeat(t, 1)  # [T·M, C]
        query_pos = query_embed[None].expand(batch, -1, c)
        if key_bias is None:
            mem_pos = torch.cat((pos.repeat(t, 1), bus_pos), dim=0)[None]
            return self.clip_decoder(memory, mem_pos, query_pos), frames
        bus_pos = bus_pos[None].expand(batch, -1, c)  # [B, T·M, C]
        mem_pos = torch.cat((frame_pos.reshape(batch, -1, c), bus_pos), dim=1)
        # the memory tokens are never padding (transformer.py:188, pad_zero)
        bus_bias = key_bias.new_zeros(batch, bus_pos.shape[1])  # [B, T·M]
        mem_bias = torch.cat((frame_bias.reshape(batch, -1), bus_bias), dim=1)
        return self.clip_decoder(memory, mem_pos, query_pos, mem_bias), frames


def _per_frame(x: torch.Tensor, t: int) -> torch.Tensor:
    """Tensor[B, ...] per clip -> Tensor[B·T, ...], the clip's row repeated for each frame."""
    return x.unsqueeze(1).expand(x.shape[0], t, *x.shape[1:]).flatten(0, 1)
