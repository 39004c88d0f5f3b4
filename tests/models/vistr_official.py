"""A line-by-line transcription of the official VisTR forward and inference rules, for tests.

Follows Epiphqny/VisTR @445c9e4: ``nested_tensor_from_tensor_list`` (``util/misc.py:282-302``:
a padded batch and a boolean pixel mask, True on padding), the mask nearest-interpolated to each
backbone level (``models/backbone.py:72-79``), the cumsum-based 3-D position encoding
(``models/position_encoding.py:29-55``), the sequence-first DETR transformer on
``F.multi_head_attention_forward`` with the mask as ``key_padding_mask``
(``models/transformer.py:47-59``), ``MHAttentionMap`` with ``k_linear`` as a 1x1 conv, the einsum,
the -inf fill of padded pixels and the flattened softmax (``models/segmentation.py:228-239``), the
mask head with its ``expand`` and ``torchvision.ops.deform_conv2d`` in place of the CUDA DCN, the
Python loops over frames and slots of ``VisTRsegm.forward`` (``segmentation.py:83-128``, one clip
at a time, as the official code supports), and ``inference.py``'s score/label rules in numpy.
It reads the weights by their official names from our state dict, so it also checks that every
module sits where the official key says. It shares no code with ``models/vistr``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from detr_official_ops import _ffn, _ln, _mha
from torchvision.ops import deform_conv2d


def randomize_(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights everywhere: GN/LN affine, biases, BN buffers, sizeable DCN offsets."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            noise = torch.randn(t.shape, generator=g, dtype=t.dtype)
            if name.endswith("running_var"):
                t.copy_(noise.abs() * 0.5 + 0.5)
            elif t.dim() == 1:
                t.add_(0.1 * noise)
            elif "conv_offset" in name:
                t.copy_(noise)  # offsets of a few pixels
            else:
                t.add_(0.02 * noise)


def nested_mask(images, image_sizes):
    """util/misc.py:296-299: bool [N, H, W], True on padding, False on each image's (h, w)."""
    n, _, h, w = images.shape
    mask = torch.ones((n, h, w), dtype=torch.bool)
    for m, (ih, iw) in zip(mask, image_sizes):
        m[:ih, :iw] = False
    return mask


def position_embedding(mask, num_frames, num_pos_feats):
    """PositionEmbeddingSine of VisTR (normalize=True, scale 2π, temperature 10000)."""
    n, h, w = mask.shape
    not_mask = ~mask.reshape(n // num_frames, num_frames, h, w)
    z_embed = not_mask.cumsum(1, dtype=torch.float32)
    y_embed = not_mask.cumsum(2, dtype=torch.float32)
    x_embed = not_mask.cumsum(3, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    z_embed = z_embed / (z_embed[:, -1:, :, :] + eps) * scale
    y_embed = y_embed / (y_embed[:, :, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = 10000 ** (2 * (dim_t // 2) / num_pos_feats)
    out = []
    for e in (z_embed, y_embed, x_embed):
        p = e[:, :, :, :, None] / dim_t
        out.append(torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=5).flatten(4))
    return torch.cat(out, dim=4).permute(0, 1, 4, 2, 3)  # [B, T, 3F, h, w]


def _transformer(sd, cfg, src, mask, query_embed, pos_embed):
    """VisTR Transformer.forward: src [bs, c, T, hw] -> (hs [bs, Q, c], memory [bs, c, T, hw])."""
    bs, c, h, w = src.shape
    src = src.flatten(2).permute(2, 0, 1)
    pos = pos_embed.flatten(2).permute(2, 0, 1)
    query_pos = query_embed.unsqueeze(1).repeat(1, bs, 1)
    mask = mask.flatten(1)
    for i in range(cfg.enc_layers):
        p = f"vistr.transformer.encoder.layers.{i}."
        q = src + pos
        src = _ln(sd, p + "norm1.", src + _mha(sd, p + "self_attn.", q, q, src, cfg.nheads, mask))
        src = _ln(sd, p + "norm2.", src + _ffn(sd, p, src))
    memory, tgt = src, torch.zeros_like(query_pos)
    for i in range(cfg.dec_layers):
        p = f"vistr.transformer.decoder.layers.{i}."
        q = tgt + query_pos
        tgt = _ln(sd, p + "norm1.", tgt + _mha(sd, p + "self_attn.", q, q, tgt, cfg.nheads, None))
        tgt2 = _mha(
            sd, p + "multihead_attn.", tgt + query_pos, memory + pos, memory, cfg.nheads, mask
        )
        tgt = _ln(sd, p + "norm2.", tgt + tgt2)
        tgt = _ln(sd, p + "norm3.", tgt + _ffn(sd, p, tgt))
    hs = _ln(sd, "vistr.transformer.decoder.norm.", tgt)
    return hs.transpose(0, 1), memory.permute(1, 2, 0).view(bs, c, h, w)


def _attention_map(sd, q, k, heads, mask):
    """MHAttentionMap.forward: q [b, Q, d], k [b, d, h, w], mask [b, h, w] -> [b, Q, heads, h, w]."""
    d = q.shape[-1]
    q = F.linear(q, sd["bbox_attention.q_linear.weight"], sd["bbox_attention.q_linear.bias"])
    wk = sd["bbox_attention.k_linear.weight"].unsqueeze(-1).unsqueeze(-1)
    k = F.conv2d(k, wk, sd["bbox_attention.k_linear.bias"])
    qh = q.view(q.shape[0], q.shape[1], heads, d // heads)
    kh = k.view(k.shape[0], heads, d // heads, k.shape[-2], k.shape[-1])
    weights = torch.einsum("bqnc,bnchw->bqnhw", qh * float(d / heads) ** -0.5, kh)
    if mask is not None:
        weights.masked_fill_(mask.unsqueeze(1).unsqueeze(1), float("-inf"))
    return F.softmax(weights.flatten(2), dim=-1).view_as(weights)


def _mask_head(sd, groups, x, bbox_mask, fpns):
    """MaskHeadSmallConv.forward with torchvision's DCN in place of the CUDA one."""

    def expand(tensor, length):
        return tensor.unsqueeze(1).repeat(1, int(length), 1, 1, 1).flatten(0, 1)

    def conv(name, t, padding):
        return F.conv2d(
            t, sd[f"mask_head.{name}.weight"], sd[f"mask_head.{name}.bias"], padding=padding
        )

    def gn_relu(name, t):
        return F.relu(
            F.group_norm(t, groups, sd[f"mask_head.{name}.weight"], sd[f"mask_head.{name}.bias"])
        )

    x = torch.cat([expand(x, bbox_mask.shape[1]), bbox_mask.flatten(0, 1)], 1)
    x = gn_relu("gn1", conv("lay1", x, 1))
    x = gn_relu("gn2", conv("lay2", x, 1))
    for i, (lay, gn) in enumerate((("lay3", "gn3"), ("lay4", "gn4"), (None, None))):
        cur_fpn = conv(f"adapter{i + 1}", fpns[i], 0)
        if cur_fpn.size(0) != x.size(0):
            cur_fpn = expand(cur_fpn, x.size(0) / cur_fpn.size(0))
        x = cur_fpn + F.interpolate(x, size=cur_fpn.shape[-2:], mode="nearest")
        if lay is not None:
            x = gn_relu(gn, conv(lay, x, 1))
    offset = conv("conv_offset", x, 0)
    x = deform_conv2d(x, offset, sd["mask_head.dcn.weight"], padding=(1, 1))
    return gn_relu("gn5", x)


def _insmask_head(sd, groups, x):
    for i in (0, 3, 6):
        x = F.conv3d(
            x, sd[f"insmask_head.{i}.weight"], sd[f"insmask_head.{i}.bias"], padding=2, dilation=2
        )
        x = F.relu(
            F.group_norm(
                x, groups, sd[f"insmask_head.{i + 1}.weight"], sd[f"insmask_head.{i + 1}.bias"]
            )
        )
    return F.conv3d(x, sd["insmask_head.9.weight"], sd["insmask_head.9.bias"])


def _box_head(sd, hs):
    box = hs
    for i in range(3):
        w, b = sd[f"vistr.bbox_embed.layers.{i}.weight"], sd[f"vistr.bbox_embed.layers.{i}.bias"]
        box = F.linear(box, w, b)
        box = F.relu(box) if i < 2 else box.sigmoid()
    return box


def official_forward(model, images, image_size=None):
    """VisTRsegm.forward for ONE clip: images [T, 3, H, W] (padded batch), ``image_size`` (h, w)
    of the real image in every frame (None = unpadded) -> pred_logits/boxes/masks, hs."""
    cfg, sd = model.cfg, model.state_dict()
    t, n_f = cfg.num_frames, cfg.num_ins
    sizes = [image_size or tuple(images.shape[-2:])] * t
    pixel_mask = nested_mask(images, sizes)
    features = model.vistr.backbone[0](images)  # the torchvision/BasicResNet body itself
    src = features[-1]
    # backbone.py:77, for the last level (the only one whose mask is read)
    mask = F.interpolate(pixel_mask[None].float(), size=src.shape[-2:]).to(torch.bool)[0]
    pos = position_embedding(mask, t, cfg.hidden_dim // 3)
    src_proj = F.conv2d(src, sd["vistr.input_proj.weight"], sd["vistr.input_proj.bias"])
    n, c, s_h, s_w = src_proj.shape
    src_proj = src_proj.reshape(1, t, c, s_h, s_w).permute(0, 2, 1, 3, 4).flatten(-2)
    mask = mask.reshape(1, t, s_h * s_w)
    pos = pos.permute(0, 2, 1, 3, 4).flatten(-2)
    hs, memory = _transformer(sd, cfg, src_proj, mask, sd["vistr.query_embed.weight"], pos)
    logits = F.linear(hs, sd["vistr.class_embed.weight"], sd["vistr.class_embed.bias"])
    feats = [f.reshape(1, t, *f.shape[1:]) for f in features[:3]]
    frame_masks = []
    for i in range(t):
        hs_f = hs[:, i * n_f : (i + 1) * n_f, :]
        memory_f = memory[:, :, i, :].reshape(1, c, s_h, s_w)
        mask_f = mask[:, i, :].reshape(1, s_h, s_w)
        bbox_mask_f = _attention_map(sd, hs_f, memory_f, cfg.nheads, mask_f)
        seg = _mask_head(
            sd, cfg.mask_gn_groups, memory_f, bbox_mask_f,
            [feats[2][:, i], feats[1][:, i], feats[0][:, i]],
        )
        frame_masks.append(seg.view(1, n_f, seg.shape[1], seg.shape[-2], seg.shape[-1]))
    frame_masks = torch.cat(frame_masks, dim=0)
    slot_masks = [
        _insmask_head(
            sd, cfg.insmask_gn_groups, frame_masks[:, i].unsqueeze(0).permute(0, 2, 1, 3, 4)
        )
        for i in range(frame_masks.size(1))
    ]
    pred_masks = torch.cat(slot_masks, 1).squeeze(0).permute(1, 0, 2, 3)
    pred_masks = pred_masks.reshape(1, t * n_f, pred_masks.size(-2), pred_masks.size(-1))
    return {"pred_logits": logits, "pred_boxes": _box_head(sd, hs), "pred_masks": pred_masks,
            "hs": hs}


def official_scores(pred_logits, num_frames, num_ins):
    """inference.py: softmax without no-object, per-slot mean of frame max and bincount mode."""
    probs = pred_logits.softmax(-1)[0, :, :-1].numpy().reshape(num_frames, num_ins, -1)
    pred_scores, pred_labels = np.max(probs, axis=-1), np.argmax(probs, axis=-1)
    scores = [pred_scores[:, m].mean() for m in range(num_ins)]
    labels = [np.argmax(np.bincount(pred_labels[:, m])) for m in range(num_ins)]
    return np.array(scores), np.array(labels)


def official_boxes_xyxy(pred_boxes, image_size):
    """pred_boxes [Q, 4] (cx, cy, w, h) relative to the real image (vistr.py:55-57) -> xyxy
    pixels of it (``inference.py`` ``rescale_bboxes``: box_cxcywh_to_xyxy times (w, h, w, h))."""
    x_c, y_c, w, h = pred_boxes.unbind(-1)
    b = torch.stack([(x_c - 0.5 * w), (y_c - 0.5 * h), (x_c + 0.5 * w), (y_c + 0.5 * h)], dim=-1)
    img_h, img_w = image_size
    return b * torch.tensor([img_w, img_h, img_w, img_h], dtype=b.dtype)
