"""VisTR's DETR transformer: post-norm encoder over all space-time tokens, post-norm decoder.

``models/transformer.py`` of VisTR, batch-first. Dropout is omitted (inference only). The padding
mask is an optional additive ``key_bias`` [B, L] (0 / ``MASKED_LOGIT``): the official
``key_padding_mask`` of the encoder's self-attention and the decoder's cross-attention
(``transformer.py:56-58``; the queries' self-attention is unmasked). The layers are DETR's,
shared with IFC (``models.common.detr_layers``).
"""

from __future__ import annotations

import torch
from torch import nn

from models.common.detr_layers import PostNormDecoderLayer, PostNormEncoderLayer


class Encoder(nn.Module):
    """Post-norm encoder: no final LayerNorm (official ``encoder_norm = None``)."""

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int):
        super().__init__()
        self.layers = nn.ModuleList(
            PostNormEncoderLayer(d_model, nhead, dim_feedforward) for _ in range(num_layers)
        )

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, key_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        for layer in self.layers:
            src = layer(src, pos, key_bias)
        return src


class Decoder(nn.Module):
    """Decoder with a final LayerNorm (``decoder.norm``) applied to every returned output."""

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int):
        super().__init__()
        self.layers = nn.ModuleList(
            PostNormDecoderLayer(d_model, nhead, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        key_bias: torch.Tensor | None = None,
        *,
        return_intermediate: bool = False,
    ) -> torch.Tensor:
        """Tensor[B, Q, d] (last layer), or Tensor[layers, B, Q, d] with ``return_intermediate``."""
        outputs = []
        for layer in self.layers:
            tgt = layer(tgt, memory, pos, query_pos, key_bias)
            if return_intermediate:
                outputs.append(self.norm(tgt))
        return torch.stack(outputs) if return_intermediate else self.norm(tgt)


class Transformer(nn.Module):
    """Encoder over the frame-major token sequence, decoder with learned query positions."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        num_encoder_layers: int,
        num_decoder_layers: int,
        dim_feedforward: int,
    ):
        super().__init__()
        self.encoder = Encoder(num_encoder_layers, d_model, nhead, dim_feedforward)
        self.decoder = Decoder(num_decoder_layers, d_model, nhead, dim_feedforward)
        for p in self.parameters():  # DETR ``_reset_parameters``
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        query_embed: torch.Tensor,
        key_bias: torch.Tensor | None = None,
        *,
        return_intermediate: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """src Tensor[B, L, d] (L = T·h·w, order t, y, x), pos Tensor[L, d] (no padding) or
        Tensor[B, L, d], queries Tensor[Q, d], key_bias None or Tensor[B, L] (padding).

        Returns (hs Tensor[B, Q, d] — or [layers, B, Q, d] — , memory Tensor[B, L, d]).
        The decoder target starts at zeros; ``query_embed`` is its positional embedding.
        """
        memory = self.encoder(src, pos, key_bias)
        tgt = torch.zeros(
            src.shape[0], query_embed.shape[0], src.shape[2], dtype=src.dtype, device=src.device
        )
        hs = self.decoder(
            tgt, memory, pos, query_embed, key_bias, return_intermediate=return_intermediate
        )
        return hs, memory
