"""TeViT assembled: MsgShifT -> FPN -> learned proposals -> 6 STQI stages -> top-K + masks.

``forward`` follows the official inference (hustvl/TeViT mmdet/models/roi_heads/tevit_roi_head.py ``simple_test``) up to the engine contract: sigmoid
class scores averaged over frames, top-K (query, label) pairs shared by every frame, last-stage
boxes, mask head 5 on the selected queries' attention features, masks pasted at 1/4 input
resolution. Identity across frames = query index.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.base import ModelSpec, VISModel
from models.common.box_ops import paste_masks
from models.tevit.config import PRESETS, TeViTConfig
from models.tevit.head import EmbeddingRPNHead, TeViTRoIHead
from models.tevit.msgshift import MsgShifT
from models.tevit.neck import FPN

MASK_STRIDE = 4  # contract: masks at H/4 x W/4

__all__ = ["PRESETS", "TeViT", "build"]


def _gather_queries(x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Pick queries per clip: x Tensor[B, T, P, D], query int64[B, K] -> Tensor[B, T, K, D]."""
    b, t, _, d = x.shape
    index = query[:, None, :, None].expand(b, t, query.shape[1], d)
    return torch.gather(x, 2, index)


class TeViT(VISModel):
    """TeViT with official attribute names (``backbone``, ``neck``, ``rpn_head``, ``roi_head``)."""

    uses_content_hw = True  # the learned proposals are scaled by each image's size

    def __init__(self, cfg: TeViTConfig, preset: str):
        super().__init__(
            ModelSpec(
                name="tevit",
                preset=preset,
                classes=cfg.classes,
                input_hw=cfg.input_hw,
                num_outputs=cfg.top_k,
                embedding_dim=cfg.fpn_channels,
                frames=cfg.frames,
                window=cfg.window,
                extra={"roi_align": "grid_sample"},
            )
        )
        self.cfg = cfg
        self.pasted_mask_cells = 2 * cfg.mask_roi_size  # the mask head's deconv doubles its RoI
        self.backbone = MsgShifT(cfg)
        self.neck = FPN(cfg.stage_dims, cfg.fpn_channels)
        self.rpn_head = EmbeddingRPNHead(cfg.num_proposals, cfg.fpn_channels)
        self.roi_head = TeViTRoIHead(cfg)
        self.init_weights()

    def init_weights(self) -> None:
        """Head init as mmdet's DIIHead (xavier, focal prior 0.01 on the class bias), with small
        box-regression weights so untrained refinements stay near the proposals (and a seeded
        random model is numerically well-conditioned for parity checks)."""
        prior_bias = -math.log((1 - 0.01) / 0.01)
        for head in self.roi_head.bbox_head:
            for param in head.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
            nn.init.constant_(head.fc_cls.bias, prior_bias)
            nn.init.normal_(head.fc_reg.weight, std=1e-3)
            nn.init.zeros_(head.fc_reg.bias)

    def use_roi_align(self, form: str) -> None:
        """Pick the inference RoIAlign form of every head: ``grid_sample`` (pure tensor ops, the
        default) or ``onnx`` (torchvision's kernel, exported as the ONNX RoiAlign op, every RoI
        on every level, fixed shapes) or ``onnx_gathered`` (the same op on each RoI's own level
        only, through NonZero: a quarter of the work, data-dependent shapes). All equal mmcv's
        ``aligned=True`` kernel; training always uses the gathered torchvision form."""
        from models.common.roi_align import EXPORT_FORMS

        if form not in EXPORT_FORMS:
            raise ValueError(f"unknown RoIAlign form {form!r}; choose one of {', '.join(EXPORT_FORMS)}")
        for module in self.roi_head.modules():
            if hasattr(module, "roi_align_form"):
                module.roi_align_form = form
        self.spec.extra["roi_align"] = form

    def features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """uint8 Tensor[B, T, H, W, 3] -> FPN levels, each Tensor[B*T, C, H/s, W/s]."""
        return self.neck(self.backbone(self.normalize(frames), frames.shape[0]))

    def image_whwh(self, frames: torch.Tensor, content_hw: torch.Tensor | None) -> torch.Tensor:
        """float Tensor[B, 4] = (w, h, w, h) of each clip's real image (mmdet's ``imgs_whwh``)."""
        hw = self.content_hw(frames, content_hw).to(torch.float32)
        return torch.stack((hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]), dim=1)

    def decode(self, frames: torch.Tensor, content_hw: torch.Tensor | None = None
               ) -> tuple[list[torch.Tensor], list[dict]]:
        """Run backbone, neck and all STQI stages for all P proposals (training uses this too).

        ``content_hw`` int Tensor[B, 2]: (h, w) of the real image inside the letterbox (None =
        the whole input); it scales the learned proposals, as the official ``img_shape`` does.
        Returns (levels, stages); stage s holds ``cls`` [B,T,P,classes] logits, ``boxes``
        [B,T,P,4], ``obj`` and ``attn`` [B,T,P,C].
        """
        b, t = frames.shape[:2]
        levels = self.features(frames)
        boxes, queries = self.rpn_head(self.image_whwh(frames, content_hw))  # [B, P, 4], [P, C]
        p, c = queries.shape
        boxes = boxes[:, None].expand(b, t, p, 4)
        queries = queries.expand(b, t, p, c)
        return levels, self.roi_head(queries, boxes, levels)

    def forward(self, frames: torch.Tensor, content_hw: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """uint8 Tensor[B, T, H, W, 3] RGB (+ int Tensor[B, 2] real image size) -> the engine
        contract outputs (docs/contract.md)."""
        levels, stages = self.decode(frames, content_hw)
        return self.postprocess(levels, stages, frames.shape[2:4])

    def postprocess(self, levels, stages, input_hw) -> dict[str, torch.Tensor]:
        """Top-K (query, label) pairs over frame-averaged sigmoid scores, then masks for them."""
        last = stages[-1]
        b, t, p, num_classes = last["cls"].shape
        k = self.cfg.top_k
        video_scores = last["cls"].sigmoid().mean(dim=1).reshape(b, p * num_classes)  # [B, P*classes]
        scores, flat = torch.topk(video_scores, k, dim=1, sorted=True)
        query = torch.div(flat, num_classes, rounding_mode="floor")  # [B, K]
        label = flat - query * num_classes
        boxes = _gather_queries(last["boxes"], query)  # [B, T, K, 4]
        attn = _gather_queries(last["attn"], query)  # [B, T, K, C]
        logits = self.roi_head.mask_logits(
            len(stages) - 1, levels, boxes.reshape(b * t, k, 4), attn.reshape(b * t, k, -1)
        )  # [B*T, K, classes, M, M]
        m = logits.shape[-1]
        pick = label[:, None, :, None, None, None].expand(b, t, k, 1, m, m).reshape(b * t, k, 1, m, m)
        probs = torch.gather(logits, 2, pick).sigmoid().reshape(b * t * k, m, m)
        out_hw = (input_hw[0] // MASK_STRIDE, input_hw[1] // MASK_STRIDE)
        masks = paste_masks(probs, boxes.reshape(b * t * k, 4), out_hw, MASK_STRIDE)
        obj = _gather_queries(last["obj"], query).mean(dim=1)  # [B, K, C]
        return {
            "scores": scores,
            "labels": label.to(torch.int32),
            "masks": masks.reshape(b, t, k, *out_hw).transpose(1, 2),
            "boxes": boxes.transpose(1, 2),
            "embeddings": F.normalize(obj, dim=-1),
            "query_index": query.to(torch.int32),
        }


def build(preset: str) -> TeViT:
    """A randomly initialised TeViT at ``preset`` (see ``PRESETS``)."""
    return TeViT(PRESETS[preset], preset)
