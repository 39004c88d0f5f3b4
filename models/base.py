"""What every visdeploy model exposes: the engine contract (docs/contract.md) plus its metadata.

A ``VISModel`` takes uint8 ``frames`` Tensor[B, T, H, W, 3] (RGB) and, optionally, int32
``content_hw`` Tensor[B, 2]: the (height, width) of the real image inside the letterboxed frames
(top-left; the rest is padding; ``None`` = the whole input). It returns a dict with
``scores`` [B, K] float, ``labels`` [B, K] int32, ``masks`` [B, K, T, H/4, W/4] float (probabilities),
``boxes`` [B, K, T, 4] float (xyxy, input pixels), ``embeddings`` [B, K, D] float (L2-normalised),
``query_index`` [B, K] int32. The export and the manifest read the metadata below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

OUTPUT_NAMES = ("scores", "labels", "masks", "boxes", "embeddings", "query_index")
CONTENT_HW = "content_hw"  # the optional second engine input
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ModelSpec:
    """Deployment metadata of one model preset (written into the manifest).

    ``frames`` is (min, opt, max) for dynamic-T models; ``fixed_frames`` is set when T is static
    (VisTR: the clip length is baked into its queries). ``input_hw`` are multiples of 32.
    """

    name: str
    preset: str
    classes: tuple[str, ...]
    input_hw: tuple[int, int]
    num_outputs: int
    embedding_dim: int
    frames: tuple[int, int, int] = (1, 5, 36)
    batch: tuple[int, int, int] = (1, 1, 4)
    fixed_frames: int | None = None
    window: tuple[int, int] = (5, 3)
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    extra: dict = field(default_factory=dict)


def clamp_content_hw(content_hw: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
    """int Tensor[B, 2] (height, width) -> int64 Tensor[B, 2] clamped to [1, H] x [1, W].

    Raises ``ValueError`` unless ``content_hw`` has the shape [B, 2].
    """
    if content_hw.dim() != 2 or content_hw.shape[1] != 2:
        raise ValueError(
            f"content_hw must be int [B, 2] (height, width), got {list(content_hw.shape)}"
        )
    full = torch.tensor(input_hw, dtype=torch.int64, device=content_hw.device)
    return torch.minimum(content_hw.to(torch.int64).clamp(min=1), full)


class VISModel(nn.Module):
    """Base class: holds the spec and the in-graph normalisation of uint8 frames.

    ``uses_content_hw``: the model's official inference reads the image size (TeViT scales its
    learned proposals by it; IFC and VisTR mask the padding), so its export declares the second
    input ``content_hw``.
    """

    uses_content_hw = False
    # Cells across a box of a mask the model pastes into its box (TeViT: the mask head's M x M
    # grid); None where masks are predicted on the whole frame (IFC, VisTR). Parity uses it:
    # a pasted mask moves with its box (export.parity.mask_box_allowance).
    pasted_mask_cells: int | None = None

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.preset = spec.preset
        # Non-persistent: the official checkpoints carry no normalisation buffers.
        self.register_buffer("pixel_mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def set_input_size(self, height: int, width: int) -> None:
        """Use (height, width) as the model input (multiples of 32, at least 32 each)."""
        if not all(isinstance(v, int) and v >= 32 and v % 32 == 0 for v in (height, width)):
            raise ValueError(f"input size must be two multiples of 32 (e.g. 384x512 for a 4:3 "
                             f"camera), got {height}x{width}")
        self.spec = dataclasses.replace(self.spec, input_hw=(height, width))

    def check_frames(self, frames: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``frames`` is uint8 [B, T, H, W, 3] at the model's input size."""
        h, w = self.spec.input_hw
        if frames.dtype != torch.uint8 or frames.dim() != 5 or tuple(frames.shape[2:]) != (h, w, 3):
            raise ValueError(
                f"{self.spec.name}/{self.spec.preset} expects uint8 frames [B, T, {h}, {w}, 3] (RGB, "
                f"letterboxed to the model input), got {frames.dtype} {list(frames.shape)}"
            )
        if self.spec.fixed_frames and frames.shape[1] != self.spec.fixed_frames:
            raise ValueError(
                f"{self.spec.name}/{self.spec.preset} takes exactly T={self.spec.fixed_frames} frames "
                f"per clip, got {frames.shape[1]}; pad short clips cyclically"
            )

    def content_hw(self, frames: torch.Tensor, content_hw: torch.Tensor | None) -> torch.Tensor:
        """The (height, width) of the real image per clip: int64 Tensor[B, 2].

        ``None`` means the whole input (no padding). Values are clamped to [1, H] x [1, W] so a
        bad feed cannot produce empty masks or divisions by zero inside the graph.
        """
        if content_hw is None:
            h, w = frames.shape[2], frames.shape[3]
            full = torch.tensor([h, w], dtype=torch.int64, device=frames.device)
            return full.expand(frames.shape[0], 2)
        return clamp_content_hw(content_hw, (frames.shape[2], frames.shape[3]))

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 Tensor[B, T, H, W, 3] RGB -> float Tensor[B*T, 3, H, W], (x - mean) / std."""
        self.check_frames(frames)
        b, t, h, w, _ = frames.shape
        # Cast first: TensorRT allows uint8 only at network I/O, not into a reshape or transpose.
        x = frames.float().reshape(b * t, h, w, 3).permute(0, 3, 1, 2)
        return (x - self.pixel_mean) / self.pixel_std

# Class names of the synthetic VIS videos (evaluation.synthetic) that the `tiny` presets train on.
SYNTHETIC_CLASSES = ("circle", "square", "triangle", "star", "cross")

# The 40 YouTube-VIS 2019 categories, in the order of the official checkpoints' class logits.
YTVIS_2019_CLASSES = (
    "person", "giant_panda", "lizard", "parrot", "skateboard", "sedan", "ape", "dog", "snake",
    "monkey", "hand", "rabbit", "duck", "cat", "cow", "fish", "train", "horse", "turtle", "bear",
    "motorbike", "giraffe", "leopard", "fox", "deer", "owl", "surfboard", "airplane", "truck",
    "zebra", "tiger", "elephant", "snowboard", "boat", "shark", "mouse", "frog", "eagle",
    "earless_seal", "tennis_racket",
)  # fmt: skip
