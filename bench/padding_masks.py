"""Letterbox padding vs the official computation: IFC and VisTR with and without padding masks.

    python bench/padding_masks.py [--models ifc vistr] [--ifc-frames 5] [--vistr-frames 36]
                                  [--seed 0]

The official inference scripts never pad (frames resized keep-ratio), so the official result for a
4:3 camera is the model run on the 384x512 image. A letterboxed artifact sees that image inside a
384x640 input (content top-left, mean-colour padding). For one synthetic 4:3 clip this compares,
with the same random official-layout weights (IFC r50, VisTR r50), the unpadded run at 384x512
(reference) against the letterboxed run
- without masks (``content_hw`` None: the padding is read as image, the project before issue 19),
- with the official padding masks (``content_hw`` = 384x512).
Figures: class-logit relative error ||padded - reference|| / ||reference|| over all queries;
mask-logit relative error over the real image (the padded run's logits cropped to the content);
VisTR only: mean |error| of the box centre x in pixels (unmasked boxes scaled by the input width,
as before, masked ones by the content width). Seeded; CPU; a few minutes; VisTR at T = 36 attends
over 8640 tokens (several GB, the peak is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.synthetic import generate_video, resolve_preset  # noqa: E402
from models.ifc.config import PRESETS as IFC_PRESETS  # noqa: E402
from models.ifc.model import IFCModel  # noqa: E402
from models.vistr.config import PRESETS as VISTR_PRESETS  # noqa: E402
from models.vistr.model import VisTRSegm, model_spec  # noqa: E402

INPUT_HW = (384, 640)  # the official-preset artifact size
CONTENT_HW = (384, 512)  # a 4:3 camera letterboxed into it


def clip_frames(frames: int, seed: int) -> np.ndarray:
    """uint8 [T, 384, 512, 3]: the first T frames of a synthetic 4:3 video."""
    h, w = CONTENT_HW
    preset = resolve_preset("val", height=h, width=w, frames=frames, videos=1)
    return generate_video(0, preset=preset, seed=seed).frames


def letterbox(frames: np.ndarray, mean: tuple[float, float, float]) -> np.ndarray:
    """[T, h, w, 3] -> [1, T, 384, 640, 3], content top-left, the runtime's mean-colour fill."""
    out = np.empty((1, frames.shape[0], *INPUT_HW, 3), np.uint8)
    out[...] = np.clip(np.round(mean), 0, 255).astype(np.uint8)
    out[0, :, : frames.shape[1], : frames.shape[2]] = frames
    return out


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).norm() / ref.norm())


def ifc_runs(frames: np.ndarray, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Official clip outputs (logits [1, Q, C+1], mask logits cropped to [1, Q, T, 48, 64])."""
    torch.manual_seed(seed)
    padded = IFCModel(dataclasses.replace(IFC_PRESETS["r50"], input_hw=INPUT_HW)).eval()
    unpadded = IFCModel(dataclasses.replace(IFC_PRESETS["r50"], input_hw=CONTENT_HW)).eval()
    unpadded.load_state_dict(padded.state_dict())
    boxed = torch.from_numpy(letterbox(frames, padded.spec.mean))
    content = torch.tensor([CONTENT_HW], dtype=torch.int32)
    h8, w8 = CONTENT_HW[0] // 8, CONTENT_HW[1] // 8
    runs = {
        "reference": unpadded.official_outputs(torch.from_numpy(frames[None])),
        "no masks": padded.official_outputs(boxed),
        "masks": padded.official_outputs(boxed, content),
    }
    return {k: {"logits": v["pred_logits"], "mask_logits": v["pred_masks"][..., :h8, :w8]}
            for k, v in runs.items()}


def vistr_model(input_hw: tuple[int, int], frames: int):
    """VisTR r50 (random init) for ``input_hw``; ``frames`` replaces the preset's T = 36."""
    cfg = dataclasses.replace(VISTR_PRESETS["r50"], input_hw=input_hw, num_frames=frames,
                              window_stride=min(VISTR_PRESETS["r50"].window_stride, frames - 1))
    return VisTRSegm(cfg, model_spec("r50", cfg)).eval()


def vistr_runs(frames: np.ndarray, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Raw outputs (logits [1, Q, L], mask logits cropped to [1, S, T, 96, 128], box centre x in
    pixels [1, Q])."""
    torch.manual_seed(seed)
    padded = vistr_model(INPUT_HW, frames.shape[0])
    unpadded = vistr_model(CONTENT_HW, frames.shape[0])
    unpadded.load_state_dict(padded.state_dict())
    boxed = padded.normalize(torch.from_numpy(letterbox(frames, padded.spec.mean)))
    content = torch.tensor([CONTENT_HW], dtype=torch.int32)
    h4, w4 = CONTENT_HW[0] // 4, CONTENT_HW[1] // 4
    runs = {
        "reference": (unpadded.forward_raw(unpadded.normalize(torch.from_numpy(frames[None])), 1),
                      CONTENT_HW[1]),
        "no masks": (padded.forward_raw(boxed, 1), INPUT_HW[1]),  # boxes relative to the input
        "masks": (padded.forward_raw(boxed, 1, content), CONTENT_HW[1]),
    }
    return {k: {"logits": raw["logits"], "mask_logits": raw["mask_logits"][..., :h4, :w4],
                "box_cx_px": raw["boxes"][..., 0] * width}
            for k, (raw, width) in runs.items()}


def table_rows(name: str, runs: dict[str, dict[str, torch.Tensor]], seconds: float) -> list[str]:
    ref = runs["reference"]
    rows = []
    for mode in ("no masks", "masks"):
        run = runs[mode]
        box = "—"
        if "box_cx_px" in run:
            box = f"{float((run['box_cx_px'] - ref['box_cx_px']).abs().mean()):.1f}"
        rows.append(f"| {name} | {mode} | {rel(run['logits'], ref['logits']):.4f} | "
                    f"{rel(run['mask_logits'], ref['mask_logits']):.4f} | {box} | {seconds:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ifc", "vistr"], choices=["ifc", "vistr"])
    parser.add_argument("--ifc-frames", type=int, default=5, help="IFC window (official 5)")
    parser.add_argument("--vistr-frames", type=int, default=36, help="VisTR clip (official 36)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"# padding masks: 4:3 clip {CONTENT_HW[0]}x{CONTENT_HW[1]} letterboxed into "
          f"{INPUT_HW[0]}x{INPUT_HW[1]} vs the same weights unpadded at {CONTENT_HW[0]}x"
          f"{CONTENT_HW[1]} (random official-layout r50 weights, seed {args.seed})")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model (T) | padded run | class-logit rel. err | mask-logit rel. err (content) | "
          "box cx err px | s |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        frames = args.ifc_frames if name == "ifc" else args.vistr_frames
        start = time.perf_counter()
        with torch.inference_mode():
            runs = (ifc_runs if name == "ifc" else vistr_runs)(clip_frames(frames, args.seed),
                                                              args.seed)
        for row in table_rows(f"{name} r50 (T={frames})", runs, time.perf_counter() - start):
            print(row, flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"# peak resident memory {peak_gb:.1f} GiB")


if __name__ == "__main__":
    main()
