"""VisTR (CVPR 2021) with its segmentation heads, as one ``VISModel`` (Epiphqny/VisTR @445c9e4 models/vistr.py, models/segmentation.py).

Module names mirror the official ``VisTRsegm(VisTR(...))`` so official checkpoints load strictly
with no key map: ``vistr.backbone.0.body.*``, ``vistr.input_proj``, ``vistr.transformer.*``,
``vistr.query_embed``, ``vistr.class_embed``, ``vistr.bbox_embed``, ``bbox_attention``,
``mask_head``, ``insmask_head`` (``vistr.backbone.1`` is the parameter-free position encoding,
as in the official ``Joiner``).

Shapes: B clips, T = ``num_frames`` (static: the queries are frame-bound), S = ``num_ins`` slots,
Q = T·S queries (query t·S + s = slot s of frame t), d = ``hidden_dim``, (h, w) = (H/32, W/32).

Padding (``content_hw``, the real image inside the letterbox): as the official code with a
padded ``NestedTensor`` (``util/misc.py:282-302``), the stride-32 mask (``backbone.py:72-79``)
masks the encoder and decoder attention keys (``transformer.py:56-58``) and the instance
attention maps (``segmentation.py:112-113, 235-236``), the 3-D position encoding counts only
real cells (``position_encoding.py:29-43``), and boxes are relative to the real image
(``vistr.py:55-57``). The mask heads' convolutions and GroupNorms see the padding, as official.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from models.base import ModelSpec, VISModel, clamp_content_hw
from models.common.padding import cell_mask, content_cells, padding_bias
from models.errors import UnknownModelError
from models.vistr.backbone import Backbone, build_resnet
from models.vistr.clip import ClipLengthError
from models.vistr.config import PRESETS, VisTRConfig, check_config
from models.vistr.deform_conv import taps_per_call_for
from models.vistr.heads import MLP, MaskHeadSmallConv, MHAttentionMap, build_insmask_head
from models.vistr.inference import contract_outputs
from models.vistr.position_encoding import PositionEmbeddingSine3D
from models.vistr.transformer import Transformer

__all__ = ["PRESETS", "VisTR", "VisTRSegm", "build"]


class VisTR(nn.Module):
    """Backbone, input projection, transformer, queries and the class/box heads."""

    def __init__(self, cfg: VisTRConfig):
        super().__init__()
        d = cfg.hidden_dim
        body = build_resnet(
            cfg.backbone, basic_layers=cfg.basic_layers, basic_widths=cfg.basic_widths
        )
        self.backbone = nn.ModuleList([Backbone(body), PositionEmbeddingSine3D(d // 3)])
        self.input_proj = nn.Conv2d(cfg.backbone_channels[3], d, kernel_size=1)
        self.transformer = Transformer(
            d, cfg.nheads, cfg.enc_layers, cfg.dec_layers, cfg.dim_feedforward
        )
        self.query_embed = nn.Embedding(cfg.num_queries, d)
        self.class_embed = nn.Linear(d, cfg.num_logits)
        self.bbox_embed = MLP(d, d, 4, 3)
        self.num_frames = cfg.num_frames

    def forward(
        self,
        images: torch.Tensor,
        num_clips: int,
        content_hw: torch.Tensor | None = None,
        *,
        return_intermediate: bool = False,
    ):
        """images Tensor[B*T, 3, H, W] (clip-major), content_hw int64 Tensor[B, 2] (clamped to the
        input; None = no padding) -> (features, hs, memory).

        features: [C2, C3, C4, C5] of every frame, Tensor[B*T, C_i, ·, ·];
        hs: Tensor[B, Q, d] (Tensor[layers, B, Q, d] with ``return_intermediate``);
        memory: Tensor[B*T, d, h, w], the encoder output of each frame.
        """
        features = self.backbone[0](images)
        src = self.input_proj(features[3])  # [B*T, d, h, w]
        _, d, h, w = src.shape
        t = self.num_frames
        tokens = (
            src.reshape(num_clips, t, d, h, w)
            .permute(0, 1, 3, 4, 2)
            .reshape(num_clips, t * h * w, d)
        )
        if content_hw is None:
            pos, key_bias = self.backbone[1](t, h, w, src.device).to(src.dtype), None  # [T*h*w, d]
        else:
            rows, cols = padding_cells(content_hw, images.shape[-2], (h, w))
            pos = self.backbone[1].masked(rows, cols, t).to(src.dtype)  # [B, T*h*w, d]
            key_bias = padding_bias(cell_mask(rows, cols), src.dtype).repeat(1, t)  # [B, T*h*w]
        hs, memory = self.transformer(
            tokens, pos, self.query_embed.weight, key_bias, return_intermediate=return_intermediate
        )
        memory = memory.reshape(num_clips * t, h, w, d).permute(0, 3, 1, 2)
        return features, hs, memory


def padding_cells(
    content_hw: torch.Tensor, input_h: int, level_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real cells (rows bool[B, h], cols bool[B, w]) of the stride-32 level: the official pixel
    mask nearest-interpolated to it (``backbone.py:77``), exact for an input of 32·h rows."""
    return content_cells(content_hw, level_hw, input_h // level_hw[0])


class VisTRSegm(VISModel):
    """VisTR with the instance attention map, the FPN/DCN mask head and the 3-D fusion head."""

    uses_content_hw = True  # padding masks and boxes relative to the real image, as official

    def __init__(self, cfg: VisTRConfig, spec: ModelSpec):
        super().__init__(spec)
        check_config(cfg)
        self.cfg = cfg
        self.vistr = VisTR(cfg)
        d = cfg.hidden_dim
        self.bbox_attention = MHAttentionMap(d, d, cfg.nheads)
        c2, c3, c4, _ = cfg.backbone_channels
        self.mask_head = MaskHeadSmallConv(cfg.mask_dims, (c4, c3, c2), cfg.mask_gn_groups)
        # the DCN runs on every (frame, slot) item of a clip at stride 4
        self.mask_head.dcn.taps_per_call = taps_per_call_for(
            cfg.num_frames * cfg.num_ins, cfg.mask_dims[4],  # sampled: output channels
            (cfg.input_hw[0] // 4, cfg.input_hw[1] // 4),
        )
        self.insmask_head = build_insmask_head(cfg.mask_dims[4], cfg.insmask_gn_groups)

    def forward_raw(
        self, images: torch.Tensor, num_clips: int, content_hw: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Official-level outputs of B clips from normalised images Tensor[B*T, 3, H, W] and the
        real image size of each clip, int Tensor[B, 2] (None = the whole input).

        Returns ``logits`` [B, Q, num_logits], ``boxes`` [B, Q, 4] (sigmoid cx, cy, w, h,
        relative to the real image), ``mask_logits`` [B, S, T, H/4, W/4], ``hs`` [B, Q, d] (last
        decoder layer) and ``attn`` [B*T, S, heads, H/32, W/32] (the instance attention maps;
        only training reads them).
        """
        cfg = self.cfg
        t, s = cfg.num_frames, cfg.num_ins
        if content_hw is not None:
            content_hw = clamp_content_hw(content_hw, tuple(images.shape[-2:]))
        features, hs, memory = self.vistr(images, num_clips, content_hw)
        logits = self.vistr.class_embed(hs)
        boxes = self.vistr.bbox_embed(hs).sigmoid()
        hs_frames = hs.reshape(num_clips * t, s, hs.shape[-1])  # [B*T, S, d]
        frame_bias = None
        if content_hw is not None:  # segmentation.py:112-113, the frame's stride-32 mask
            rows, cols = padding_cells(content_hw, images.shape[-2], memory.shape[-2:])
            frame_bias = padding_bias(cell_mask(rows, cols), memory.dtype)  # [B, h*w]
            frame_bias = frame_bias.repeat_interleave(t, dim=0)  # [B*T, h*w]
        attn = self.bbox_attention(hs_frames, memory, frame_bias)  # [B*T, S, heads, h, w]
        fpns = [features[2], features[1], features[0]]
        items = self.mask_head(memory, attn, fpns)  # [B*T*S, c, H/4, W/4]
        c, h4, w4 = items.shape[1:]
        per_slot = items.reshape(num_clips, t, s, c, h4, w4).permute(0, 2, 3, 1, 4, 5)
        mask_logits = self.insmask_head(per_slot.reshape(num_clips * s, c, t, h4, w4))
        return {
            "logits": logits,
            "boxes": boxes,
            "mask_logits": mask_logits.reshape(num_clips, s, t, h4, w4),
            "hs": hs,
            "attn": attn,
        }

    def forward(
        self, frames: torch.Tensor, content_hw: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """uint8 frames Tensor[B, T, H, W, 3] (RGB, T = ``num_frames``) and the real image size
        int Tensor[B, 2] of each clip (None = the whole input) -> the engine contract."""
        if frames.dim() == 5 and frames.shape[1] != self.cfg.num_frames:
            raise ClipLengthError(
                f"VisTR preset {self.preset!r} takes clips of exactly {self.cfg.num_frames} frames "
                f"(its queries are frame-bound), got {frames.shape[1]}; pad short clips cyclically "
                "with models.vistr.clip.cyclic_pad (the official rule)"
            )
        images = self.normalize(frames)  # checks dtype, layout and the artifact's input size
        b, _, h, w, _ = frames.shape
        if content_hw is not None:
            content_hw = self.content_hw(frames, content_hw)
        raw = self.forward_raw(images, b, content_hw)
        return contract_outputs(
            raw["logits"],
            raw["boxes"],
            raw["mask_logits"],
            raw["hs"],
            num_ins=self.cfg.num_ins,
            class_offset=self.cfg.class_offset,
            input_hw=(h, w),
            content_hw=content_hw,
        )


def model_spec(preset: str, cfg: VisTRConfig) -> ModelSpec:
    """Deployment metadata: static T, K = slots, D = d, cyclic padding of short windows."""
    t = cfg.num_frames
    return ModelSpec(
        name="vistr",
        preset=preset,
        classes=cfg.classes,
        input_hw=cfg.input_hw,
        num_outputs=cfg.num_ins,
        embedding_dim=cfg.hidden_dim,
        frames=(t, t, t),
        batch=cfg.batch,
        fixed_frames=t,
        window=(t, cfg.window_stride),
        extra={
            "short_clip_padding": "cyclic",  # models.vistr.clip.cyclic_pad, done by the runtime
            "logit_layout": {
                "class_offset": cfg.class_offset,
                "num_logits": cfg.num_logits,
                "no_object": cfg.num_logits - 1,
            },
        },
    )


def build(preset: str, *, input_hw: tuple[int, int] | None = None) -> VisTRSegm:
    """A randomly initialised VisTR at ``preset`` (``r50``, ``r101`` or ``tiny``).

    ``input_hw`` overrides the preset's (H, W) (multiples of 32): the weights do not depend on
    it, but an artifact is exported for one spatial size.
    """
    if preset not in PRESETS:
        raise UnknownModelError(
            f"unknown VisTR preset {preset!r}; presets: {', '.join(sorted(PRESETS))}"
        )
    cfg = PRESETS[preset]
    if input_hw is not None:
        cfg = dataclasses.replace(cfg, input_hw=tuple(input_hw))
    return VisTRSegm(cfg, model_spec(preset, cfg))
