"""DETR's padding machinery (IFC, VisTR) from ``content_hw``, as dense tensor ops.

The official codes pad a batch to its largest image and carry a boolean ``mask`` per feature
level (True = padding): IFC ``projects/IFC/ifc/ifc.py:45-58`` (``mask_out_padding``: the first
``ceil(h / stride)`` rows and ``ceil(w / stride)`` columns are real), VisTR
``util/misc.py:282-302`` + ``models/backbone.py:72-79`` (the pixel mask, nearest-interpolated to
each level). The mask then

- builds the sine position encodings from a running count of real cells along each axis,
  normalised by the count's last value (IFC ``models/position_encoding.py:28-48``, VisTR
  ``models/position_encoding.py:29-43``): ``cumsum_ramp``;
- is the attention ``key_padding_mask`` (filled with -inf before the softmax): here an additive
  ``padding_bias`` of 0 or ``MASKED_LOGIT``.

Our letterbox puts the real image top-left, so every level's mask is a rectangle given by a
prefix of rows and a prefix of columns (``content_cells``); nothing here has data-dependent
shapes or loops over the batch, so exported graphs keep a dynamic B (and T).
"""

from __future__ import annotations

import torch

# Stands in for the official -inf fill of masked attention logits. Finite, so FP16 graphs stay
# finite (FP16 max is 65504; logit + MASKED_LOGIT does not overflow for |logit| < 5e4), and large
# enough that exp(MASKED_LOGIT - max logit) underflows to exactly 0 in FP16 and FP32 (below
# ~-17 and ~-104): a masked key gets the weight -inf gives it, 0, as long as the real logits of
# a row lie within ~1e4 - 104 of each other. Unlike -inf it cannot make a softmax row NaN.
MASKED_LOGIT = -1.0e4


def content_cells(
    content_hw: torch.Tensor, grid_hw: tuple[int, int], stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which cells of a feature level hold real image: (rows bool[B, h], cols bool[B, w]).

    ``content_hw`` int Tensor[B, 2] (height, width) in input pixels; ``stride`` input pixels per
    cell. Cell i is real iff ``i * stride < content``, i.e. i < ceil(content / stride): IFC's
    ``mask_out_padding`` (``ifc.py:54-55``) and, for a level of exactly H / stride cells, VisTR's
    nearest interpolation of the pixel mask (source pixel ``floor(i * H / h) = i * stride``).
    """
    h, w = grid_hw
    device = content_hw.device
    rows = torch.arange(h, device=device) * stride < content_hw[:, 0:1]
    cols = torch.arange(w, device=device) * stride < content_hw[:, 1:2]
    return rows, cols


def cell_mask(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """bool[B, h], bool[B, w] -> the official ``not_mask`` bool[B, h, w] (True = real cell)."""
    return rows[:, :, None] & cols[:, None, :]


def padding_bias(valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """bool Tensor[N, ...] of real cells -> additive attention bias Tensor[N, L] (L = cells):
    0 on real cells, ``MASKED_LOGIT`` on padding (the official ``key_padding_mask``)."""
    return valid.flatten(1).logical_not().to(dtype) * MASKED_LOGIT


def cumsum_ramp(
    along: torch.Tensor, across: torch.Tensor, scale: float, eps: float = 1e-6
) -> torch.Tensor:
    """The official normalised running count of real cells along one axis: Tensor[B, n, m].

    For ``not_mask = along ⊗ across`` (bool[B, n] prefix of real cells along the axis, bool[B, m]
    across it), the official ``e = not_mask.cumsum(axis)``, ``e / (e[last] + eps) * scale``. The
    count of a prefix mask up to index k is ``min(k + 1, #real)``: the same float32 integers as
    the cumsum, followed by the same float32 operations, without a CumSum op in the graph.
    A padded column counts 0 everywhere, so its value is 0 / (0 + eps) = 0, as official.
    """
    n = along.shape[1]
    k = torch.arange(1, n + 1, device=along.device, dtype=torch.float32)
    count = torch.minimum(k, along.sum(1, keepdim=True).to(torch.float32))  # [B, n]
    embed = count[:, :, None] * across[:, None, :].to(torch.float32)  # [B, n, m]
    return embed / (embed[:, -1:, :] + eps) * scale


def sine_channels(coords: torch.Tensor, num_pos_feats: int, temperature: float) -> torch.Tensor:
    """Tensor[...] -> Tensor[..., F]: channel 2k = sin(u / T^(2k/F)), 2k+1 = cos of the same
    frequency (DETR's ``dim_t``; IFC ``position_encoding.py:40-46``)."""
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    u = coords[..., None] / dim_t
    return torch.stack((u[..., 0::2].sin(), u[..., 1::2].cos()), dim=-1).flatten(-2)
