"""VisTR latency: PyTorch eager vs onnxruntime (CPU), one clip per call, random weights.

Usage: ``python bench/vistr_eager_vs_ort.py [--presets tiny r50] [--r50-hw 192 320] [--repeats 5]
[--out bench/results/vistr.md]``

Each preset is built at its input size (the official presets at ``--r50-hw``/``--r101-hw``,
since 36 frames at the official 320x544 take long on a small CPU), exported with the project
exporter (static T, dynamic B), then timed on the same uint8 clip: one warm-up call, then
``--repeats`` timed calls per backend, alternating eager and ORT so both see the same machine
load. Reported: median latency per clip, frames/s (T / latency) and the eager/ORT ratio (> 1:
onnxruntime is faster), plus the max-abs ORT-vs-eager differences of the contract outputs at
that input. Weights do not change the speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.onnx_export import export_onnx  # noqa: E402
from models.base import OUTPUT_NAMES  # noqa: E402
from models.vistr.model import build  # noqa: E402
from runtime.backends.base import engine_feeds  # noqa: E402


def _median_seconds(fns: dict, repeats: int) -> dict[str, float]:
    """(median, min) wall time of each callable; calls alternate so both see the same load."""
    for fn in fns.values():
        fn()  # warm-up (allocations, ORT arena, oneDNN primitive cache)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def bench_preset(
    preset: str, input_hw: tuple[int, int] | None, repeats: int, workdir: Path, threads: int | None
) -> dict:
    """Build, export and time one preset; returns a result row."""
    torch.manual_seed(0)
    model = build(preset, input_hw=input_hw).eval()
    h, w = model.spec.input_hw
    t = model.spec.fixed_frames
    frames = torch.randint(
        0, 256, (1, t, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    start = time.perf_counter()
    path = export_onnx(model, workdir / f"vistr_{preset}.onnx")
    export_s = time.perf_counter() - start
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = engine_feeds([i.name for i in session.get_inputs()], frames.numpy(), None)  # whole input

    def run_eager():
        with torch.inference_mode():
            return model(frames)

    median = _median_seconds(
        {"eager": run_eager, "ort": lambda: session.run(list(OUTPUT_NAMES), feed)}, repeats
    )
    (eager_s, eager_min_s), (ort_s, ort_min_s) = median["eager"], median["ort"]
    ref = run_eager()
    got = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feed)))
    diff = {
        k: float(np.abs(got[k].astype(np.float64) - ref[k].numpy()).max())
        for k in ("scores", "masks", "boxes", "embeddings")
    }
    diff["labels_equal"] = bool(np.array_equal(got["labels"], ref["labels"].numpy()))
    return {
        "preset": preset,
        "T": t,
        "hw": (h, w),
        "eager_s": eager_s,
        "ort_s": ort_s,
        "eager_min_s": eager_min_s,
        "ort_min_s": ort_min_s,
        "export_s": export_s,
        "onnx_mb": path.stat().st_size / 2**20,
        "diff": diff,
    }


def format_table(rows: list[dict], repeats: int, threads: int | None) -> str:
    ort_threads = f"{threads} intra-op threads" if threads else "default threads"
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
        f"(load average {os.getloadavg()[0]:.1f} at the end), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), onnxruntime {ort.__version__} "
        f"(CPUExecutionProvider, {ort_threads}). Batch 1 clip, median of {repeats} alternating "
        "calls per backend after 1 warm-up, random weights.",
        "",
        "| preset | T | input HxW | eager ms/clip (min) | ORT ms/clip (min) | eager frames/s "
        "| ORT frames/s | eager/ORT (of min) | export s | ONNX MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e, o, e_min, o_min = r["eager_s"], r["ort_s"], r["eager_min_s"], r["ort_min_s"]
        lines.append(
            f"| {r['preset']} | {r['T']} | {r['hw'][0]}x{r['hw'][1]} | {e * 1e3:.0f} "
            f"({e_min * 1e3:.0f}) | {o * 1e3:.0f} ({o_min * 1e3:.0f}) | {r['T'] / e:.1f} | "
            f"{r['T'] / o:.1f} | {e / o:.2f} ({e_min / o_min:.2f}) | {r['export_s']:.0f} | "
            f"{r['onnx_mb']:.0f} |"
        )
    lines += ["", "ORT vs eager max-abs at the bench input:", ""]
    for r in rows:
        d = r["diff"]
        lines.append(
            f"- {r['preset']}: scores {d['scores']:.1e}, masks {d['masks']:.1e}, boxes (px) "
            f"{d['boxes']:.1e}, embeddings {d['embeddings']:.1e}, labels equal: {d['labels_equal']}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets", nargs="+", default=["tiny", "r50"], choices=["tiny", "r50", "r101"]
    )
    parser.add_argument("--r50-hw", nargs=2, type=int, default=(192, 320), metavar=("H", "W"))
    parser.add_argument("--r101-hw", nargs=2, type=int, default=(192, 320), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both torch and onnxruntime (default: each library's own)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = {"tiny": None, "r50": tuple(args.r50_hw), "r101": tuple(args.r101_hw)}
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            print(f"[bench] vistr/{preset}…", file=sys.stderr, flush=True)
            rows.append(bench_preset(preset, sizes[preset], args.repeats, Path(tmp), args.threads))
    table = format_table(rows, args.repeats, args.threads)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
