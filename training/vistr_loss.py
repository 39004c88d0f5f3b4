"""VisTR's training criterion (official ``models/matcher.py`` and ``SetCriterion``, DETR weights).

Queries are frame-bound (query t·S + s is slot s in frame t), so matching is per instance slot
over the whole clip: cost(s, n) = mean over the frames where GT n is present of
(-p(label_n) + 5 · L1 + 2 · (-GIoU)) on (cx, cy, w, h) boxes normalised by the real image, the
clip's ``content_hw`` (official ``datasets/transforms.py:507-511`` divides by the image size
before padding; the model masks the padding from the same size). Losses: cross-entropy
per frame-query with no-object weight 0.1 (a matched slot is no-object on frames where its
instance is absent), box L1 5 and GIoU 2 on present frames, mask focal 1 and dice 1 per
(slot, frame) at stride 4. The official aux losses of the intermediate decoder layers are not used.

``aux_attn`` is not an official term and is optimised only when ``--terms`` names it: the
negative log of the attention mass (summed over heads) a matched slot's instance attention map
puts on its object's cells at stride 32, meant to give ``bbox_attention`` the instance-specific
signal a COCO-pretrained detector gives the official model. Measured so far (docs/notes/lab-notebook.md,
VisTR): it moves the maps towards the objects but has not yet made the slots' masks differ.

``assignment="region"`` is not official either: a training curriculum for a detector that starts
from nothing. Each instance slot owns one cell of a fixed grid over the image (rows x cols =
slots) and GT instances go to slots by a minimum-distance assignment between their mean centre
and the cell centres, so a slot's target no longer changes from step to step with its own
predictions (the matching instability that makes DETR-style training slow). Only the assignment
differs; the loss terms and weights are the official ones, and a later ``hungarian`` stage
finishes with the official matcher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from models.common.box_ops import cxcywh_to_xyxy
from training.data import Clip, clips_content_hw
from training.losses import dice_loss, paired_giou, pairwise_giou
from training.softmax_criterion import mask_focal, no_object_ce, resize_masks


@dataclass(frozen=True)
class VisTRLossWeights:
    cls: float = 1.0
    l1: float = 5.0
    giou: float = 2.0
    mask: float = 1.0
    dice: float = 1.0
    aux_attn: float = 1.0


def _match(probs: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, gt_boxes: torch.Tensor,
           present: torch.Tensor, w: VisTRLossWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """probs Tensor[T, S, L], boxes Tensor[T, S, 4] cxcywh, labels int64[N] (logit columns),
    gt_boxes Tensor[N, T, 4] cxcywh, present bool[N, T] -> (slot int64[M], gt int64[M])."""
    t, s = probs.shape[:2]
    cost = torch.zeros(s, len(labels))
    for f in range(t):
        on = present[:, f].float()[None]  # [1, N]
        cls = -probs[f][:, labels]
        l1 = torch.cdist(boxes[f], gt_boxes[:, f], p=1)
        giou = -pairwise_giou(cxcywh_to_xyxy(boxes[f]), cxcywh_to_xyxy(gt_boxes[:, f]))
        cost += (w.cls * cls + w.l1 * l1 + w.giou * giou) * on
    cost = cost / present.sum(1).clamp(min=1)[None]
    rows, cols = linear_sum_assignment(np.nan_to_num(cost.numpy(), nan=1e6, posinf=1e6))
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


ASSIGNMENTS = ("hungarian", "region")


def clip_boxes_cxcywh(clip: Clip) -> torch.Tensor:
    """The clip's xyxy pixel boxes float32[N, T, 4] as (cx, cy, w, h) Tensor[N, T, 4] normalised
    by the real image (``content_hw``; the whole frame when the clip has none), as the official
    ``Normalize`` transform (``datasets/transforms.py:507-511``) before the batch is padded."""
    h, w = clip.content_hw or clip.frames.shape[1:3]
    xyxy = torch.as_tensor(clip.boxes).float() / torch.tensor([w, h, w, h], dtype=torch.float32)
    return torch.cat(((xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]), -1)


def slot_cell_centres(num_slots: int) -> torch.Tensor:
    """Centres Tensor[S, 2] (cx, cy in [0, 1]) of a rows x cols grid with rows x cols = S and rows
    the largest divisor of S not above sqrt(S) (10 slots: 2 x 5), row-major."""
    rows = max(r for r in range(1, int(num_slots ** 0.5) + 1) if num_slots % r == 0)
    cols = num_slots // rows
    cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) / rows, (torch.arange(cols) + 0.5) / cols, indexing="ij")
    return torch.stack((cx.flatten(), cy.flatten()), -1)


def _region_match(gt_boxes: torch.Tensor, present: torch.Tensor, num_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """gt_boxes Tensor[N, T, 4] cxcywh, present bool[N, T] -> (slot int64[M], gt int64[M]): each
    instance's mean centre over its present frames assigned to the grid cells at least total
    distance (M = min(N, S))."""
    on = present.float()[..., None]
    centres = (gt_boxes[..., :2] * on).sum(1) / on.sum(1).clamp(min=1)  # [N, 2]
    cost = torch.cdist(slot_cell_centres(num_slots), centres)  # [S, N]
    rows, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def _clip_terms(raw: dict, i: int, clip: Clip, model, w: VisTRLossWeights,
                assignment: str = "hungarian") -> dict[str, torch.Tensor]:
    """Un-normalised loss sums of clip ``i`` (the class term is already a mean)."""
    cfg = model.cfg
    t, s = cfg.num_frames, cfg.num_ins
    logits = raw["logits"][i].reshape(t, s, -1)
    boxes = raw["boxes"][i].reshape(t, s, 4)
    mask_logits = raw["mask_logits"][i]  # [S, T, h4, w4]
    no_object = logits.shape[-1] - 1
    labels = torch.as_tensor(clip.labels) + cfg.class_offset
    present = torch.as_tensor(clip.present)
    gt_boxes = clip_boxes_cxcywh(clip)
    with torch.no_grad():
        if not len(labels):
            slot, g = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        elif assignment == "region":
            slot, g = _region_match(gt_boxes, present, s)
        else:
            slot, g = _match(logits.softmax(-1), boxes, labels, gt_boxes, present, w)
    target = torch.full((t, s), no_object, dtype=torch.long)
    target[:, slot] = torch.where(present[g].T, labels[g][None], no_object)
    terms = {"cls": w.cls * no_object_ce(logits, target)}
    on = present[g].T  # [T, M]
    pb, gb = boxes[:, slot][on], gt_boxes[g].transpose(0, 1)[on]  # [F, 4] present frame-instances
    terms["l1"] = w.l1 * (pb - gb).abs().sum()
    terms["giou"] = w.giou * (1 - paired_giou(cxcywh_to_xyxy(pb), cxcywh_to_xyxy(gb))).sum()
    hm, wm = mask_logits.shape[-2:]
    gt_masks = resize_masks(torch.as_tensor(clip.masks), (hm, wm))[g].reshape(len(g) * t, -1)
    pred = mask_logits[slot].reshape(len(slot) * t, -1)
    terms["mask"] = w.mask * mask_focal(pred, gt_masks)
    terms["dice"] = w.dice * dice_loss(pred, gt_masks)
    terms["aux_attn"] = w.aux_attn * attention_mass_loss(raw["attn"], i, slot, g, clip, present)
    return terms


def attention_mass_loss(attn: torch.Tensor, clip_index: int, slot: torch.Tensor, g: torch.Tensor,
                        clip: Clip, present: torch.Tensor) -> torch.Tensor:
    """Sum over matched present (slot, frame) pairs of -log(attention mass on the object's cells).

    attn Tensor[B*T, S, heads, h, w] (softmax over heads x h x w), slot/g int64[M] matched pairs,
    present bool[N, T]. A cell counts as the object's when any of its pixels is.
    """
    t = present.shape[1]
    maps = attn[clip_index * t:(clip_index + 1) * t].sum(2)  # [T, S, h, w], each map sums to 1
    cells = resize_masks(torch.as_tensor(clip.masks), maps.shape[-2:])[g] > 0  # [M, T, h, w]
    mass = (maps[:, slot].transpose(0, 1) * cells).flatten(2).sum(-1)  # [M, T]
    on = present[g]
    return -(mass[on].clamp(min=1e-6).log()).sum()


def vistr_losses(model, clips: list[Clip], weights: VisTRLossWeights = VisTRLossWeights(),
                 assignment: str = "hungarian") -> dict[str, torch.Tensor]:
    """Class loss averaged over clips; box and mask sums normalised by the number of
    (instance, frame) pairs, as DETR's ``num_boxes`` over a clip's frame-level targets.
    ``assignment``: ``hungarian`` (the official matcher) or ``region`` (see the module notes)."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown VisTR assignment {assignment!r}; use one of {', '.join(ASSIGNMENTS)}")
    frames = torch.as_tensor(np.stack([c.frames for c in clips]))
    content_hw = torch.as_tensor(clips_content_hw(clips))
    raw = model.forward_raw(model.normalize(frames), len(clips), content_hw)
    per_clip = [_clip_terms(raw, i, clip, model, weights, assignment) for i, clip in enumerate(clips)]
    pairs = max(sum(int(c.present.sum()) for c in clips), 1)
    masks = max(sum(len(c.labels) for c in clips) * model.cfg.num_frames, 1)
    norm = {"cls": len(clips), "l1": pairs, "giou": pairs, "mask": masks, "dice": masks, "aux_attn": pairs}
    return {name: sum(p[name] for p in per_clip) / norm[name] for name in per_clip[0]}
