"""Dense pretraining of a VisTR or IFC Frozen-BN ResNet body on the synthetic train set.

The official VisTR and IFC start from an ImageNet-trained ResNet (trained with BatchNorm, then
frozen into ``FrozenBatchNorm2d``; IFC ``configs/base_ytvis.yaml:3``, detectron2's FrozenBN). The
tiny presets have no such backbone, and an un-normalised ResNet trained from scratch under a set
loss did not learn to tell the five shapes apart in an hour of CPU (docs/notes/lab-notebook.md, VisTR).
This does what ImageNet does for the official models, on the data we have:

1. every ``FrozenBatchNorm2d`` of the body becomes a trainable ``BatchNorm2d`` (same statistics);
2. the body plus a small FPN head learn per-pixel classes (background + the preset's classes) at
   stride 8 on frames letterboxed like the runtime's;
3. the BatchNorms are folded back into the family's own ``FrozenBatchNorm2d`` buffers (running
   mean / var, weight, bias: the official key layout, torchvision's under VisTR's
   ``vistr.backbone.0.body``, detectron2's ``*.norm`` under IFC's ``detr.backbone.0.backbone``),
   so the checkpoint loads strictly, and the head is dropped.

Neither body reads ``content_hw``: both official backbones run on the padded batch and build
the padding mask only for the transformer (VisTR ``models/backbone.py:72-79``, IFC
``ifc/ifc.py:33-42``). So the frames go in letterboxed exactly as the runtime feeds them, and the
padding band is labelled background.

``python -m training.backbone_pretrain --model ifc --minutes 10 --out checkpoints/ifc_tiny.pth.backbone``
writes a whole checkpoint (backbone pretrained, everything else at its seeded init) that a
detector stage starts from with ``--init``; ``--model vistr`` is the default.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from models.ifc.backbone import FrozenBatchNorm2d as DetectronFrozenBatchNorm2d
from training.data import ClipSampler
from training.loop import init_history, scheduled_steps, write_checkpoint

BACKGROUND_WEIGHT = 0.2  # the letterbox band and the empty scene dominate the pixels


@dataclass(frozen=True)
class PretrainConfig:
    """What a backbone pretraining run does; stored in the checkpoint's ``meta``."""

    model: str = "vistr"  # a key of ADAPTERS
    preset: str = "tiny"
    iterations: int = 3000
    minutes: float = 10.0
    frames_per_step: int = 16  # one frame from each of this many clips: BatchNorm sees varied scenes
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    pool_size: int = 120
    refresh_every: int = 0  # a new video replaces the pool's oldest after this many frames (0: fixed)
    video_frames: int = 0  # rendered videos' length; 0: the synthetic ``train`` preset's
    seed: int = 0
    init: str = ""  # continue from an earlier checkpoint's backbone (a fresh dense head)


_NORM_STATE = ("weight", "bias", "running_mean", "running_var")


def _swap_norms(module: nn.Module, source: type, make) -> int:
    """Replace every ``source`` module under ``module`` by ``make(num_features, eps)`` carrying the
    same weight, bias and running statistics; returns how many were replaced."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, source):
            swapped = make(child.weight.numel(), child.eps)
            with torch.no_grad():
                for key in _NORM_STATE:
                    getattr(swapped, key).copy_(getattr(child, key))
            setattr(module, name, swapped)
            count += 1
        else:
            count += _swap_norms(child, source, make)
    return count


def unfreeze_batchnorm(module: nn.Module, frozen: type = FrozenBatchNorm2d) -> int:
    """Replace every ``frozen`` norm (torchvision's ``FrozenBatchNorm2d`` unless given) under
    ``module`` by a ``BatchNorm2d`` with the same statistics and affine parameters (trainable);
    returns how many were replaced."""
    return _swap_norms(module, frozen, lambda n, eps: nn.BatchNorm2d(n, eps=eps))


def freeze_batchnorm(module: nn.Module, frozen: type = FrozenBatchNorm2d) -> int:
    """Fold every ``BatchNorm2d`` under ``module`` into a ``frozen(num_features, eps=eps)``
    (torchvision's ``FrozenBatchNorm2d`` unless given; running statistics and affine copied; in
    eval mode both compute the same); returns how many."""
    return _swap_norms(module, nn.BatchNorm2d, lambda n, eps: frozen(n, eps=eps))


@dataclass(frozen=True)
class BackboneAdapter:
    """How pretraining reaches one model family's Frozen-BN ResNet body.

    ``frozen``: the family's FrozenBN class (its official key layout); ``body(model)``: the module
    whose norms are swapped (all its keys are backbone keys); ``levels(features)``: the body's
    output -> [C3, C4, C5] (strides 8, 16, 32); ``channels(model)``: their widths;
    ``images(model, frames)``: uint8 Tensor[N, H, W, 3] RGB -> the body's input Tensor[N, 3, H, W].
    """

    frozen: type
    body: Callable[[nn.Module], nn.Module]
    levels: Callable[[list[torch.Tensor]], list[torch.Tensor]]
    channels: Callable[[nn.Module], tuple[int, int, int]]
    images: Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _normalised(model, frames: torch.Tensor) -> torch.Tensor:
    """uint8 Tensor[N, H, W, 3] RGB -> (x - mean) / std Tensor[N, 3, H, W], as ``model.normalize``
    computes it (which checks a clip's length: VisTR's is fixed, these are single frames)."""
    return (frames.float().permute(0, 3, 1, 2) - model.pixel_mean) / model.pixel_std


def _ifc_images(model, frames: torch.Tensor) -> torch.Tensor:
    """IFC's body input, as ``IFCModel.frame_stage`` builds it (BGR presets flip the channels)."""
    x = _normalised(model, frames)
    return x.flip(1) if model.cfg.input_format == "BGR" else x


ADAPTERS: dict[str, BackboneAdapter] = {
    "vistr": BackboneAdapter(  # Backbone: [C2, C3, C4, C5]
        FrozenBatchNorm2d, lambda m: m.vistr.backbone[0], lambda f: list(f[1:]),
        lambda m: tuple(m.cfg.backbone_channels[1:]), _normalised),
    "ifc": BackboneAdapter(  # MaskedBackbone: (res3, res4, res5)
        DetectronFrozenBatchNorm2d, lambda m: m.detr.backbone[0], list,
        lambda m: tuple(m.cfg.stage_channels[1:]), _ifc_images),
}


def adapter_of(model: str) -> BackboneAdapter:
    """The ``BackboneAdapter`` of ``model``, or a clear error naming the ones that exist."""
    if model not in ADAPTERS:
        raise SystemExit(f"backbone pretraining has no adapter for {model!r}; "
                         f"models: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[model]


class DenseHead(nn.Module):
    """[C3, C4, C5] (strides 8, 16, 32) -> per-pixel class logits Tensor[N, classes, H/8, W/8]
    (FPN-style sum at stride 8, one 3x3 conv); used only during pretraining."""

    def __init__(self, channels: tuple[int, int, int], classes: int, width: int = 64):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.classify = nn.Conv2d(width, classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        c3 = features[0]
        x = sum(F.interpolate(lat(f), size=c3.shape[-2:], mode="bilinear", align_corners=False)
                for lat, f in zip(self.lateral, features))
        return self.classify(self.fuse(x))


def semantic_targets(labels: np.ndarray, masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """labels int64[N] (0-based), masks bool[N, H, W] -> int64[h, w] per-pixel targets at ``size``
    (0 = background, label + 1 elsewhere; sampled at the centre of each stride cell)."""
    h, w = size
    full_h, full_w = masks.shape[-2:]
    rows = ((np.arange(h) + 0.5) * full_h / h).astype(int)
    cols = ((np.arange(w) + 0.5) * full_w / w).astype(int)
    target = np.zeros((h, w), dtype=np.int64)
    for label, mask in zip(labels, masks):
        target[mask[rows][:, cols]] = label + 1
    return target


def _batch(sampler: ClipSampler, count: int) -> tuple[torch.Tensor, list[tuple[np.ndarray, np.ndarray]]]:
    """``count`` letterboxed frames (one per random clip) as uint8 Tensor[count, H, W, 3] and
    their (labels int64[N], masks bool[N, H, W]) per frame."""
    frames, targets = [], []
    for _ in range(count):
        clip = sampler.sample()
        frames.append(clip.frames[0])
        targets.append((clip.labels, clip.masks[:, 0]))
    return torch.as_tensor(np.stack(frames)), targets


def pretrain(cfg: PretrainConfig, out: str | Path, log_every: int = 50) -> list[dict]:
    """Pretrain the ``cfg.model``/``cfg.preset`` backbone, save a whole-model checkpoint at
    ``out``; returns the loss curve (mean loss and pixel accuracy on objects every ``log_every``
    steps)."""
    from models import build_model

    adapter = adapter_of(cfg.model)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, cfg.init or None)
    body = adapter.body(model)
    replaced = unfreeze_batchnorm(body, adapter.frozen)
    head = DenseHead(adapter.channels(model), len(model.cfg.classes) + 1)
    body.train()
    head.train()
    params = [*body.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    weight = torch.ones(len(model.cfg.classes) + 1)
    weight[0] = BACKGROUND_WEIGHT
    spec = model.spec
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=1,
                          pool_size=cfg.pool_size, seed=cfg.seed, refresh_every=cfg.refresh_every,
                          video_frames=cfg.video_frames or None)
    print(f"[pretrain] {cfg.model}: {replaced} FrozenBatchNorm2d -> BatchNorm2d; "
          f"{cfg.frames_per_step} frames a step", file=sys.stderr)
    curve, window, start = [], [], time.perf_counter()
    for step in scheduled_steps(optimizer, cfg, "pretrain"):
        frames, targets = _batch(sampler, cfg.frames_per_step)
        logits = head(adapter.levels(body(adapter.images(model, frames))))
        target = torch.as_tensor(np.stack([semantic_targets(lab, m, logits.shape[-2:]) for lab, m in targets]))
        loss = F.cross_entropy(logits, target, weight=weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        on = target > 0
        accuracy = float((logits.argmax(1)[on] == target[on]).float().mean()) if on.any() else float("nan")
        window.append((float(loss.detach()), accuracy))
        print(f"\r[pretrain] {step + 1}/{cfg.iterations} loss {window[-1][0]:.3f} "
              f"{(time.perf_counter() - start) / 60:5.1f} min", end="", file=sys.stderr)
        if (step + 1) % log_every == 0:
            losses, accs = zip(*window)
            curve.append({"step": step + 1, "minutes": (time.perf_counter() - start) / 60,
                          "loss": float(np.mean(losses)), "object_pixel_accuracy": float(np.nanmean(accs))})
            window = []
    print(file=sys.stderr)
    body.eval()
    freeze_batchnorm(body, adapter.frozen)
    save_pretrained(model, cfg, curve, out)
    return curve


def save_pretrained(model, cfg: PretrainConfig, curve: list[dict], out: str | Path) -> Path:
    """The whole model in ``training.loop.save_checkpoint``'s format (fp16 floats; meta with the
    command and curve, so later stages record it in their ``history``)."""
    default = PretrainConfig()
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in asdict(cfg).items() if v != getattr(default, k)]
    meta = {"config": {"stage": "backbone_pretrain", **asdict(cfg)}, "curve": curve,
            "history": init_history(cfg.init or None),
            "command": " ".join(["python -m training.backbone_pretrain", *flags, "--out", str(out)])}
    return write_checkpoint(model, meta, out)


def main(argv: list[str] | None = None) -> int:
    defaults = PretrainConfig()
    parser = argparse.ArgumentParser(prog="python -m training.backbone_pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for key, value in asdict(defaults).items():
        choices = sorted(ADAPTERS) if key == "model" else None
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value, choices=choices)
    parser.add_argument("--out", required=True, help="checkpoint path, e.g. checkpoints/ifc_tiny.pth.backbone")
    args = parser.parse_args(argv)
    cfg = PretrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    curve = pretrain(cfg, args.out)
    if curve:
        print(curve[-1])
    print(f"checkpoint: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
