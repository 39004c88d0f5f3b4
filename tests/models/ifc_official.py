"""A transcription of the official IFC clip forward with padding masks, for tests.

Follows sukjunhwang/IFC @880d646, ``projects/IFC/ifc/``: ``mask_out_padding`` (``ifc.py:45-58``:
True on padding, the first ceil(h / stride) rows and ceil(w / stride) columns real), the cumsum
``PositionEmbeddingSine`` (``models/position_encoding.py:28-48``), ``forward_post_backbone``
(``models/ifc.py:64-85``), the sequence-first ``IFCTransformer`` at inference (``is_train=False``,
one clip: ``models/transformer.py:60-208``) on ``F.multi_head_attention_forward`` with the mask
as ``key_padding_mask`` and the memory tokens unmasked (``pad_zero``), and ``MaskHead``
(``models/segmentation.py:42-68``) with its grouped conv. The backbone is our ResNet itself
(it never reads the mask). Weights are read by their official names from our state dict; nothing
is shared with ``models/ifc``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from detr_official_ops import _ffn, _ln, _mha

RES5_STRIDE = 32  # detectron2 res5


def _mlp(sd, p, x, num_layers):
    for i in range(num_layers):
        x = F.linear(x, sd[f"{p}layers.{i}.weight"], sd[f"{p}layers.{i}.bias"])
        x = F.relu(x) if i < num_layers - 1 else x
    return x


def mask_out_padding(shape, image_sizes, stride):
    """ifc.py:45-58 for one level: bool [N, H, W], True on padding."""
    n, _, h, w = shape
    masks = torch.ones((n, h, w), dtype=torch.bool)
    for img_idx, (ih, iw) in enumerate(image_sizes):
        masks[img_idx, : int(np.ceil(float(ih) / stride)), : int(np.ceil(float(iw) / stride))] = 0
    return masks


def position_embedding(mask, num_pos_feats):
    """PositionEmbeddingSine(normalize=True): mask [N, h, w] -> [N, 2F, h, w]."""
    not_mask = ~mask
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = 10000 ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


def _encoder_layer(sd, p, src, heads, key_padding_mask=None, pos=None):
    """TransformerEncoderLayer.forward_post."""
    q = k = src if pos is None else src + pos
    src = _ln(sd, p + "norm1.", src + _mha(sd, p + "self_attn.", q, k, src, heads, key_padding_mask))
    return _ln(sd, p + "norm2.", src + _ffn(sd, p, src))


def _decoder_layer(sd, p, tgt, memory, heads, memory_key_padding_mask, pos, query_pos):
    """TransformerDecoderLayer.forward_post."""
    q = k = tgt + query_pos
    tgt = _ln(sd, p + "norm1.", tgt + _mha(sd, p + "self_attn.", q, k, tgt, heads, None))
    tgt2 = _mha(sd, p + "multihead_attn.", tgt + query_pos, memory + pos, memory, heads,
                memory_key_padding_mask)
    tgt = _ln(sd, p + "norm2.", tgt + tgt2)
    return _ln(sd, p + "norm3.", tgt + _ffn(sd, p, tgt))


def _pad_zero(x, pad, dim):
    pad_shape = list(x.shape)
    pad_shape[dim] = pad
    return torch.cat((x, x.new_zeros(pad_shape)), dim=dim)


def _encoder(sd, cfg, src, memory_bus, memory_pos, src_key_padding_mask, pos, bs):
    """IFCEncoder.forward (transformer.py:110-145), post-norm: no out/bus norm."""
    t = src.shape[1] // bs
    hw, _, c = src.shape
    m = len(memory_bus)
    memory_bus = memory_bus[:, None, :].repeat(1, bs * t, 1)
    memory_pos = memory_pos[:, None, :].repeat(1, bs * t, 1)
    pos = torch.cat((pos, memory_pos))
    src_key_padding_mask = _pad_zero(src_key_padding_mask, m, dim=1)
    output = src
    for i in range(cfg.enc_layers):
        output = torch.cat((output, memory_bus))
        output = _encoder_layer(sd, f"detr.transformer.encoder.enc_layers.{i}.", output,
                                cfg.nheads, src_key_padding_mask, pos)
        output, memory_bus = output[:hw, :, :], output[hw:, :, :]
        memory_bus = memory_bus.view(m, bs, t, c).permute(2, 1, 0, 3).flatten(1, 2)  # TxBMxC
        memory_bus = _encoder_layer(sd, f"detr.transformer.encoder.bus_layers.{i}.", memory_bus,
                                    cfg.nheads)
        memory_bus = memory_bus.view(t, bs, m, c).permute(2, 1, 0, 3).flatten(1, 2)  # MxBTxC
    return output, memory_bus


def _decoder(sd, cfg, tgt, memory, memory_bus, memory_pos, memory_key_padding_mask, pos,
             query_pos, bs):
    """IFCDecoder.forward (transformer.py:165-208) at inference: last layer only."""
    m, bt, c = memory_bus.shape
    t = bt // bs
    memory_bus = memory_bus.view(m, bs, t, c).permute(2, 0, 1, 3).flatten(0, 1)  # TMxBxC
    memory = torch.cat((memory, memory_bus))
    memory_pos = memory_pos[None, :, None, :].repeat(t, 1, bs, 1).flatten(0, 1)  # TMxBxC
    pos = torch.cat((pos, memory_pos))
    memory_key_padding_mask = _pad_zero(memory_key_padding_mask, t * m, dim=1)  # B, THW
    output = tgt
    for i in range(cfg.dec_layers):
        output = _decoder_layer(sd, f"detr.transformer.clip_decoder.layers.{i}.", output, memory,
                                cfg.nheads, memory_key_padding_mask, pos, query_pos)
    output = _ln(sd, "detr.transformer.clip_decoder.norm.", output)
    return output.unsqueeze(0)


def _transformer(sd, cfg, src, mask, query_embed, pos_embed):
    """IFCTransformer.forward (transformer.py:60-89) with is_train=False (bs = 1)."""
    bs = 1
    t = src.shape[0] // bs
    _, c, h, w = src.shape
    src = src.view(bs * t, c, h * w).permute(2, 0, 1)  # HW, BT, C
    frame_pos = pos_embed.view(bs * t, c, h * w).permute(2, 0, 1)  # HW, BT, C
    frame_mask = mask.view(bs * t, h * w)  # BT, HW
    memory_bus, memory_pos = sd["detr.transformer.memory_bus"], sd["detr.transformer.memory_pos"]
    src, memory_bus = _encoder(sd, cfg, src, memory_bus, memory_pos, frame_mask, frame_pos, bs)
    dec_src = src.view(h * w, bs, t, c).permute(2, 0, 1, 3).flatten(0, 1)
    query_embed = query_embed.unsqueeze(1).repeat(1, bs, 1)  # Q, B, C
    tgt = torch.zeros_like(query_embed)
    dec_pos = pos_embed.view(bs, t, c, h * w).permute(1, 3, 0, 2).flatten(0, 1)
    dec_mask = mask.view(bs, t * h * w)  # B, THW
    clip_hs = _decoder(sd, cfg, tgt, dec_src, memory_bus, memory_pos, dec_mask, dec_pos,
                       query_embed, bs)
    return clip_hs, src.permute(1, 2, 0).reshape(bs * t, c, h, w)


def _mask_head(sd, cfg, x, fpns, tq):
    """MaskHead.forward (segmentation.py:42-68): x [BT, C, h, w], tq [L, B, N, C]."""
    def conv(name, t, padding=0, groups=1):
        return F.conv2d(t, sd[f"detr.mask_head.{name}.weight"], sd[f"detr.mask_head.{name}.bias"],
                        padding=padding, groups=groups)

    def gn(name, t):
        return F.group_norm(t, cfg.gn_groups, sd[f"detr.mask_head.{name}.weight"],
                            sd[f"detr.mask_head.{name}.bias"])

    x = gn("gn1", conv("lay1", x, 1))
    cur_fpn = conv("adapter1", fpns[0])
    x = cur_fpn + F.interpolate(x, size=cur_fpn.shape[-2:], mode="nearest")
    x = gn("gn2", conv("lay2", x, 1))
    cur_fpn = conv("adapter2", fpns[1])
    x = cur_fpn + F.interpolate(x, size=cur_fpn.shape[-2:], mode="nearest")
    x = F.relu(gn("gn3", conv("lay3", x, 1)))
    bt, c, h, w = x.shape
    n_layers, b, n, c = tq.shape
    t = bt // b
    # detectron2 DepthwiseSeparableConv2d: depthwise 5x5 (+bias) -> ReLU -> 1x1 (+bias) -> ReLU
    x = F.relu(conv("out_lay.depthwise", x, 2, groups=c))
    x = F.relu(conv("out_lay.pointwise", x))
    weights = _mlp(sd, "detr.mask_head.convert_to_weight.", tq, 3).permute(1, 0, 2, 3)
    weights = weights.unsqueeze(1).repeat(1, t, 1, 1, 1)
    # official x.view(...): reshape here, as x may come out of the convs channels-last
    mask_logits = F.conv2d(x.reshape(1, bt * c, h, w),
                           weights.reshape(b * t * n_layers * n, c, 1, 1), groups=bt)
    return mask_logits.view(b, t, n_layers, n, h, w).permute(2, 0, 3, 1, 4, 5)


def official_clip(model, images, image_size):
    """One clip: normalised images [T, 3, H, W] (the padded batch) and the real (h, w) of every
    frame -> ``pred_logits`` [1, Q, C+1] and ``pred_masks`` [1, Q, T, H/8, W/8]."""
    cfg, sd = model.cfg, model.state_dict()
    res3, res4, res5 = model.detr.backbone[0](images)  # the ResNet: it never reads the mask
    mask = mask_out_padding(res5.shape, [image_size] * images.shape[0], RES5_STRIDE)
    pos = position_embedding(mask, cfg.hidden_dim // 2).to(res5.dtype)
    src_proj = F.conv2d(res5, sd["detr.input_proj.weight"], sd["detr.input_proj.bias"])
    clip_hs, encoded_src = _transformer(sd, cfg, src_proj, mask, sd["detr.query_embed.weight"],
                                        pos)
    clip_hs = clip_hs.transpose(1, 2)  # LxBxQxC
    outputs_class = _mlp(sd, "detr.class_embed.", clip_hs, 2)
    outputs_masks = _mask_head(sd, cfg, encoded_src, [res4, res3], clip_hs)
    return {"pred_logits": outputs_class[-1], "pred_masks": outputs_masks[-1]}


def official_boxes(mask_probs):
    """Ifc._inference_image's box of ``pred_masks > 0`` per frame (ifc.py:378-389), here of the
    stride-4 probabilities > 0.5: bool rows/cols -> [x0, y0, x1 + 1, y1 + 1] times 4 pixels.
    mask_probs [K, T, h4, w4] -> boxes [K, T, 4]."""
    on = (mask_probs > 0.5).numpy()
    boxes = np.zeros(on.shape[:2] + (4,), np.float32)
    for k in range(on.shape[0]):
        for f in range(on.shape[1]):
            x, y = np.where(on[k, f].any(0))[0], np.where(on[k, f].any(1))[0]
            if len(x) and len(y):
                boxes[k, f] = [x[0], y[0], x[-1] + 1, y[-1] + 1]
    return torch.from_numpy(boxes * 4)
