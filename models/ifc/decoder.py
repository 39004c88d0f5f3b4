"""IFC's clip decoder and the transformer that owns the memory tokens.

The decoder's memory is every frame token of the clip and every memory token of the clip
(frame-major), with positions [2-D sine per frame; ``memory_pos`` per slot]. Queries start at zero
with ``query_embed`` as their positional embedding; post-norm layers, then a final LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from models.ifc.layers import TransformerDecoderLayer
from models.ifc.memory_bus import IFCEncoder


class IFCDecoder(nn.Module):
    """queries Tensor[B, Q, C] x memory Tensor[B, L, C] -> Tensor[B, Q, C] (after ``norm``)."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, nheads, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        out = torch.zeros_like(query_pos)
        for layer in self.layers:
            out = layer(out, memory, pos, query_pos)
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
        self, src: torch.Tensor, pos: torch.Tensor, query_embed: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """src Tensor[B·T, h·w, C], pos Tensor[h·w, C], query_embed Tensor[Q, C].

        Returns (decoder output Tensor[B, Q, C], encoded frame tokens Tensor[B·T, h·w, C]).
        """
        frames, bus = self.encoder(src, pos, self.memory_bus, self.memory_pos, batch)
        c = frames.shape[2]
        t = frames.shape[0] // batch
        memory = torch.cat((frames.reshape(batch, -1, c), bus.reshape(batch, -1, c)), dim=1)
        mem_pos = torch.cat((pos.repeat(t, 1), self.memory_pos.repeat(t, 1)), dim=0)[None]
        query_pos = query_embed[None].expand(batch, -1, c)
        return self.clip_decoder(memory, mem_pos, query_pos), frames
