"""VisTR heads (``models/vistr.py``, ``models/segmentation.py``; Epiphqny/VisTR @445c9e4).

Box MLP, the instance attention map (softmax **jointly over heads × pixels**, Part C), the
FPN-style mask head with its deformable conv, and the 3-D fusion head. The official code loops
over frames and instance slots; here every (clip, frame, slot) item is one batch row of the mask
head and every (clip, slot) one batch row of the 3-D head (GroupNorm is per sample, so batching
is exact, A.6 #2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.vistr.deform_conv import DeformConv2d


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (DETR ``MLP``, keys ``layers.{i}``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in zip(dims, dims[1:] + [output_dim])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class MHAttentionMap(nn.Module):
    """Per-head attention of queries over one frame's memory, softmax over heads × h × w jointly.

    Official: ``weights = softmax(einsum("bqnc,bnchw->bqnhw", q·c^-0.5, k).flatten(2))`` with
    ``k_linear`` applied as a 1x1 conv. Here ``k_linear`` is a Linear over the channel axis and
    the einsum a matmul; the normalisation is over the flattened (heads, h, w) of each query.
    """

    def __init__(self, query_dim: int, hidden_dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.hidden_dim = num_heads, hidden_dim
        self.q_linear = nn.Linear(query_dim, hidden_dim)
        self.k_linear = nn.Linear(query_dim, hidden_dim)
        for lin in (self.q_linear, self.k_linear):
            nn.init.zeros_(lin.bias)
            nn.init.xavier_uniform_(lin.weight)
        self.normalize_fact = float(hidden_dim / num_heads) ** -0.5

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, key_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """q Tensor[N, Q, d], k Tensor[N, d, h, w] -> weights Tensor[N, Q, heads, h, w].

        ``key_bias`` Tensor[N, h*w] (0 / ``MASKED_LOGIT``): the official ``masked_fill_`` of
        padded pixels with -inf before the softmax (``segmentation.py:235-236``).
        """
        n, nq, _ = q.shape
        h, w = k.shape[-2:]
        heads, c = self.num_heads, self.hidden_dim // self.num_heads
        qh = (self.q_linear(q) * self.normalize_fact).reshape(n, nq, heads, c).transpose(1, 2)
        kh = self.k_linear(k.flatten(2).transpose(1, 2))  # [N, h*w, d], channel = head*c + ci
        kh = kh.reshape(n, h * w, heads, c).permute(0, 2, 3, 1)  # [N, heads, c, h*w]
        logits = torch.matmul(qh, kh).transpose(1, 2)  # [N, Q, heads, h*w]
        if key_bias is not None:
            logits = logits + key_bias[:, None, None, :].to(logits.dtype)
        weights = torch.softmax(logits.reshape(n, nq, heads * h * w), dim=-1)
        return weights.reshape(n, nq, heads, h, w)


def _expand(x: torch.Tensor, length: int) -> torch.Tensor:
    """Tensor[N, ...] -> Tensor[N*length, ...], each row repeated ``length`` times (row-major)."""
    return x.unsqueeze(1).expand(x.shape[0], length, *x.shape[1:]).flatten(0, 1)


class MaskHeadSmallConv(nn.Module):
    """FPN mask head: memory ⊕ attention maps -> 3 upsampling stages -> DCN -> stride-4 features.

    ``dims`` = (d + heads, d/2, d/4, d/8, d/16) (official 392, 192, 96, 48, 24); ``fpn_dims`` are
    the channels of (C4, C3, C2). Every GroupNorm has ``gn_groups`` groups (official 8).
    """

    def __init__(self, dims: tuple[int, ...], fpn_dims: tuple[int, int, int], gn_groups: int):
        super().__init__()
        self.lay1 = nn.Conv2d(dims[0], dims[0], 3, padding=1)
        self.gn1 = nn.GroupNorm(gn_groups, dims[0])
        self.lay2 = nn.Conv2d(dims[0], dims[1], 3, padding=1)
        self.gn2 = nn.GroupNorm(gn_groups, dims[1])
        self.lay3 = nn.Conv2d(dims[1], dims[2], 3, padding=1)
        self.gn3 = nn.GroupNorm(gn_groups, dims[2])
        self.lay4 = nn.Conv2d(dims[2], dims[3], 3, padding=1)
        self.gn4 = nn.GroupNorm(gn_groups, dims[3])
        self.gn5 = nn.GroupNorm(gn_groups, dims[4])
        self.conv_offset = nn.Conv2d(dims[3], 18, 1)
        self.dcn = DeformConv2d(dims[3], dims[4], 3, padding=1)
        self.adapter1 = nn.Conv2d(fpn_dims[0], dims[1], 1)
        self.adapter2 = nn.Conv2d(fpn_dims[1], dims[2], 1)
        self.adapter3 = nn.Conv2d(fpn_dims[2], dims[3], 1)
        for name, m in self.named_children():
            if not isinstance(m, nn.Conv2d):
                continue
            if name == "conv_offset":  # official: offsets start at zero (a plain 3x3 conv)
                nn.init.zeros_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, a=1)
            nn.init.zeros_(m.bias)

    def forward(
        self, memory: torch.Tensor, attn: torch.Tensor, fpns: list[torch.Tensor]
    ) -> torch.Tensor:
        """Per-frame inputs, expanded to one row per (frame, slot) item.

        Args:
            memory: Tensor[N, d, h, w] encoder memory of N frames (stride 32).
            attn: Tensor[N, S, heads, h, w] attention maps of the S slots of each frame.
            fpns: [C4 Tensor[N, c4, 2h, 2w], C3 Tensor[N, c3, 4h, 4w], C2 Tensor[N, c2, 8h, 8w]].

        Returns:
            Tensor[N*S, d/16, 8h, 8w] (row n·S + s), after GroupNorm and ReLU.
        """
        slots = attn.shape[1]
        x = torch.cat((_expand(memory, slots), attn.flatten(0, 1)), dim=1)
        x = F.relu(self.gn1(self.lay1(x)))
        x = F.relu(self.gn2(self.lay2(x)))
        x = F.relu(self.gn3(self.lay3(_add_fpn(x, self.adapter1(fpns[0]), slots))))
        x = F.relu(self.gn4(self.lay4(_add_fpn(x, self.adapter2(fpns[1]), slots))))
        x = _add_fpn(x, self.adapter3(fpns[2]), slots)
        x = self.dcn(x, self.conv_offset(x))
        return F.relu(self.gn5(x))


def _add_fpn(x: torch.Tensor, fpn: torch.Tensor, slots: int) -> torch.Tensor:
    """Official ``expand(adapter(fpn)) + interpolate(x, nearest)`` without materialising the expand.

    x Tensor[N*S, c, h, w], fpn Tensor[N, c, H, W] (adapted level) -> Tensor[N*S, c, H, W].
    """
    up = F.interpolate(x, size=fpn.shape[-2:], mode="nearest")
    return (fpn.unsqueeze(1) + up.unflatten(0, (fpn.shape[0], slots))).flatten(0, 1)


def build_insmask_head(in_channels: int, gn_groups: int) -> nn.Sequential:
    """3-D fusion head: 3 x (Conv3d 3x3x3 dilation 2 -> GroupNorm -> ReLU), Conv3d 1x1x1 -> 1.

    Indices 0…9 match the official ``insmask_head`` keys (official 24 -> 12 -> 12 -> 12 -> 1).
    Input Tensor[N, in_channels, T, h, w] -> mask logits Tensor[N, 1, T, h, w].
    """
    mid = in_channels // 2
    layers: list[nn.Module] = []
    for c_in in (in_channels, mid, mid):
        layers += [
            nn.Conv3d(c_in, mid, 3, padding=2, dilation=2),
            nn.GroupNorm(gn_groups, mid),
            nn.ReLU(),
        ]
    layers.append(nn.Conv3d(mid, 1, 1))
    return nn.Sequential(*layers)
