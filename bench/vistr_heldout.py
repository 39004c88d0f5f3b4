"""VisTR detector and mask check on clips of unseen synthetic videos (docs/notes/lab-notebook.md, VisTR).

``python bench/vistr_heldout.py CHECKPOINT [SEED]``: 12 clips from a pool of 12 videos rendered
with SEED (default 99; the training pools use seeds 0-3, so 99 is unseen). Each ground-truth
instance is matched to a slot with the official VisTR matcher on the model's own outputs. Prints:
class accuracy of the matched slots (argmax over the classes, chance 0.2), their probability of
the true class, p(no-object) of matched and unmatched slots, how often the matched slot is the
slot whose instance attention puts the most mass on the object, the mean pairwise IoU of the
slots' binarised masks (1 = every slot paints the same mask), each object's best-slot mask IoU,
the spread of box centres/sizes across slots and the matched boxes' GIoU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import build_model  # noqa: E402
from models.common.box_ops import cxcywh_to_xyxy  # noqa: E402
from training.data import ClipSampler, clips_content_hw  # noqa: E402
from training.losses import paired_giou  # noqa: E402
from training.softmax_criterion import resize_masks  # noqa: E402
from training.vistr_loss import VisTRLossWeights, _match, clip_boxes_cxcywh  # noqa: E402


def main(checkpoint: str, seed: int = 99, clips: int = 12) -> dict[str, float]:
    model = build_model("vistr", "tiny", checkpoint).eval()
    spec, cfg = model.spec, model.cfg
    t, s = cfg.num_frames, cfg.num_ins
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=t, pool_size=clips,
                          seed=seed, verbose=False)
    rows: dict[str, list[float]] = {k: [] for k in ("acc", "p_gt", "agree", "pair_iou", "best_iou",
                                                     "p_no_matched", "p_no_unmatched", "spread", "giou")}
    for _ in range(clips):
        clip = sampler.sample()
        with torch.no_grad():
            content = torch.as_tensor(clips_content_hw([clip]))
            raw = model.forward_raw(model.normalize(torch.as_tensor(clip.frames[None])), 1, content)
        probs = raw["logits"][0].reshape(t, s, -1).softmax(-1)  # [T, S, L]
        boxes = raw["boxes"][0].reshape(t, s, 4)
        labels = torch.as_tensor(clip.labels) + cfg.class_offset
        present = torch.as_tensor(clip.present)
        gt = clip_boxes_cxcywh(clip)
        slot, g = _match(probs, boxes, labels, gt, present, VisTRLossWeights())
        maps = raw["attn"].sum(2)  # [T, S, h, w]
        cells = resize_masks(torch.as_tensor(clip.masks), maps.shape[-2:]) > 0  # [N, T, h, w]
        mass = torch.einsum("tshw,nthw->nst", maps, cells.float()).mean(-1)  # [N, S]
        masks = (raw["mask_logits"][0].sigmoid() > 0.5).flatten(1).float()  # [S, T*h4*w4]
        inter, area = masks @ masks.T, masks.sum(1)
        iou = inter / (area[:, None] + area[None] - inter).clamp(min=1)
        rows["pair_iou"].append(float(iou[~torch.eye(s, dtype=torch.bool)].mean()))
        gt_masks = (resize_masks(torch.as_tensor(clip.masks), raw["mask_logits"].shape[-2:]) > 0).flatten(1).float()
        gi = gt_masks @ masks.T
        rows["best_iou"] += (gi / (gt_masks.sum(1)[:, None] + area[None] - gi).clamp(min=1)).max(1).values.tolist()
        unmatched = torch.ones(s, dtype=torch.bool)
        unmatched[slot] = False
        rows["p_no_matched"].append(float(probs[:, slot, -1].mean()))
        rows["p_no_unmatched"].append(float(probs[:, unmatched, -1].mean()))
        rows["spread"].append(float(boxes.std(1).mean()))
        on = present[g].T  # [T, M]
        rows["giou"].append(float(paired_giou(cxcywh_to_xyxy(boxes[:, slot][on]),
                                              cxcywh_to_xyxy(gt[g].transpose(0, 1)[on])).mean()))
        for sl, gi_ in zip(slot.tolist(), g.tolist()):
            frames = present[gi_]
            rows["agree"].append(float(mass[gi_].argmax() == sl))
            rows["acc"].append(float((probs[frames, sl, :-1].argmax(-1) == labels[gi_]).float().mean()))
            rows["p_gt"].append(float(probs[frames, sl, labels[gi_]].mean()))
    summary = {k: float(np.mean(v)) for k, v in rows.items()}
    print(f"{checkpoint} (seed {seed}): {len(rows['acc'])} objects; class acc {summary['acc']:.3f} "
          f"p(gt) {summary['p_gt']:.3f} (chance 0.2); p(no-object) matched {summary['p_no_matched']:.3f} "
          f"unmatched {summary['p_no_unmatched']:.3f}; matched = attention-best "
          f"{int(sum(rows['agree']))}/{len(rows['agree'])}; slots' pairwise mask IoU {summary['pair_iou']:.3f}; "
          f"best-slot mask IoU {summary['best_iou']:.3f}; box spread across slots {summary['spread']:.3f}; "
          f"matched GIoU {summary['giou']:.3f}")
    return summary


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 99)
