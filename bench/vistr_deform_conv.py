"""VisTR on onnxruntime CPU: the deformable conv as GridSample + MatMul (opset 18, default)
vs the ONNX DeformConv op (opset 19, ``--deform-conv onnx``), same weights, same clip.

Usage: ``python bench/vistr_deform_conv.py [--presets tiny r50] [--r50-hw 192 320]
[--repeats 5] [--threads N]``

Per preset: build with seeded random weights (speed does not depend on them), export both forms
with the project exporter, then time one warm-up and ``--repeats`` calls per form, alternating
so both see the same machine load. Reported: median (min) ms per clip, the same-run ratio
grid_sample/onnx (> 1: DeformConv faster), the share of the deformable conv in each form's ORT
time (ORT profiler: GridSample + the tap MatMuls are not separable from the other MatMuls, so
the GridSample share is reported for that form, the DeformConv share for the other), and the
max-abs difference between the two forms' outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.onnx_export import export_onnx  # noqa: E402
from models.base import OUTPUT_NAMES  # noqa: E402
from models.vistr.deform_conv import ONNX_FORM_OPSET, use_deform_conv  # noqa: E402
from models.vistr.model import build  # noqa: E402

FORMS = {"grid_sample": 18, "onnx": ONNX_FORM_OPSET}  # form -> export opset


def _session(path: Path, threads: int | None, profile: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        options.intra_op_num_threads = threads
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(path.with_suffix(""))
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def op_shares(path: Path, feed: dict, threads: int | None) -> Counter:
    """Fraction of node time per op type over one profiled run (after a warm-up)."""
    session = _session(path, threads, profile=True)
    session.run(None, feed)
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values()) or 1
    return Counter({op: t / total for op, t in per_op.items()})


def bench_preset(preset: str, hw, repeats: int, workdir: Path, threads: int | None) -> dict:
    torch.manual_seed(0)
    model = build(preset, input_hw=hw).eval()
    h, w = model.spec.input_hw
    t = model.spec.fixed_frames
    frames = np.random.default_rng(1).integers(0, 256, (1, t, h, w, 3), dtype=np.uint8)
    feed = {"frames": frames}
    paths = {}
    for form, opset in FORMS.items():
        use_deform_conv(model, form)
        paths[form] = export_onnx(model, workdir / f"vistr_{preset}_{form}.onnx", opset=opset)
    sessions = {form: _session(path, threads) for form, path in paths.items()}
    outputs = {form: dict(zip(OUTPUT_NAMES, s.run(list(OUTPUT_NAMES), feed)))
               for form, s in sessions.items()}
    times = {form: [] for form in FORMS}
    for _ in range(repeats):
        for form, session in sessions.items():
            start = time.perf_counter()
            session.run(list(OUTPUT_NAMES), feed)
            times[form].append(time.perf_counter() - start)
    shares = {form: op_shares(path, feed, threads) for form, path in paths.items()}
    diff = {k: float(np.abs(outputs["grid_sample"][k] - outputs["onnx"][k]).max())
            for k in ("scores", "masks", "boxes", "embeddings")}
    return {"preset": preset, "T": t, "hw": (h, w), "diff": diff,
            "median": {f: statistics.median(v) for f, v in times.items()},
            "min": {f: min(v) for f, v in times.items()},
            "share": {"grid_sample": shares["grid_sample"]["GridSample"],
                      "onnx": shares["onnx"]["DeformConv"]}}


def format_table(rows: list[dict], repeats: int, threads: int | None) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (shared machine), onnxruntime {ort.__version__} "
        f"(CPUExecutionProvider, {threads or 'default'} threads, extended optimisation). Batch 1, "
        f"median (min) of {repeats} alternating calls per form after 1 warm-up; seeded weights.",
        "",
        "| preset | T | input HxW | GridSample form ms | DeformConv form ms | GridSample/DeformConv "
        "(of min) | GridSample share | DeformConv share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g, o = r["median"]["grid_sample"], r["median"]["onnx"]
        gm, om = r["min"]["grid_sample"], r["min"]["onnx"]
        lines.append(f"| {r['preset']} | {r['T']} | {r['hw'][0]}x{r['hw'][1]} | {g * 1e3:.0f} "
                     f"({gm * 1e3:.0f}) | {o * 1e3:.0f} ({om * 1e3:.0f}) | {g / o:.2f} "
                     f"({gm / om:.2f}) | {r['share']['grid_sample']:.0%} | "
                     f"{r['share']['onnx']:.0%} |")
    lines += ["", "Max-abs difference between the two forms' outputs:", ""]
    lines += [f"- {r['preset']}: " + ", ".join(f"{k} {v:.1e}" for k, v in r["diff"].items())
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "r50"],
                        choices=["tiny", "r50", "r101"])
    parser.add_argument("--r50-hw", nargs=2, type=int, default=(192, 320), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="visdeploy_dcn_") as tmp:
        for preset in args.presets:
            hw = tuple(args.r50_hw) if preset != "tiny" else None
            rows.append(bench_preset(preset, hw, args.repeats, Path(tmp), args.threads))
            print(f"[bench] {preset} done", file=sys.stderr, flush=True)
    print(format_table(rows, args.repeats, args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
