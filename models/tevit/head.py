"""TeViT head: learned proposals, STQI stages (spatial + temporal query interaction), mask head.

Shapes: B clips, T frames, P proposals, C channels. Queries are Tensor[B, T, P, C]; query index
p is the instance identity across the clip (hustvl/TeViT mmdet/models/roi_heads/tevit_roi_head.py).
"""

from __future__ import annotations

import torch
from torch import nn

from models.common.attention import ResidualSelfAttention
from models.common.box_ops import cxcywh_to_xyxy, delta_xywh_decode
from models.common.roi_align import EXPORT_FORMS, multilevel_roi_align_gathered
from models.tevit.config import TeViTConfig


def _roi_align(training: bool, form: str = "grid_sample"):
    """The inference form ``EXPORT_FORMS[form]`` (``use_roi_align``); the per-level gathered
    form for training."""
    return multilevel_roi_align_gathered if training else EXPORT_FORMS[form]


class EmbeddingRPNHead(nn.Module):
    """Learned initial boxes (normalised cx, cy, w, h) and query features, shared by all frames."""

    def __init__(self, num_proposals: int, channels: int):
        super().__init__()
        self.init_proposal_bboxes = nn.Embedding(num_proposals, 4)
        self.init_proposal_features = nn.Embedding(num_proposals, channels)
        nn.init.constant_(self.init_proposal_bboxes.weight[:, :2], 0.5)
        nn.init.constant_(self.init_proposal_bboxes.weight[:, 2:], 1.0)

    def forward(self, image_whwh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image_whwh Tensor[B, 4] (w, h, w, h of each clip's real image) -> (boxes Tensor[B, P, 4]
        xyxy input pixels, features Tensor[P, C]).

        Official: ``EmbeddingRPNHead._decode_init_proposals`` scales the normalised proposals by
        each image's own ``img_shape`` (the resized image before padding), hustvl/TeViT
        mmdet/models/dense_heads/embedding_rpn_head.py:75-88.
        """
        boxes = cxcywh_to_xyxy(self.init_proposal_bboxes.weight)[None] * image_whwh[:, None, :]
        return boxes, self.init_proposal_features.weight


class DynamicConv(nn.Module):
    """mmdet ``DynamicConv``: per-query 1x1 kernels generated from the query (§3.3 step 4)."""

    def __init__(self, channels: int, feat_channels: int, roi_size: int, with_proj: bool):
        super().__init__()
        self.channels, self.feat_channels = channels, feat_channels
        self.num_params = channels * feat_channels
        self.dynamic_layer = nn.Linear(channels, 2 * self.num_params)
        self.norm_in = nn.LayerNorm(feat_channels)
        self.norm_out = nn.LayerNorm(channels)
        self.activation = nn.ReLU()
        self.with_proj = with_proj
        if with_proj:
            self.fc_layer = nn.Linear(channels * roi_size * roi_size, channels)
            self.fc_norm = nn.LayerNorm(channels)

    def forward(self, query: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """query Tensor[N, C], roi Tensor[N, C, S, S] -> Tensor[N, C] (proj) or Tensor[N, S*S, C]."""
        n = query.shape[0]
        params = self.dynamic_layer(query)
        w_in = params[:, : self.num_params].reshape(n, self.channels, self.feat_channels)
        w_out = params[:, self.num_params :].reshape(n, self.feat_channels, self.channels)
        f = roi.flatten(2).transpose(1, 2)  # [N, S*S, C]
        f = self.activation(self.norm_in(torch.bmm(f, w_in)))
        f = self.activation(self.norm_out(torch.bmm(f, w_out)))
        if self.with_proj:
            f = self.activation(self.fc_norm(self.fc_layer(f.flatten(1))))
        return f


class FFN(nn.Module):
    """mmcv ``FFN`` with identity: x + Linear(ReLU(Linear(x))); keys ``layers.0.0`` / ``layers.1``."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(0.0)),
            nn.Linear(hidden, channels),
            nn.Dropout(0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


def _fc_ln_relu(channels: int) -> list[nn.Module]:
    return [nn.Linear(channels, channels, bias=False), nn.LayerNorm(channels), nn.ReLU()]


class STQIHead(nn.Module):
    """One STQI stage (§3.3): spatial then temporal MHSA with shared weights, RoI dynamic conv,
    FFN, classification and class-agnostic box refinement."""

    def __init__(self, cfg: TeViTConfig):
        super().__init__()
        c = cfg.fpn_channels
        self.cfg = cfg
        self.roi_align_form = "grid_sample"  # see TeViT.use_roi_align
        self.attention = ResidualSelfAttention(c, cfg.head_heads)
        self.attention_norm = nn.LayerNorm(c)
        self.instance_interactive_conv = DynamicConv(c, cfg.dynamic_channels, cfg.roi_size, with_proj=True)
        self.instance_interactive_conv_norm = nn.LayerNorm(c)
        self.ffn = FFN(c, cfg.ffn_channels)
        self.ffn_norm = nn.LayerNorm(c)
        self.cls_fcs = nn.Sequential(*_fc_ln_relu(c))
        self.fc_cls = nn.Linear(c, len(cfg.classes))
        self.reg_fcs = nn.Sequential(*[m for _ in range(cfg.num_reg_fcs) for m in _fc_ln_relu(c)])
        self.fc_reg = nn.Linear(c, 4)

    def interact(self, q: torch.Tensor) -> torch.Tensor:
        """Spatial MHSA over P per frame, then the same module over T per query: [B,T,P,C] -> same."""
        b, t, p, c = q.shape
        q = self.attention_norm(self.attention(q.reshape(b * t, p, c)))
        q = q.reshape(b, t, p, c).transpose(1, 2).reshape(b * p, t, c)  # sequence = frames
        q = self.attention_norm(self.attention(q))
        return q.reshape(b, p, t, c).transpose(1, 2)

    def forward(self, q: torch.Tensor, boxes: torch.Tensor, levels: list[torch.Tensor]):
        """q Tensor[B,T,P,C], boxes Tensor[B,T,P,4] -> (cls [B,T,P,K], boxes, obj_feat, attn_feat)."""
        b, t, p, c = q.shape
        attn_feats = self.interact(q)
        roi = _roi_align(self.training, self.roi_align_form)(
            levels, list(self.cfg.fpn_strides), boxes.reshape(b * t, p, 4),
            self.cfg.roi_size, 2, self.cfg.finest_scale,
        ).reshape(b * t * p, c, self.cfg.roi_size, self.cfg.roi_size)
        flat = attn_feats.reshape(b * t * p, c)
        obj = self.instance_interactive_conv_norm(flat + self.instance_interactive_conv(flat, roi))
        obj = self.ffn_norm(self.ffn(obj))
        cls_score = self.fc_cls(self.cls_fcs(obj)).reshape(b, t, p, -1)
        deltas = self.fc_reg(self.reg_fcs(obj)).reshape(b, t, p, 4)
        return cls_score, delta_xywh_decode(boxes, deltas), obj.reshape(b, t, p, c), attn_feats


class ConvBNReLU(nn.Module):
    """mmcv ``ConvModule`` with BN: keys ``conv.weight`` (no bias) and ``bn.*``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.activate = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DynamicMaskHead(nn.Module):
    """QueryInst dynamic mask head (§3.4): dynamic conv on 14x14 RoIs, 4 convs, deconv, logits."""

    def __init__(self, cfg: TeViTConfig):
        super().__init__()
        c = cfg.fpn_channels
        self.roi_size = cfg.mask_roi_size
        self.instance_interactive_conv = DynamicConv(c, cfg.dynamic_channels, cfg.mask_roi_size, with_proj=False)
        self.convs = nn.ModuleList(ConvBNReLU(c) for _ in range(cfg.num_mask_convs))
        self.upsample = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.relu = nn.ReLU()
        self.conv_logits = nn.Conv2d(c, len(cfg.classes), 1)

    def forward(self, roi: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """roi Tensor[N, C, S, S], query Tensor[N, C] -> logits Tensor[N, classes, 2S, 2S]."""
        x = self.instance_interactive_conv(query, roi).transpose(1, 2).reshape(roi.shape)
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(self.relu(self.upsample(x)))


class TeViTRoIHead(nn.Module):
    """The 6 STQI stages and 6 mask heads (only the last mask head runs at inference)."""

    def __init__(self, cfg: TeViTConfig):
        super().__init__()
        self.cfg = cfg
        self.roi_align_form = "grid_sample"  # see TeViT.use_roi_align
        self.bbox_head = nn.ModuleList(STQIHead(cfg) for _ in range(cfg.num_stages))
        self.mask_head = nn.ModuleList(DynamicMaskHead(cfg) for _ in range(cfg.num_stages))

    def forward(self, q: torch.Tensor, boxes: torch.Tensor, levels: list[torch.Tensor]) -> list[dict]:
        """Run every stage: q Tensor[B,T,P,C], boxes Tensor[B,T,P,4] -> per-stage outputs."""
        stages = []
        for head in self.bbox_head:
            # Each stage refines the previous boxes without back-propagating into them (Sparse R-CNN).
            cls_score, boxes, q, attn_feats = head(q, boxes.detach(), levels)
            stages.append({"cls": cls_score, "boxes": boxes, "obj": q, "attn": attn_feats})
        return stages

    def mask_logits(self, stage: int, levels: list[torch.Tensor], boxes: torch.Tensor, attn: torch.Tensor):
        """Mask head ``stage`` on RoIs: boxes Tensor[B*T, N, 4], attn Tensor[B*T, N, C]
        -> logits Tensor[B*T, N, classes, 2S, 2S]."""
        bt, n, c = attn.shape
        s = self.cfg.mask_roi_size
        roi = _roi_align(self.training, self.roi_align_form)(levels, list(self.cfg.fpn_strides), boxes, s, 2,
                                                             self.cfg.finest_scale)
        logits = self.mask_head[stage](roi.reshape(bt * n, c, s, s), attn.reshape(bt * n, c))
        return logits.reshape(bt, n, logits.shape[1], 2 * s, 2 * s)
