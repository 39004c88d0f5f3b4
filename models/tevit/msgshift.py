"""MsgShifT backbone: PVTv2 with messenger tokens shifted cyclically along time (hustvl/TeViT mmdet/models/backbones/, ``MsgShifT``).

Tokens are laid out frame-major: x is Tensor[B*T, N, C] (patch tokens), m is Tensor[B*T, M, C]
(messengers). Messengers have no weights of their own: every spatial operator acts on a
messenger as on a constant feature map without borders, i.e. a conv becomes a Linear with the
kernel summed over its spatial taps (§1.3). The summed kernels are computed in the graph from
the conv weights, so checkpoints need no extra keys and ONNX constant-folds them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.common.attention import PackedAttention
from models.tevit.config import TeViTConfig

LN_EPS = 1e-6  # every backbone LayerNorm (norm_cfg=dict(type='LN', eps=1e-6))


def conv_as_linear(conv: nn.Conv2d, m: torch.Tensor) -> torch.Tensor:
    """Apply ``conv`` to messengers as to a border-free constant map: Tensor[N, M, Cin] -> [N, M, Cout]."""
    return F.linear(m, conv.weight.sum(dim=(-1, -2)), conv.bias)


def messenger_shift(m: torch.Tensor, batch: int, offsets: tuple[int, ...]) -> torch.Tensor:
    """Roll messenger groups cyclically along time (§1.8).

    Args:
        m: Tensor[B*T, M, C]; M splits into len(offsets) equal groups along the token axis.
        batch: B (each clip rolls on its own).
        offsets: per group roll along T; +s moves a messenger s frames later (out[t] = in[t-s]).

    Returns:
        Tensor[B*T, M, C].
    """
    bt, tokens, c = m.shape
    clip = m.reshape(batch, bt // batch, tokens, c)  # [B, T, M, C]
    groups = clip.chunk(len(offsets), dim=2)
    rolled = [torch.roll(g, shifts=s, dims=1) for g, s in zip(groups, offsets)]
    return torch.cat(rolled, dim=2).reshape(bt, tokens, c)


def block_offsets(cfg: TeViTConfig, depth: int, block: int) -> tuple[int, ...] | None:
    """Offsets of block ``block`` in a stage of ``depth`` blocks: even = strides, odd = negated;
    the last block of an odd-depth stage does not shift (§1.8)."""
    if depth % 2 == 1 and block == depth - 1:
        return None
    sign = 1 if block % 2 == 0 else -1
    return tuple(sign * s for s in cfg.shift_strides)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: conv then LayerNorm, for patches and messengers alike."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.projection = nn.Conv2d(in_ch, out_ch, kernel, stride, padding)
        self.norm = nn.LayerNorm(out_ch, eps=LN_EPS)

    def forward(self, x: torch.Tensor, m: torch.Tensor | None):
        """x Tensor[N, Cin, H, W], m Tensor[N, M, Cin] -> (x [N, h*w, Cout], m [N, M, Cout], (h, w))."""
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        x = self.norm(x.flatten(2).transpose(1, 2))
        if m is not None:
            m = self.norm(conv_as_linear(self.projection, m))
        return x, m, hw


class SpatialReductionAttention(nn.Module):
    """PVTv2 attention: keys/values from a strided conv of the patches, plus messengers (§1.6)."""

    def __init__(self, dim: int, heads: int, sr_ratio: int):
        super().__init__()
        self.attn = PackedAttention(dim, heads)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, a: torch.Tensor, am: torch.Tensor | None, hw: tuple[int, int]) -> torch.Tensor:
        """a Tensor[N, L, C] normed patches, am Tensor[N, M, C] normed messengers -> [N, L+M, C]."""
        query = a if am is None else torch.cat((a, am), dim=1)
        if self.sr_ratio > 1:
            n, _, c = a.shape
            kv = self.sr(a.transpose(1, 2).reshape(n, c, hw[0], hw[1])).flatten(2).transpose(1, 2)
            if am is not None:
                kv = torch.cat((kv, conv_as_linear(self.sr, am)), dim=1)
            kv = self.norm(kv)
        else:
            kv = a  # stage 4: keys/values are the patch tokens only
        return self.attn(query, kv, kv)


class MixFFN(nn.Module):
    """fc1 (1x1) -> depth-wise 3x3 -> GELU -> fc2 (1x1); keys ``layers.0/1/4`` (§1.7)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Conv2d(hidden, dim, 1),
            nn.Dropout(0.0),
        )

    def forward(self, f: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Tensor[N, L, C] patches -> Tensor[N, L, C]."""
        n, _, c = f.shape
        out = self.layers(f.transpose(1, 2).reshape(n, c, hw[0], hw[1]))
        return out.flatten(2).transpose(1, 2)

    def forward_messengers(self, fm: torch.Tensor) -> torch.Tensor:
        """Tensor[N, M, C] messengers -> Tensor[N, M, C] through the summed kernels."""
        fc1, dw, fc2 = self.layers[0], self.layers[1], self.layers[4]
        h = conv_as_linear(fc1, fm)
        h = h * dw.weight.sum(dim=(-1, -2, -3)) + dw.bias
        return conv_as_linear(fc2, F.gelu(h))


class PVTEncoderLayer(nn.Module):
    """Pre-norm block: residual SRA then residual MixFFN on [patches ; messengers] (§1.5)."""

    def __init__(self, dim: int, heads: int, sr_ratio: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = SpatialReductionAttention(dim, heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x, m, hw, batch: int, offsets: tuple[int, ...] | None):
        """x Tensor[B*T, L, C], m Tensor[B*T, M, C] or None -> (x, m) after the block and shift."""
        n_patch = x.shape[1]
        attended = self.attn(self.norm1(x), None if m is None else self.norm1(m), hw)
        x = x + attended[:, :n_patch]
        x = x + self.ffn(self.norm2(x), hw)
        if m is not None:
            m = m + attended[:, n_patch:]
            m = m + self.ffn.forward_messengers(self.norm2(m))
            if offsets is not None:
                m = messenger_shift(m, batch, offsets)
        return x, m


class MsgShifT(nn.Module):
    """The MsgShifT backbone; ``layers[i] = [PatchEmbed, blocks, stage LayerNorm]`` (official keys)."""

    def __init__(self, cfg: TeViTConfig):
        super().__init__()
        self.cfg = cfg
        self.msg_tokens = nn.Parameter(torch.zeros(1, cfg.num_msg_tokens, 3))
        nn.init.trunc_normal_(self.msg_tokens, std=0.02)
        self.layers = nn.ModuleList()
        in_ch = 3
        for i, dim in enumerate(cfg.stage_dims):
            embed = PatchEmbed(in_ch, dim, cfg.patch_sizes[i], cfg.patch_strides[i], cfg.patch_paddings[i])
            blocks = nn.ModuleList(
                PVTEncoderLayer(dim, cfg.num_heads[i], cfg.sr_ratios[i], cfg.mlp_ratios[i])
                for _ in range(cfg.depths[i])
            )
            self.layers.append(nn.ModuleList([embed, blocks, nn.LayerNorm(dim, eps=LN_EPS)]))
            in_ch = dim

    def forward(self, x: torch.Tensor, batch: int) -> list[torch.Tensor]:
        """x Tensor[B*T, 3, H, W] normalised frames -> 4 maps Tensor[B*T, C_i, H/s_i, W/s_i]."""
        m = self.msg_tokens.expand(x.shape[0], -1, -1)
        outs = []
        last = len(self.layers) - 1
        for i, (embed, blocks, norm) in enumerate(self.layers):
            # Stage-4 messengers influence nothing downstream (keys/values exclude them at sr=1
            # and they are dropped after the stage), so they are not computed (§1.6).
            if i == last and self.cfg.sr_ratios[i] == 1:
                m = None
            x, m, hw = embed(x, m)
            for j, block in enumerate(blocks):
                x, m = block(x, m, hw, batch, block_offsets(self.cfg, len(blocks), j))
            x = norm(x)
            if m is not None:
                m = norm(m)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, hw[0], hw[1])
            outs.append(x)
        return outs
