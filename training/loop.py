"""A small, seeded, CPU-friendly training loop for the ``tiny`` presets, with a progress bar."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from models import build_model
from training.data import ClipSampler
from training.tevit_loss import tevit_losses

LOSSES = {"tevit": tevit_losses}


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; stored in the checkpoint's ``meta`` so it can be reproduced."""

    model: str = "tevit"
    preset: str = "tiny"
    iterations: int = 1500
    minutes: float = 30.0  # hard wall-clock cap; the schedule is by iterations
    clips_per_step: int = 2
    clip_frames: int = 5
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    grad_clip: float = 1.0
    pool_size: int = 120
    seed: int = 0
    init: str | None = None  # start from an earlier checkpoint


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(cfg.iterations - cfg.warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _progress(step: int, total: int, loss: float, start: float) -> None:
    done = (step + 1) / total
    elapsed = time.perf_counter() - start
    eta = elapsed / done - elapsed
    bar = "#" * int(30 * done)
    print(f"\r[train] [{bar:<30}] {step + 1}/{total} loss {loss:7.3f}  {elapsed / 60:5.1f} min, "
          f"eta {eta / 60:5.1f} min", end="", file=sys.stderr)


def train(cfg: TrainConfig, out: str | Path, log_every: int = 50) -> list[dict]:
    """Train ``cfg.model``/``cfg.preset`` and save ``out``; returns the loss curve (every ``log_every``)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, cfg.init).train()
    spec = model.spec
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=cfg.clip_frames,
                          pool_size=cfg.pool_size, seed=cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, cfg))
    curve, window, start = [], [], time.perf_counter()
    for step in range(cfg.iterations):
        losses = LOSSES[cfg.model](model, [sampler.sample() for _ in range(cfg.clips_per_step)])
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        window.append({k: float(v) for k, v in losses.items()} | {"total": float(loss)})
        _progress(step, cfg.iterations, float(loss), start)
        if (step + 1) % log_every == 0 or step + 1 == cfg.iterations:
            mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            curve.append({"step": step + 1, "minutes": (time.perf_counter() - start) / 60, **mean})
            window = []
        if time.perf_counter() - start > cfg.minutes * 60:
            print(f"\n[train] stopping at the {cfg.minutes} min cap after {step + 1} steps", file=sys.stderr)
            break
    print(file=sys.stderr)
    save_checkpoint(model.eval(), cfg, curve, out)
    return curve


def save_checkpoint(model, cfg: TrainConfig, curve: list[dict], out: str | Path) -> Path:
    """mmcv-style ``{"state_dict", "meta"}``; meta holds only plain types (weights_only loads it)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": asdict(cfg), "curve": curve, "torch": str(torch.__version__),
            "command": f"python -m training {cfg.model} --preset {cfg.preset} --iterations {cfg.iterations} "
                       f"--seed {cfg.seed} --out {out}"}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, out)
    return out
