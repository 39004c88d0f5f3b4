"""PyTorch eager vs onnxruntime (CPU), same run, same frames: latency per window and frames/s.

    python bench/export_vs_eager.py [--presets tiny msgshift] [--frames 5] [--repeats 5]
                                    [--roi-align grid_sample|onnx]

Both presets run at the input size given (default 384x640, the official YTVIS test size after
padding), batch 1. Each backend gets one warm-up run; the median of ``--repeats`` runs is reported.
``--roi-align`` picks the export form of TeViT's RoIAlign (``grid_sample``: all levels sampled
with GridSample; ``onnx``: the ONNX RoiAlign op per level); eager runs the same module either way.
Prints a markdown table; paste it into docs/notes/lab-notebook.md with the machine description.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.onnx_export import export_onnx, sample_frames  # noqa: E402
from export.parity import ort_session  # noqa: E402
from models.tevit.config import PRESETS  # noqa: E402
from models.tevit.model import TeViT  # noqa: E402
from runtime.backends.base import engine_feeds  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_preset(preset: str, hw: tuple[int, int], frames: int, repeats: int, workdir: Path,
                 roi_align: str = "grid_sample") -> dict:
    cfg = dataclasses.replace(PRESETS[preset], input_hw=hw)
    torch.manual_seed(0)
    model = TeViT(cfg, preset).eval()
    model.use_roi_align(roi_align)
    x = sample_frames(model, 1, frames)
    start = time.perf_counter()
    path = export_onnx(model, workdir / f"{preset}.onnx")
    export_s = time.perf_counter() - start
    session = ort_session(path)
    feed = engine_feeds([i.name for i in session.get_inputs()], x.numpy(), None)  # whole input

    def eager():
        with torch.inference_mode():
            model(x)

    eager_ms = _median_ms(eager, repeats)
    ort_ms = _median_ms(lambda: session.run(None, feed), repeats)
    ref = model(x)["scores"].detach().numpy()
    got = session.run(["scores"], feed)[0]
    return {"preset": preset, "roi_align": roi_align, "eager_ms": eager_ms, "ort_ms": ort_ms, "frames": frames,
            "export_s": export_s, "scores_err": float(np.abs(ref - got).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "msgshift"])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--roi-align", default="grid_sample", choices=("grid_sample", "onnx"))
    args = parser.parse_args()
    import onnxruntime

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            rows.append(bench_preset(preset, (args.height, args.width), args.frames, args.repeats, Path(tmp),
                                     args.roi_align))
    print(f"\nTeViT, B=1, T={args.frames}, {args.height}x{args.width}, CPU, median of {args.repeats}\n")
    print("| preset | RoIAlign form | eager ms/window | ORT ms/window | eager frames/s | ORT frames/s | ORT / eager speed | export s | scores max abs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["frames"]
        print(f"| {r['preset']} | {r['roi_align']} | {r['eager_ms']:.0f} | {r['ort_ms']:.0f} | {1000 * t / r['eager_ms']:.2f} | "
              f"{1000 * t / r['ort_ms']:.2f} | {r['eager_ms'] / r['ort_ms']:.2f}x | {r['export_s']:.0f} | {r['scores_err']:.1e} |")


if __name__ == "__main__":
    main()
