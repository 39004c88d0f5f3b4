"""IFC (Hwang et al., NeurIPS 2021) as a visdeploy ``VISModel``, in two composable stages.

``frame_stage(frames)`` runs everything that is per frame — normalisation, ResNet, ``input_proj``
on res5 and the mask head's adapters on res4/res3 — and ``clip_stage(src, fpn1, fpn2,
content_hw)`` runs the memory-token encoder, clip decoder, heads and contract post-processing;
``forward`` is their composition. Streaming with overlapping windows can therefore compute each
frame's features once.

Padding (``content_hw``): as the official code with padded images, the res5 tokens outside the
real image are masked as attention keys in the encoder and the decoder and the position encoding
counts only real cells (``ifc.py:33-58``, ``position_encoding.py:28-48``, ``transformer.py:60-89``).
The backbone and the mask head do not read the mask (``segmentation.py:42-68``), so the frame
stage stays content-free and only the clip stage takes ``content_hw``.

Module names mirror the official ``Ifc`` meta-architecture (``detr.…``); see ``keymap.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import ModelSpec, VISModel, clamp_content_hw
from models.common.box_ops import masks_to_boxes
from models.common.padding import cell_mask, content_cells, padding_bias
from models.ifc import postprocess
from models.ifc.backbone import build_backbone
from models.ifc.config import PRESETS, IFCConfig
from models.ifc.decoder import IFCTransformer
from models.ifc.heads import MLP, MaskHead
from models.ifc.keymap import KEY_MAP

__all__ = ["PRESETS", "KEY_MAP", "IFCModel", "build"]

# detectron2's res5 stride, the official ``feature_strides[-1]`` of ``mask_out_padding`` (ifc.py:30)
RES5_STRIDE = 32


class IFC(nn.Module):
    """The official ``IFC`` module (``detr``): backbone, transformer, class/query/proj, mask head."""

    def __init__(self, cfg: IFCConfig):
        super().__init__()
        d = cfg.hidden_dim
        _, c3, c4, c5 = cfg.stage_channels
        self.backbone = build_backbone(cfg)
        self.transformer = IFCTransformer(
            d, cfg.nheads, cfg.dim_feedforward, cfg.enc_layers, cfg.dec_layers, cfg.num_memory_bus
        )
        self.class_embed = MLP(d, d, cfg.num_classes + 1, 2)
        self.query_embed = nn.Embedding(cfg.num_queries, d)
        self.input_proj = nn.Conv2d(c5, d, kernel_size=1)
        self.mask_head = MaskHead(d, (c4, c3), cfg.gn_groups)


class IFCModel(VISModel):
    """uint8 frames Tensor[B, T, H, W, 3] -> the six contract outputs (K rows per clip)."""

    frame_feature_names = ("src", "fpn1", "fpn2")
    uses_content_hw = True  # the clip stage masks the padding, as the official training does

    def __init__(self, cfg: IFCConfig):
        spec = ModelSpec(
            name="ifc", preset=cfg.preset, classes=cfg.classes, input_hw=cfg.input_hw,
            num_outputs=cfg.num_outputs, embedding_dim=cfg.hidden_dim, frames=cfg.frames,
            window=cfg.window, mean=cfg.mean, std=cfg.std,
            extra={"input_format": cfg.input_format, "mask_stride_native": 8,
                   "stages": {"frame": ["frames"], "clip": list(self.frame_feature_names)}},
        )
        super().__init__(spec)
        self.cfg = cfg
        self.detr = IFC(cfg)

    def frame_stage(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 Tensor[B, T, H, W, 3] -> per-frame features, each Tensor[B, T, C, h, w]:
        src (``input_proj(res5)``, stride 32), fpn1 (``adapter1(res4)``, 16), fpn2 (``adapter2(res3)``, 8).
        """
        b, t = frames.shape[0], frames.shape[1]
        x = self.normalize(frames)  # [B·T, 3, H, W], RGB
        if self.cfg.input_format == "BGR":
            x = x.flip(1)
        res3, res4, res5 = self.detr.backbone(x)
        src = self.detr.input_proj(res5)
        fpn1, fpn2 = self.detr.mask_head.adapt(res4, res3)
        return tuple(f.reshape(b, t, *f.shape[1:]) for f in (src, fpn1, fpn2))

    def decode(
        self, src: torch.Tensor, fpn1: torch.Tensor, fpn2: torch.Tensor,
        content_hw: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frame features -> (class logits [B, Q, C+1], mask kernels [B, Q, D],
        query features [B, Q, D], pixel features [B·T, D, h8, w8]).

        ``content_hw`` int Tensor[B, 2] (None = the whole input): the real image of each clip.
        """
        b, t, c, h, w = src.shape
        tokens = src.reshape(b * t, c, h * w).transpose(1, 2)  # [B·T, h·w, C]
        if content_hw is None:
            pos, key_bias = self.detr.backbone[1](h, w, src.device), None  # [h·w, C]
        else:
            content = clamp_content_hw(content_hw, self.spec.input_hw)
            rows, cols = content_cells(content, (h, w), RES5_STRIDE)  # mask_out_padding
            pos = self.detr.backbone[1].masked(rows, cols).to(src.dtype)  # [B, h·w, C]
            key_bias = padding_bias(cell_mask(rows, cols), src.dtype)  # [B, h·w]
        hs, encoded = self.detr.transformer(tokens, pos, self.detr.query_embed.weight, b, key_bias)
        # [B·T, h·w, C] -> [B·T, C, h, w]. The official code permutes, then reshapes
        # (``src.permute(1,2,0).reshape(bs*t, c, h, w)``, projects/IFC/ifc/models/
        # transformer.py:87); reshaping to [B·T, h, w, C] first and permuting gives the same
        # tensor, and this order OpenVINO compiles right for a static shape: openvino 2026.4.1
        # fused the Transpose -> Reshape -> Conv of the other order wrongly in IFC's static
        # graphs (wrong masks; docs/notes/lab-notebook.md, "IFC's static compile").
        encoded = encoded.reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        head = self.detr.mask_head
        pixels = head.pixel_features(encoded, fpn1.flatten(0, 1), fpn2.flatten(0, 1))
        return self.detr.class_embed(hs), head.convert_to_weight(hs), hs, pixels

    def clip_stage(
        self, src: torch.Tensor, fpn1: torch.Tensor, fpn2: torch.Tensor,
        content_hw: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Frame features of one clip per batch row (+ its ``content_hw``) -> contract outputs
        (see ``postprocess``)."""
        logits, kernels, hs, pixels = self.decode(src, fpn1, fpn2, content_hw)
        scores, labels, query = postprocess.rank_pairs(logits, self.spec.num_outputs)
        mask_logits = self.detr.mask_head.mask_logits(
            postprocess.gather_queries(kernels, query), pixels
        )
        masks = postprocess.upsample_masks(mask_logits)
        embeddings = nn.functional.normalize(postprocess.gather_queries(hs, query), dim=-1)
        return {
            "scores": scores,
            "labels": labels.to(torch.int32),
            "masks": masks,
            "boxes": masks_to_boxes(masks, stride=4),  # xyxy of mask > 0.5, input pixels
            "embeddings": embeddings,
            "query_index": query.to(torch.int32),
        }

    def forward(
        self, frames: torch.Tensor, content_hw: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return self.clip_stage(*self.frame_stage(frames), content_hw=content_hw)

    def official_outputs(
        self, frames: torch.Tensor, content_hw: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The official clip outputs for every query: ``pred_logits`` [B, Q, C+1] and
        ``pred_masks`` [B, Q, T, h8, w8] mask logits (input of ``near_online``)."""
        logits, kernels, _, pixels = self.decode(*self.frame_stage(frames), content_hw)
        masks = self.detr.mask_head.mask_logits(kernels, pixels)
        return {"pred_logits": logits, "pred_masks": masks}


def build(preset: str) -> IFCModel:
    """IFC at ``preset`` (``r50``, ``r101``, ``tiny``) with random weights, in eval mode."""
    return IFCModel(PRESETS[preset]).eval()
