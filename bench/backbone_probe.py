"""Does a VisTR or IFC checkpoint's backbone know the shape classes on unseen videos? (docs/notes/lab-notebook.md)

``python bench/backbone_probe.py --model {vistr,ifc} CHECKPOINT``: a linear probe. Each object's
features are averaged inside its ground-truth mask per feature map (C3, C4, C5 and the encoder
memory: VisTR's ``vistr.transformer`` output, IFC's encoded frame tokens); a multinomial logistic
regression (L2 0.1 on standardised features, L-BFGS) learns the 5 shape classes from 300 clips of
150 videos (seed 5) and is scored on 60 clips of 30 unseen videos (seed 99). Both pools differ
from every training pool (seeds 0-3, and the refreshing pools' later videos are new indices of
those seeds), so a backbone that memorised its videos (an object's random colour and texture give
its class away there) scores near the chance 0.2 on both; one that learnt the shapes scores well
above it.

Clips are letterboxed like the runtime's and fed with their ``content_hw``, so the encoder masks
the padding as the official models do (the backbone maps are content-free either way). Clip
length: VisTR's fixed T, IFC's streaming window T (5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import build_model  # noqa: E402
from training.data import ClipSampler  # noqa: E402
from training.softmax_criterion import resize_masks  # noqa: E402

MAPS = ("c3", "c4", "c5", "memory")
MODELS = ("ifc", "vistr")


def _vistr_maps(model, frames: torch.Tensor, content_hw: torch.Tensor) -> list[torch.Tensor]:
    """uint8 frames Tensor[1, T, H, W, 3], content_hw Tensor[1, 2] -> [C3, C4, C5, memory], each
    Tensor[T, C, h, w]."""
    content = model.content_hw(frames, content_hw)
    levels, _, memory = model.vistr(model.normalize(frames), 1, content)
    return [levels[1], levels[2], levels[3], memory]


def _ifc_maps(model, frames: torch.Tensor, content_hw: torch.Tensor) -> list[torch.Tensor]:
    """As ``_vistr_maps`` for IFC: res3, res4, res5 and the encoded frame tokens, read by forward
    hooks on ``detr.backbone`` and ``detr.transformer`` during ``official_outputs``."""
    seen: dict[str, object] = {}
    hooks = [model.detr.backbone.register_forward_hook(lambda m, i, o: seen.update(levels=o)),
             model.detr.transformer.register_forward_hook(lambda m, i, o: seen.update(memory=o[1]))]
    try:
        model.official_outputs(frames, content_hw)
    finally:
        for hook in hooks:
            hook.remove()
    res3, res4, res5 = seen["levels"]
    t, c, h, w = res5.shape[0], seen["memory"].shape[-1], *res5.shape[-2:]
    memory = seen["memory"].transpose(1, 2).reshape(t, c, h, w)  # [T, h·w, C] -> [T, C, h, w]
    return [res3, res4, res5, memory]


FEATURE_MAPS = {"vistr": _vistr_maps, "ifc": _ifc_maps}


def clip_length(model) -> int:
    """Frames per probe clip: VisTR's fixed T, otherwise the streaming window's T."""
    return model.spec.fixed_frames or model.spec.window[0]


def pooled_features(model, *, seed: int, clips: int, videos: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mask-averaged features float32[objects, C] per map of ``MAPS``, and labels int64[objects]."""
    spec = model.spec
    maps_of = FEATURE_MAPS[spec.name]
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=clip_length(model),
                          pool_size=videos, seed=seed, verbose=False)
    features: dict[str, list[np.ndarray]] = {k: [] for k in MAPS}
    labels = []
    for _ in range(clips):
        clip = sampler.sample()
        content_hw = torch.tensor([clip.content_hw or spec.input_hw], dtype=torch.int32)
        with torch.no_grad():
            fmaps = maps_of(model, torch.as_tensor(clip.frames[None]), content_hw)
        masks = torch.as_tensor(clip.masks)  # [N, T, H, W]
        for name, fmap in zip(MAPS, fmaps):  # fmap [T, C, h, w]
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


def probe(name: str, checkpoint: str) -> dict[str, tuple[float, float]]:
    """(train-pool accuracy, unseen-video accuracy) per map of ``MAPS``; prints the table."""
    start = time.perf_counter()
    model = build_model(name, "tiny", checkpoint).eval()
    classes = len(model.cfg.classes)
    train_x, train_y = pooled_features(model, seed=5, clips=300, videos=150)
    test_x, test_y = pooled_features(model, seed=99, clips=60, videos=30)
    result = {k: probe_accuracy(train_x[k], train_y, test_x[k], test_y, classes) for k in MAPS}
    print(f"{name} {checkpoint}: linear probe on {len(train_y)} / {len(test_y)} objects "
          f"(chance {1 / classes:.2f}; {time.perf_counter() - start:.0f} s)")
    for key, (train_acc, test_acc) in result.items():
        print(f"  {key:7s} train acc {train_acc:.3f}  unseen-video acc {test_acc:.3f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a tiny-preset checkpoint, e.g. checkpoints/ifc_tiny.pth")
    parser.add_argument("--model", choices=MODELS, default="vistr")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint {args.checkpoint!r} does not exist; the committed ones are in "
                     "checkpoints/ (train one with `make train MODEL=...`)")
    probe(args.model, args.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
