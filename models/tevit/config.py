"""TeViT presets: the official MsgShifT (PVTv2-b1) configuration and a CPU-fast ``tiny`` one."""

from __future__ import annotations

from dataclasses import dataclass

from models.base import SYNTHETIC_CLASSES, YTVIS_2019_CLASSES


@dataclass(frozen=True)
class TeViTConfig:
    """Hyper-parameters of one TeViT preset (hustvl/TeViT configs/tevit/tevit_msgshift.py and tevit_r50.py; official values by default)."""

    # MsgShifT backbone (PVTv2): stage i has embed_dims * num_heads[i] channels, head dim = embed_dims.
    embed_dims: int = 64
    num_heads: tuple[int, ...] = (1, 2, 5, 8)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    mlp_ratios: tuple[int, ...] = (8, 8, 4, 4)
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)
    patch_strides: tuple[int, ...] = (4, 2, 2, 2)
    patch_paddings: tuple[int, ...] = (3, 1, 1, 1)
    num_msg_tokens: int = 32
    shift_strides: tuple[int, ...] = (1, -1, 2, -2)
    # FPN and head
    fpn_channels: int = 256
    num_proposals: int = 100
    num_stages: int = 6
    head_heads: int = 8
    ffn_channels: int = 2048
    dynamic_channels: int = 64
    roi_size: int = 7
    mask_roi_size: int = 14
    num_reg_fcs: int = 3
    num_mask_convs: int = 4
    finest_scale: float = 56.0
    # deployment
    classes: tuple[str, ...] = YTVIS_2019_CLASSES
    input_hw: tuple[int, int] = (384, 640)
    top_k: int = 10
    frames: tuple[int, int, int] = (1, 5, 36)
    window: tuple[int, int] = (5, 3)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dims * h for h in self.num_heads)

    @property
    def fpn_strides(self) -> tuple[int, ...]:
        strides, s = [], 1
        for step in self.patch_strides:
            s *= step
            strides.append(s)
        return tuple(strides)


PRESETS: dict[str, TeViTConfig] = {
    "msgshift": TeViTConfig(),
    # Same structure (4 stages x 2 blocks, messenger shift, 6 STQI stages, 6 mask heads), small widths.
    "tiny": TeViTConfig(
        embed_dims=16,
        mlp_ratios=(4, 4, 4, 4),
        num_msg_tokens=8,
        fpn_channels=64,
        num_proposals=20,
        head_heads=4,
        ffn_channels=256,
        dynamic_channels=16,
        classes=SYNTHETIC_CLASSES,
        input_hw=(192, 320),
        frames=(1, 5, 36),  # 36 = a whole synthetic val video in one window (offline mode)
    ),
}
