"""A small, seeded, CPU-friendly training loop for the ``tiny`` presets, with a progress bar."""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from models import build_model
from training.data import ClipSampler, parse_aspects
from training.ifc_loss import ifc_losses
from training.tevit_loss import tevit_losses
from training.vistr_loss import ASSIGNMENTS, vistr_losses
from training.warm_start import scale_attention_inputs

LOSSES = {"tevit": tevit_losses, "ifc": ifc_losses, "vistr": vistr_losses}


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; stored in the checkpoint's ``meta`` so it can be reproduced."""

    model: str = "tevit"
    preset: str = "tiny"
    iterations: int = 1500
    minutes: float = 30.0  # wall-clock cap; the schedule anneals by whichever comes first
    clips_per_step: int = 2
    clip_frames: int = 5
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    grad_clip: float = 1.0
    # Learning rate x this for every parameter whose name contains "backbone" (official IFC
    # ``train_net.py:92-106`` with ``BACKBONE_MULTIPLIER: 0.1``, ``configs/base_ytvis.yaml:24``):
    # a pretrained backbone moves slower than the heads trained from their init. 1.0: one rate.
    backbone_lr_mult: float = 1.0
    pool_size: int = 120
    # Replace the pool's oldest video by a new one after every this many clips (0: fixed pool);
    # and the rendered videos' length (0: the synthetic ``train`` preset's). A refreshing pool
    # stops a run memorising its videos.
    refresh_every: int = 0
    video_frames: int = 0
    # Aspect ratios of the rendered videos, e.g. "16:9,4:3" (round robin over the pool), each
    # letterboxed into the model input with its own content size: the official models see every
    # image at its own img_shape. "" renders 16:9 only (the val set's shape).
    aspects: str = ""
    seed: int = 0
    init: str | None = None  # start from an earlier checkpoint
    # Comma-separated top-level modules to train (the rest frozen, in eval mode); None trains all.
    # A VisTR mask stage trains ``bbox_attention,mask_head,insmask_head`` on the frozen detector,
    # as DETR trains its segmentation head.
    trainable: str | None = None
    # Comma-separated loss terms to optimise (e.g. ``mask,dice``); None uses every term except the
    # auxiliary ones (``aux_*``, not in the official criteria), which are used only when named.
    terms: str | None = None
    # VisTR mask stage: multiply mask_head.lay1's weights on the attention-map inputs by this at
    # the start (training.warm_start); 1.0 leaves the initial weights as they are.
    attn_input_gain: float = 1.0
    # VisTR only: "hungarian" (the official matcher) or "region" (fixed grid-cell slots, a
    # curriculum for a detector trained from nothing; training.vistr_loss).
    assignment: str = "hungarian"
    save_every: int = 200  # also save ``out`` every this many steps (a stopped run keeps its progress)


def lr_factor(step: int, progress: float, cfg) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine from 1 to 0.05 over ``progress`` in
    [0, 1] (``cfg``: a TrainConfig, or any run config with ``warmup``)."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def progress_of(step: int, elapsed_s: float, cfg) -> float:
    """How far the run is: by iterations, or by the wall-clock cap when that comes first (then the
    schedule still anneals fully, at the cost of bit-exact reproducibility across machines).
    ``cfg``: a TrainConfig, or any run config with ``iterations`` and ``minutes``."""
    return max(step / cfg.iterations, elapsed_s / (cfg.minutes * 60))


def scheduled_steps(optimizer: torch.optim.Optimizer, cfg, tag: str) -> Iterator[int]:
    """Step numbers 0, 1, ... of a run, each after setting every group's learning rate to
    ``cfg.lr * lr_factor`` (times the group's ``lr_scale`` where it has one); stops at ``cfg.iterations`` or at the ``cfg.minutes`` wall-clock cap
    (saying so under ``[tag]``)."""
    start = time.perf_counter()
    for step in range(cfg.iterations):
        progress = progress_of(step, time.perf_counter() - start, cfg)
        if progress >= 1.0:
            print(f"\n[{tag}] {cfg.minutes} min cap reached after {step} steps", file=sys.stderr)
            return
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * lr_factor(step, progress, cfg)
        yield step


def _progress(step: int, total: int, loss: float, start: float) -> None:
    done = (step + 1) / total
    elapsed = time.perf_counter() - start
    eta = elapsed / done - elapsed
    bar = "#" * int(30 * done)
    print(f"\r[train] [{bar:<30}] {step + 1}/{total} loss {loss:7.3f}  {elapsed / 60:5.1f} min, "
          f"eta {eta / 60:5.1f} min", end="", file=sys.stderr)


def train(cfg: TrainConfig, out: str | Path, log_every: int = 50) -> list[dict]:
    """Train ``cfg.model``/``cfg.preset`` and save ``out``; returns the loss curve (every ``log_every``)."""
    loss_of = _loss_function(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, cfg.init).train()
    if cfg.attn_input_gain != 1.0:
        scale_attention_inputs(model, cfg.attn_input_gain)
    params = trainable_parameters(model, cfg.trainable)
    spec = model.spec
    # Models with frame-bound queries (VisTR) train on clips of exactly their T.
    clip_frames = spec.fixed_frames or cfg.clip_frames
    sampler = ClipSampler(input_hw=spec.input_hw, mean=spec.mean, clip_frames=clip_frames,
                          pool_size=cfg.pool_size, seed=cfg.seed, refresh_every=cfg.refresh_every,
                          video_frames=cfg.video_frames or None,
                          aspects=parse_aspects(cfg.aspects))
    optimizer = torch.optim.AdamW(param_groups(model, params, cfg.backbone_lr_mult), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    curve, window, start = [], [], time.perf_counter()
    for step in scheduled_steps(optimizer, cfg, "train"):
        losses = loss_of(model, [sampler.sample() for _ in range(cfg.clips_per_step)])
        losses = selected_terms(losses, cfg.terms)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        total = float(loss.detach())
        window.append({k: float(v.detach()) for k, v in losses.items()} | {"total": total})
        _progress(step, cfg.iterations, total, start)
        if (step + 1) % log_every == 0 or step + 1 == cfg.iterations:
            mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            curve.append({"step": step + 1, "minutes": (time.perf_counter() - start) / 60, **mean})
            window = []
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            save_checkpoint(model, cfg, curve, out)
    print(file=sys.stderr)
    save_checkpoint(model.eval(), cfg, curve, out)
    return curve


def _loss_function(cfg: TrainConfig):
    """The criterion of ``cfg.model`` with ``cfg.assignment`` applied (VisTR only)."""
    if cfg.assignment == "hungarian":
        return LOSSES[cfg.model]
    if cfg.model != "vistr":
        raise SystemExit(f"--assignment {cfg.assignment} applies to VisTR only; {cfg.model} uses its "
                         "official matcher (leave --assignment at hungarian)")
    if cfg.assignment not in ASSIGNMENTS:
        raise SystemExit(f"--assignment {cfg.assignment!r} is unknown; use one of {', '.join(ASSIGNMENTS)}")
    return functools.partial(vistr_losses, assignment=cfg.assignment)


def _csv_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def trainable_parameters(model: torch.nn.Module, trainable: str | None) -> list[torch.nn.Parameter]:
    """Parameters of the named top-level modules (all when ``trainable`` is None); the other
    modules are frozen (``requires_grad`` off) and put in eval mode (no dropout)."""
    if not trainable:
        return list(model.parameters())
    names = _csv_names(trainable)
    children = dict(model.named_children())
    unknown = [n for n in names if n not in children]
    if unknown:
        raise SystemExit(f"--trainable names unknown modules {unknown}; top-level modules of "
                         f"{type(model).__name__}: {', '.join(children)}")
    for name, child in children.items():
        child.requires_grad_(name in names)
        if name not in names:
            child.eval()
    return [p for p in model.parameters() if p.requires_grad]


def param_groups(model: torch.nn.Module, params: list[torch.nn.Parameter],
                 backbone_lr_mult: float) -> list[dict]:
    """``params`` as optimizer groups: those whose name in ``model`` contains ``backbone`` with
    ``lr_scale`` = ``backbone_lr_mult``, the rest with 1 (official IFC ``train_net.py:92-106``);
    one group when the multiplier is 1."""
    if backbone_lr_mult == 1.0:
        return [{"params": params}]
    backbone = {id(p) for name, p in model.named_parameters() if "backbone" in name}
    groups = [{"params": [p for p in params if id(p) not in backbone], "lr_scale": 1.0},
              {"params": [p for p in params if id(p) in backbone], "lr_scale": backbone_lr_mult}]
    return [g for g in groups if g["params"]]


def selected_terms(losses: dict[str, torch.Tensor], terms: str | None) -> dict[str, torch.Tensor]:
    """The loss terms named in ``terms`` (comma-separated); when None, every term but the
    auxiliary ``aux_*`` ones."""
    if not terms:
        return {n: v for n, v in losses.items() if not n.startswith("aux_")}
    names = _csv_names(terms)
    unknown = [n for n in names if n not in losses]
    if unknown:
        raise SystemExit(f"--terms names unknown loss terms {unknown}; terms: {', '.join(losses)}")
    return {n: losses[n] for n in names}


def reproduce_command(cfg: TrainConfig, out: str | Path) -> str:
    """The ``python -m training`` command line that repeats ``cfg`` (every non-default field)."""
    default = TrainConfig()
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in asdict(cfg).items()
             if k not in ("model", "preset") and v != getattr(default, k)]
    return " ".join(["python -m training", cfg.model, "--preset", cfg.preset, *flags, "--out", str(out)])


def init_history(init: str | None) -> list[dict]:
    """Earlier stages of a run that started from ``init``: its meta (command, curve) and history."""
    if not init:
        return []
    meta = torch.load(init, map_location="cpu", weights_only=True).get("meta", {})
    earlier = {k: meta[k] for k in ("command", "config", "curve") if k in meta}
    return [*meta.get("history", []), earlier] if earlier else list(meta.get("history", []))


def save_checkpoint(model, cfg: TrainConfig, curve: list[dict], out: str | Path) -> Path:
    """mmcv-style ``{"state_dict", "meta"}``; meta holds only plain types (weights_only loads it)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": asdict(cfg), "curve": curve, "command": reproduce_command(cfg, out),
            "history": init_history(cfg.init)}
    return write_checkpoint(model, meta, out)


def write_checkpoint(model, meta: dict, out: str | Path) -> Path:
    """Write ``{"state_dict", "meta"}`` to ``out`` (meta: plain types; ``torch`` version added)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Float tensors are stored in fp16 to keep committed checkpoints small; they load into the
    # fp32 model unchanged otherwise (load_state_dict casts).
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta": {**meta, "torch": str(torch.__version__)}}, out)
    return out
