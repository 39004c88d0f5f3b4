"""Does a VisTR checkpoint's backbone know the shape classes on unseen videos? (bench/RESULTS.md)

``python bench/vistr_backbone_probe.py CHECKPOINT``: a linear probe. Each object's features are
averaged inside its ground-truth mask per feature map (C3, C4, C5 and the encoder memory);
a multinomial logistic regression (L2 0.1 on standardised features, L-BFGS) learns the 5 shape
classes from 300 clips of 150 videos (seed 5) and is scored on 60 clips of 30 unseen videos
(seed 99). Both pools differ from every training pool (seeds 0-3), so a backbone that memorised
its videos (an object's random colour and texture give its class away there) scores near the
chance 0.2 on both; one that learnt the shapes scores well above it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import build_model  # noqa: E402
from training.data import ClipSampler  # noqa: E402
from training.softmax_criterion import resize_masks  # noqa: E402

MAPS = ("c3", "c4", "c5", "memory")


def pooled_features(model, *, seed: int, clips: int, videos: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mask-averaged features float32[objects, C] per map of ``MAPS``, and labels int64[objects]."""
    spec = model.spec
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=model.cfg.num_frames,
                          pool_size=videos, seed=seed, verbose=False)
    features: dict[str, list[np.ndarray]] = {k: [] for k in MAPS}
    labels = []
    for _ in range(clips):
        clip = sampler.sample()
        with torch.no_grad():
            levels, _, memory = model.vistr(model.normalize(torch.as_tensor(clip.frames[None])), 1)
        masks = torch.as_tensor(clip.masks)  # [N, T, H, W]
        for name, fmap in zip(MAPS, (levels[1], levels[2], levels[3], memory)):  # fmap [T, C, h, w]
            cells = resize_masks(masks, fmap.shape[-2:]).clamp(min=0)  # [N, T, h, w]
            weight = cells.sum((1, 2, 3)).clamp(min=1e-6)
            features[name].append((torch.einsum("nthw,tchw->nc", cells, fmap) / weight[:, None]).numpy())
        labels.append(clip.labels)
    return {k: np.concatenate(v) for k, v in features.items()}, np.concatenate(labels)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   classes: int, l2: float = 0.1) -> tuple[float, float]:
    """(train accuracy, test accuracy) of an L2-regularised softmax regression."""
    a, b = torch.as_tensor(train_x), torch.as_tensor(test_x)
    mean, std = a.mean(0), a.std(0) + 1e-6
    a, b = (a - mean) / std, (b - mean) / std
    y = torch.as_tensor(train_y)
    weight = torch.zeros(a.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_acc = float(((a @ weight + bias).argmax(1) == y).float().mean())
        test_acc = float(((b @ weight + bias).argmax(1) == torch.as_tensor(test_y)).float().mean())
    return train_acc, test_acc


def main(checkpoint: str) -> dict[str, tuple[float, float]]:
    model = build_model("vistr", "tiny", checkpoint).eval()
    classes = len(model.cfg.classes)
    train_x, train_y = pooled_features(model, seed=5, clips=300, videos=150)
    test_x, test_y = pooled_features(model, seed=99, clips=60, videos=30)
    result = {k: probe_accuracy(train_x[k], train_y, test_x[k], test_y, classes) for k in MAPS}
    print(f"{checkpoint}: linear probe on {len(train_y)} / {len(test_y)} objects (chance {1 / classes:.2f})")
    for name, (train_acc, test_acc) in result.items():
        print(f"  {name:7s} train acc {train_acc:.3f}  unseen-video acc {test_acc:.3f}")
    return result


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
