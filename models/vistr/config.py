"""VisTR presets: the official R-50 / R-101 configurations and a CPU-fast ``tiny`` one.

Official values follow Epiphqny/VisTR's ``inference.py`` ( arguments of Epiphqny/VisTR @445c9e4).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.base import SYNTHETIC_CLASSES, YTVIS_2019_CLASSES


@dataclass(frozen=True)
class VisTRConfig:
    """Hyper-parameters of one VisTR preset (official R-101 values by default, A.1–A.3).

    Logit layout: ``class_offset`` leading columns carry no class (official: column 0 is an
    unused class because YTVIS category ids 1…40 index the logits directly), then one column per
    entry of ``classes``, then the no-object column. So ``class_embed`` has
    ``class_offset + len(classes) + 1`` outputs (official: 1 + 40 + 1 = 42).
    """

    # backbone: "resnet50" / "resnet101" (torchvision Bottleneck ResNets) or "basic" (BasicBlock
    # ResNet with the stage widths below, for the tiny preset); FrozenBN everywhere, no dilation.
    backbone: str = "resnet101"
    basic_layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    basic_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    # transformer (post-norm DETR, A.2)
    hidden_dim: int = 384
    nheads: int = 8
    dim_feedforward: int = 2048
    enc_layers: int = 6
    dec_layers: int = 6
    num_frames: int = 36
    num_ins: int = 10
    # mask head (A.3): GroupNorm groups of MaskHeadSmallConv and of the 3-D fusion head
    mask_gn_groups: int = 8
    insmask_gn_groups: int = 4
    # width m the mask head's upsampling stages derive from (m/2, m/4, m/8, m/16); official: m = d
    mask_width: int | None = None
    # classes and deployment
    classes: tuple[str, ...] = YTVIS_2019_CLASSES
    class_offset: int = 1
    input_hw: tuple[int, int] = (320, 544)
    batch: tuple[int, int, int] = (1, 1, 1)
    window_stride: int = 30

    @property
    def num_queries(self) -> int:
        """Queries are frame-bound: query t·num_ins + i is instance slot i of frame t (A.2)."""
        return self.num_frames * self.num_ins

    @property
    def num_logits(self) -> int:
        return self.class_offset + len(self.classes) + 1

    @property
    def backbone_channels(self) -> tuple[int, int, int, int]:
        """Channels of C2…C5 (strides 4, 8, 16, 32)."""
        if self.backbone in ("resnet50", "resnet101"):
            return (256, 512, 1024, 2048)
        return self.basic_widths

    @property
    def mask_dims(self) -> tuple[int, int, int, int, int]:
        """MaskHeadSmallConv inter dims: [d + heads, m/2, m/4, m/8, m/16] with m = ``mask_width``
        or d (official 392, 192, 96, 48, 24)."""
        d, m = self.hidden_dim, self.mask_width or self.hidden_dim
        return (d + self.nheads, m // 2, m // 4, m // 8, m // 16)


# Official: T = 36 frames x 10 slots = 360 queries, R-50 / R-101, 42 logits. Input 320x544 holds the
# official test size (shorter side 300, 16:9 -> 300x533) in multiples of 32; one clip per call.
PRESETS: dict[str, VisTRConfig] = {
    "r50": VisTRConfig(backbone="resnet50"),
    "r101": VisTRConfig(backbone="resnet101"),
    # Same structure (FrozenBN ResNet C2-C5, 3-D sine pos-enc, post-norm encoder/decoder, joint
    # heads x pixels attention map, FPN + DCN mask head, 3-D fusion head) at small widths and
    # T = 6. d = 96 is divisible by 6 (pos-enc) and gives mask widths 104/48/24/12/6 (GroupNorm
    # with 2 groups) and a 3-channel 3-D head (1 group). A forward is ~0.2 s on 2 CPU cores.
    "tiny": VisTRConfig(
        backbone="basic",
        basic_widths=(16, 32, 64, 128),
        hidden_dim=96,
        nheads=8,
        dim_feedforward=256,
        enc_layers=2,
        dec_layers=2,
        num_frames=6,
        num_ins=10,
        mask_gn_groups=2,
        insmask_gn_groups=1,
        classes=SYNTHETIC_CLASSES,
        class_offset=0,
        input_hw=(192, 320),
        batch=(1, 1, 4),
        window_stride=4,
    ),
}


class VisTRConfigError(ValueError):
    """A VisTR configuration whose sizes do not fit together."""


def check_config(cfg: VisTRConfig) -> None:
    """Raise ``VisTRConfigError`` naming the first size constraint ``cfg`` breaks."""
    d = cfg.hidden_dim
    rules = [
        (d % 6 == 0, f"hidden_dim {d} must be divisible by 6 (3 axes of sin/cos pairs)"),
        (d % cfg.nheads == 0, f"hidden_dim {d} must be divisible by nheads {cfg.nheads}"),
        (
            all(c % cfg.mask_gn_groups == 0 for c in cfg.mask_dims),
            f"mask head widths {cfg.mask_dims} must be divisible by "
            f"mask_gn_groups {cfg.mask_gn_groups}",
        ),
        (
            (cfg.mask_dims[4] // 2) % cfg.insmask_gn_groups == 0,
            f"3-D head width {cfg.mask_dims[4] // 2} must be divisible by insmask_gn_groups",
        ),
        (cfg.class_offset >= 0 and len(cfg.classes) > 0, "need >= 1 class and class_offset >= 0"),
        (1 <= cfg.window_stride < cfg.num_frames, "window_stride must be in [1, num_frames)"),
        (
            all(s % 32 == 0 for s in cfg.input_hw),
            f"input_hw {cfg.input_hw} must be multiples of 32",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise VisTRConfigError(
                f"VisTR config: {message}; fix the preset in models/vistr/config.py"
            )
