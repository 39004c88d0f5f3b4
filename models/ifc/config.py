"""IFC size presets: the official R-50 / R-101 YouTube-VIS 2019 models and a CPU-fast ``tiny``.

Numbers follow the official configs (sukjunhwang/IFC @880d646, ``base_ytvis.yaml`` and
``R101_ytvis.yaml``). The R-50 model was trained from torchvision weights (stride in the 3×3
conv, RGB input, ImageNet mean/std in 0–255 units); R-101 from MSRA weights (stride in the first
1×1 conv, **BGR** input, mean only, std 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.base import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, SYNTHETIC_CLASSES, YTVIS_2019_CLASSES


@dataclass(frozen=True)
class IFCConfig:
    """Everything that differs between IFC presets.

    Backbone: detectron2 bottleneck ResNet; ``depth`` = blocks in res2..res5; res2 outputs
    ``res2_out`` channels and each later stage doubles it; bottleneck width = out / 4.
    ``stride_in_1x1`` selects MSRA (True) or torchvision (False) stride placement.
    ``input_format`` "BGR" flips the channels after normalisation (``mean``/``std`` stay RGB-ordered,
    as the manifest records them).
    ``num_outputs`` (K) rows of (query, label) pairs are exported per clip; ``window`` is the
    streaming (length T, stride S) — the official near-online mode is (5, 1).
    """

    preset: str
    classes: tuple[str, ...]
    input_hw: tuple[int, int]
    depth: tuple[int, int, int, int]
    stem_width: int = 64
    res2_out: int = 256
    stride_in_1x1: bool = False
    input_format: str = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    hidden_dim: int = 256
    nheads: int = 8
    dim_feedforward: int = 2048
    enc_layers: int = 3
    dec_layers: int = 3
    num_memory_bus: int = 8
    num_queries: int = 100
    gn_groups: int = 32
    num_outputs: int = 20
    frames: tuple[int, int, int] = (1, 5, 36)
    window: tuple[int, int] = (5, 1)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        """Output channels of res2..res5, e.g. (256, 512, 1024, 2048) for ResNet-50."""
        return tuple(self.res2_out * 2**i for i in range(4))


PRESETS: dict[str, IFCConfig] = {
    "r50": IFCConfig(
        preset="r50", classes=YTVIS_2019_CLASSES, input_hw=(384, 640), depth=(3, 4, 6, 3),
    ),
    "r101": IFCConfig(
        preset="r101", classes=YTVIS_2019_CLASSES, input_hw=(384, 640), depth=(3, 4, 23, 3),
        stride_in_1x1=True, input_format="BGR",
        mean=IMAGENET_MEAN_RGB, std=(1.0, 1.0, 1.0),
    ),
    # Same structure, small everything: a T=5 forward at 192×320 takes well under a second on CPU.
    # Widths keep per-frame work a large share, as in the official model (R-50: the clip stage of
    # a T=5 window at 192×320 costs ~1.2 frame stages; this preset with one block a stage: ~1.2 too,
    # measured before the second block made its frame stage heavier), which is what the two-stage
    # streaming export saves on.
    # Two bottleneck blocks a stage (not one): with one, the body's receptive field (75 px)
    # and 127k weights could not learn the shapes (dense pretraining plateaued at 0.3 object-pixel
    # accuracy in 20 min); with two (195 px), 0.79 in 10 min (docs/notes/lab-notebook.md, issue 26).
    "tiny": IFCConfig(
        preset="tiny", classes=SYNTHETIC_CLASSES, input_hw=(192, 320), depth=(2, 2, 2, 2),
        stem_width=16, res2_out=32, hidden_dim=32, nheads=4, dim_feedforward=64,
        enc_layers=2, dec_layers=2, num_memory_bus=4, num_queries=20, gn_groups=8,
        num_outputs=10,
    ),
}
