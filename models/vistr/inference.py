"""VisTR's official inference rules (``inference.py``, A.4) up to the engine-contract tensors.

Per instance slot i (its track is query t·S + i of every frame t):
- per frame: probabilities = softmax over all logits without the no-object column; the frame
  score is the max over the class columns and the frame label their argmax;
- clip score = mean of the frame scores; clip label = the most frequent frame label (ties -> the
  lowest class index, as ``np.argmax(np.bincount(...))``);
- masks = sigmoid of the mask logits (the host upsamples and thresholds at 0.5);
- boxes = the box head's per-frame (cx, cy, w, h), relative to the real image (official
  ``vistr.py:55-57``) -> xyxy input pixels (scaled by the real image's size, top-left content);
- embedding = mean over frames of the slot's decoder output, L2-normalised.

Differences to the official script, both deliberate: (1) the official max/argmax also runs over
column 0, a class index that YTVIS never uses (``class_offset``); we take them over the real
classes only so every label indexes ``classes`` (identical unless column 0 wins, which it never
learns to do). (2) The official scores use only the first ``length`` frames of a cyclically padded
clip; with a static-T graph the scores cover all T frames (identical for full clips).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.common.box_ops import cxcywh_to_xyxy


def class_scores(logits: torch.Tensor, class_offset: int) -> torch.Tensor:
    """Tensor[..., class_offset + C + 1] logits -> Tensor[..., C] probabilities of the C classes.

    Softmax over all columns (incl. no-object), then the no-object and unused columns dropped.
    """
    probs = torch.softmax(logits, dim=-1)
    return probs[..., class_offset : logits.shape[-1] - 1]


def clip_score_and_label(frame_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """frame_probs Tensor[B, T, S, C] -> (score Tensor[B, S] float, label Tensor[B, S] int64)."""
    frame_score, frame_label = frame_probs.max(dim=-1)  # [B, T, S]
    classes = torch.arange(frame_probs.shape[-1], device=frame_probs.device)
    votes = (frame_label.unsqueeze(-1) == classes).sum(dim=1)  # [B, S, C] frames voting per class
    return frame_score.mean(dim=1), votes.argmax(dim=-1)


def contract_outputs(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    mask_logits: torch.Tensor,
    hs: torch.Tensor,
    *,
    num_ins: int,
    class_offset: int,
    input_hw: tuple[int, int],
    content_hw: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Raw VisTR outputs of B clips -> the engine contract (docs/contract.md §1) with K = S = ``num_ins``.

    Args:
        logits: Tensor[B, T*S, class_offset + C + 1], frame-major queries.
        boxes: Tensor[B, T*S, 4] sigmoid (cx, cy, w, h), normalised to the real image.
        mask_logits: Tensor[B, S, T, H/4, W/4].
        hs: Tensor[B, T*S, d] decoder output (after the final LayerNorm).
        input_hw: (H, W) of the network input.
        content_hw: int Tensor[B, 2] (h, w) of the real image in each clip (None = the input).

    Returns:
        scores [B, S] f32, labels [B, S] int32, masks [B, S, T, H/4, W/4] f32, boxes [B, S, T, 4]
        f32 xyxy pixels, embeddings [B, S, d] f32, query_index [B, S] int32 (the slot index).
    """
    b, q, d = hs.shape
    t = q // num_ins
    frame_probs = class_scores(logits, class_offset).reshape(b, t, num_ins, -1)
    scores, labels = clip_score_and_label(frame_probs)
    if content_hw is None:
        h, w = input_hw
        scale = boxes.new_tensor([w, h, w, h])
    else:  # (w, h, w, h) per clip, Tensor[B, 1, 4]
        scale = content_hw.flip(-1).repeat(1, 2).to(boxes.dtype)[:, None, :]
    boxes_xyxy = (cxcywh_to_xyxy(boxes) * scale).reshape(b, t, num_ins, 4).transpose(1, 2)
    embeddings = F.normalize(hs.reshape(b, t, num_ins, d).mean(dim=1), dim=-1)
    slots = torch.arange(num_ins, dtype=torch.int32, device=hs.device)
    return {
        "scores": scores,
        "labels": labels.to(torch.int32),
        "masks": mask_logits.sigmoid(),
        "boxes": boxes_xyxy,
        "embeddings": embeddings,
        "query_index": slots.unsqueeze(0).repeat(b, 1),
    }
