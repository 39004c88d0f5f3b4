"""PyTorch eager FP32 vs onnxruntime FP32 / FP16 / INT8 (CPU), same run, same windows.

    python bench/precision.py [--presets tiny msgshift] [--frames 5] [--height 384 --width 640]
        [--repeats 3] [--windows 8] [--eval-windows 2] [--data synthetic:val:4]
        [--ap-data DIR] [--workdir DIR] [--out bench/results/precision.md]

Per preset (both TeViT; ``tiny`` is rebuilt at the requested size): export ONNX, convert with
``calibration`` (FP16 AutoCast, INT8 ModelOpt max + per-block fallback, parity budget unless
``--ap-data``), then time one window (B=1) per backend in interleaved rounds and report the
median ms per window, frames/s, speed ratios, parity vs onnxruntime FP32 on the timed windows,
and where onnxruntime spends its time (op-type profile). onnxruntime runs through the runtime's
own backend (``ORT_ENABLE_EXTENDED``). Writes a markdown report to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.calibrate import CalibrationOptions, calibrate_artifacts  # noqa: E402
from calibration.data import Windows, collect_windows  # noqa: E402
from calibration.parity import ParityBudget, compare_outputs  # noqa: E402
from export.manifest import artifact_entry, build_manifest  # noqa: E402
from export.onnx_export import export_onnx  # noqa: E402
from export.parity import check_parity  # noqa: E402
from models.tevit.config import PRESETS  # noqa: E402
from models.tevit.model import TeViT  # noqa: E402
from runtime.backends import OnnxRuntimeBackend  # noqa: E402
from runtime.manifest import load_manifest, write_manifest  # noqa: E402

ORT_PRECISIONS = ("fp32", "fp16", "int8")


def seeded_model(preset: str, hw: tuple[int, int], roi_align: str) -> TeViT:
    """Seeded TeViT ``preset`` at ``hw`` with its RoIAlign written in the ``roi_align`` form."""
    cfg = dataclasses.replace(PRESETS[preset], input_hw=hw)
    torch.manual_seed(0)
    model = TeViT(cfg, preset).eval()
    model.use_roi_align(roi_align)
    return model


def export_preset(preset: str, hw: tuple[int, int], frames: int, directory: Path,
                  roi_align: str = "grid_sample") -> TeViT:
    """Seeded TeViT ``preset`` at ``hw`` -> ``directory``/model.onnx + manifest.json."""
    model = seeded_model(preset, hw, roi_align)
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = export_onnx(model, directory / "model.onnx")
    parity = check_parity(model, path, cases=((1, 2),))
    entry = artifact_entry(directory, path.name, kind="onnx", precision="fp32", opset=18)
    write_manifest(directory, build_manifest(model, directory, [entry], checkpoint=None,
                                             parity=parity.as_manifest()))
    print(f"[{preset}] exported in {time.perf_counter() - start:.0f} s", flush=True)
    return model


def timed_rounds(runners: dict, windows: Windows, repeats: int) -> dict[str, list[float]]:
    """ms per window for each runner, interleaved (one window per runner per round); each runner
    takes a one-window ``Windows``."""
    for run in runners.values():
        run(windows[0])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(repeats):
        window = windows[r % len(windows)]
        for name, run in runners.items():
            start = time.perf_counter()
            run(window)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


QUANTIZABLE_KERNELS = ("Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm", "FusedGemm",
                       "ConvTranspose", "MatMulIntegerToFloat", "QLinearConv", "QLinearMatMul",
                       "DynamicQuantizeMatMul")


def op_profile(path: Path, window: Windows) -> dict[str, float]:
    """Percent of onnxruntime kernel time per op type, one run after a warm-up."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.enable_profiling, options.profile_file_prefix = True, f"{tmp}/prof"
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, next(window.feeds([i.name for i in session.get_inputs()])))
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op = Counter()
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            per_op[ev["args"]["op_name"]] += ev["dur"]
    total = sum(per_op.values()) or 1
    return {op: 100.0 * us / total for op, us in per_op.most_common()}


def prepare_preset(preset: str, args, directory: Path) -> tuple[TeViT, dict]:
    """Export and convert (or, with --reuse, rebuild the seeded model and read the report)."""
    report = directory / "calibration_report.json"
    if args.reuse and report.is_file() and set(json.loads(report.read_text())) >= {"fp16", "int8"}:
        return (seeded_model(preset, (args.height, args.width), args.roi_align),
                json.loads(report.read_text()))
    model = export_preset(preset, (args.height, args.width), args.frames, directory,
                          args.roi_align)
    sections = {}
    for precision in ("fp16", "int8"):
        options = CalibrationOptions(
            windows=args.windows, eval_windows=args.eval_windows, reference_windows=1,
            reference_frames=1, window_length=args.frames, block_depth=args.block_depth,
            ap_data=args.ap_data, engine=args.engine, method=args.method,
            parity=ParityBudget(), threads=args.threads)
        start = time.perf_counter()
        sections[precision] = calibrate_artifacts(directory, precision=precision, data=args.data,
                                                  options=options)
        print(f"[{preset}] {precision} in {time.perf_counter() - start:.0f} s", flush=True)
    return model, sections


def bench_preset(preset: str, args, workdir: Path) -> dict:
    directory = workdir / preset
    model, sections = prepare_preset(preset, args, directory)
    manifest = load_manifest(directory)
    windows = collect_windows(args.timing_data, manifest, max_windows=max(2, args.repeats),
                              length=args.frames, progress=False).windows
    backends = {p: OnnxRuntimeBackend(manifest, device="cpu", precision=p, threads=args.threads)
                for p in ORT_PRECISIONS}
    for backend in backends.values():
        backend.activate()

    def eager(window: Windows):
        with torch.inference_mode():
            return model(torch.from_numpy(window.frames), torch.from_numpy(window.content_hw))

    runners = {"torch_fp32": eager} | {f"ort_{p}": (lambda w, b=b: b.infer(w.frames, w.content_hw))
                                       for p, b in backends.items()}
    times = timed_rounds(runners, windows, args.repeats)
    outputs = {p: [b.infer(w.frames, w.content_hw) for w in windows] for p, b in backends.items()}
    eager_out = [{k: v.numpy() for k, v in eager(w).items()} for w in windows]
    parity = {p: compare_outputs(outputs["fp32"], outputs[p]).as_dict() for p in ("fp16", "int8")}
    parity["torch_vs_ort_fp32"] = compare_outputs(eager_out, outputs["fp32"]).as_dict()
    profiles = {p: op_profile(directory / backends[p].manifest.artifact("onnx", p)["file"],
                              windows[0]) for p in ORT_PRECISIONS}
    for backend in backends.values():
        backend.deactivate()
    return {"preset": preset, "frames": args.frames, "ms": {k: statistics.median(v)
                                                            for k, v in times.items()},
            "all_ms": times, "parity": parity, "profiles": profiles,
            "calibration": {p: {k: s.get(k) for k in ("final", "fallback", "sensitivity",
                                                      "seconds", "engine", "method",
                                                      "kept_fp32_groups", "conversion",
                                                      "outside_keep_list")}
                            for p, s in sections.items()}}


# -- markdown report -----------------------------------------------------------------------------
def _latency_table(rows: list[dict]) -> list[str]:
    lines = ["| preset | backend | ms / window | frames/s | speed vs ORT fp32 | speed vs eager |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ms, t = r["ms"], r["frames"]
        for name, value in ms.items():
            lines.append(f"| {r['preset']} | {name} | {value:.0f} | {1000 * t / value:.2f} | "
                         f"{ms['ort_fp32'] / value:.2f}x | {ms['torch_fp32'] / value:.2f}x |")
    return lines


def _parity_table(rows: list[dict]) -> list[str]:
    lines = ["| preset | compared | scores max abs | top-K match | mask MAE | mask IoU | "
             "box max abs (px) | embedding min cos |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, s in r["parity"].items():
            label = name if name.startswith("torch") else f"ORT {name} vs ORT fp32"
            lines.append(f"| {r['preset']} | {label} | {s['scores_max_abs']:.2e} | "
                         f"{s['topk_match']:.2f} | {s['mask_mae']:.2e} | {s['mask_iou']:.3f} | "
                         f"{s['box_max_abs']:.3f} | {s['embedding_min_cos']:.4f} |")
    return lines


def _outside_lines(int8: dict) -> list[str]:
    """What the quantizer put Q/DQ on beyond the keep-list candidates, and what that measured."""
    outside = int8.get("outside_keep_list")
    if not outside:
        return []
    first = int8["fallback"]["steps"][0]["value"] if int8.get("fallback") else float("nan")
    return [f"The quantizer also put Q/DQ in front of {outside['nodes']} (residual Adds etc.); "
            f"with them the budget value was {outside['measured_with_them']['value']:.3f}, "
            f"keeping them out (keep-list) {first:.3f} before any fallback.", ""]


def _fp16_decision_lines() -> list[str]:
    """The FP16 keep-list groups with the measurement recorded beside the model."""
    from calibration.keeplist import default_path

    data = json.loads(default_path("tevit").read_text())
    lines = [f"Measured on: {data['fp16']['measured_on']}", "",
             "| group kept FP32 alone | decision | budget value | box max abs (px) | "
             "scores max abs |", "|---|---|---|---|---|"]
    for g in data["fp16"]["groups"]:
        m = g.get("measured", {})
        lines.append(f"| {g['name']} | {'FP32' if g['keep_fp32'] else 'FP16'} | "
                     f"{m.get('loss', float('nan')):.3g} | {m.get('box_max_abs', float('nan')):.3g} | "
                     f"{m.get('scores_max_abs', float('nan')):.2g} |")
    return lines


def _calibration_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        int8, fp16 = r["calibration"]["int8"], r["calibration"]["fp16"]
        lines += [f"### {r['preset']}", "",
                  f"FP16 (AutoCast, {fp16['seconds']} s): kept FP32 by the keep-list "
                  f"{fp16['kept_fp32_groups']}; {fp16['conversion']['fp16_nodes']} of "
                  f"{fp16['conversion']['nodes']} nodes FP16; held-out budget value "
                  f"{fp16['final']['value']:.3f} (<= 1 holds).", "",
                  f"INT8 ({int8['engine']} {int8['method']}, {int8['seconds']} s): blocks "
                  f"returned to FP32 by the fallback: {int8['fallback']['excluded_blocks'] or 'none'}; "
                  f"final budget value {int8['final']['value']:.3f}.", "",
                  *_outside_lines(int8),
                  "| block (only this block INT8) | quantized nodes | budget value | scores max abs "
                  "| mask MAE | box max abs |", "|---|---|---|---|---|---|"]
        for row in int8["sensitivity"] or []:
            lines.append(f"| {row['block']} | {row['quantized_nodes']} | {row['value']:.3f} | "
                         f"{row.get('scores_max_abs', float('nan')):.2e} | "
                         f"{row.get('mask_mae', float('nan')):.2e} | "
                         f"{row.get('box_max_abs', float('nan')):.3f} |")
        lines.append("")
    return lines


NOTES = [
    "## Reading these numbers", "",
    "- FP16 is no faster on this CPU (above): onnxruntime runs FP16 nodes that lack an FP16 CPU "
    "kernel through inserted Casts. The FP16 rows are accuracy evidence for TensorRT, not CPU "
    "speed.",
    "- The INT8 graphs carry TensorRT-style Q/DQ (inputs of Conv/MatMul/Gemm only, weights as "
    "W -> Q -> DQ). onnxruntime CPU turns DQ -> MatMul into MatMulIntegerToFloat but runs Conv in "
    "FP32 on dequantized weights (QLinearConv needs a Q on the output), so INT8 gains little on "
    "CPU; the speed target is for TensorRT. RoIAlign (GridSample or the RoiAlign op, see the "
    "kernel profile above) is not quantized.",
    "- Seeded random weights: the parity budget (scores 0.02, mask MAE 0.02, boxes 4 px) decides "
    "the fallback. For msgshift it returned the backbone and the box head to FP32, so that INT8 "
    "graph is mostly FP32; with trained weights and the AP budget (`--ap-data`) the outcome may "
    "differ.", ""]


def _command(args: dict) -> str:
    shown = ("presets", "frames", "repeats", "windows", "eval_windows", "data", "engine", "method",
             "roi_align")
    flags = [f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in args.items() if k in shown and v]
    return "python bench/precision.py " + " ".join(flags)


def _goal_line(r: dict) -> str:
    """Speed-up vs the 1.5x goal, plus the bound INT8 can reach when only linear kernels speed up."""
    speed = r["ms"]["ort_fp32"] / r["ms"]["ort_int8"]
    fp32 = r["profiles"]["fp32"]
    linear = sum(pct for op, pct in fp32.items() if op in QUANTIZABLE_KERNELS)
    top = lambda prof: ", ".join(f"{op} {pct:.0f}%" for op, pct in list(prof.items())[:4])  # noqa: E731
    return (f"- {r['preset']}: INT8 runs at {speed:.2f}x onnxruntime FP32 (goal >= 1.5x: "
            f"{'met' if speed >= 1.5 else 'NOT met'}). Conv/MatMul/Gemm kernels are {linear:.0f}% "
            f"of FP32 kernel time, so even free INT8 linear layers give at most "
            f"{100 / max(100 - linear, 1e-9):.2f}x. Top kernels FP32: {top(fp32)}; FP16: "
            f"{top(r['profiles']['fp16'])}; INT8: {top(r['profiles']['int8'])}.")


def _load_sentence(machine: dict) -> str:
    """What the load averages say about other work on the machine (the run's own threads raise
    the 'after' figure, so only the 'before' one tells whether the CPU was shared)."""
    before, after, cpus = machine["load_before"][0], machine["load_after"][0], machine["logical_cpus"]
    loads = f"1-min load average {before:.1f} before, {after:.1f} after, on {cpus} CPUs"
    if before >= 0.5:
        return (f"**The CPU was busy with other work when the run started** ({loads}): absolute "
                "times are inflated and noisy; the ratios of the same round are the meaningful part.")
    return f"The machine was idle when the run started ({loads}; the run's own threads make the latter)."


def write_report(path: Path, rows: list[dict], machine: dict, args: dict) -> str:
    """Markdown with latency, parity, profiles and calibration tables; written to ``path``."""
    goal = [_goal_line(r) for r in rows]
    lines = [
        "# Precision benchmark: PyTorch eager vs onnxruntime FP32 / FP16 / INT8 (CPU)", "",
        f"Generated by `{_command(args)}`. "
        f"TeViT, B=1, T={args['frames']}, {args['height']}x{args['width']}, seeded random "
        "weights (no trained checkpoint at this size: the budget is the parity budget), median "
        f"of {args['repeats']} interleaved rounds after a warm-up.", "",
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch "
        f"{machine['torch']} ({machine['torch_threads']} threads), onnxruntime "
        f"{machine['onnxruntime']} (CPU EP, ORT_ENABLE_EXTENDED). {_load_sentence(machine)}", "",
        "## Latency", "", *_latency_table(rows), "", "## Speed goal and where the time goes", "",
        *goal, "", "## Accuracy on the timed windows (vs onnxruntime FP32)", "",
        *_parity_table(rows), "", "## Calibration (held-out windows, parity budget)", "",
        *_calibration_lines(rows), "## FP16 keep-list decisions (models/tevit/precision.json)", "",
        *_fp16_decision_lines(), "", *NOTES]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["tiny", "msgshift"])
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--windows", type=int, default=8, help="calibration windows")
    p.add_argument("--eval-windows", type=int, default=2, help="held-out windows for the budget")
    p.add_argument("--block-depth", type=int, default=2, help="sensitivity block depth")
    p.add_argument("--data", default="synthetic:val:4", help="calibration SOURCE")
    p.add_argument("--timing-data", default="synthetic:val:2", help="windows that are timed")
    p.add_argument("--ap-data", default=None, help="dataset folder: AP budget instead of parity")
    p.add_argument("--engine", default="auto", help="INT8 engine: auto, modelopt, onnxruntime")
    p.add_argument("--method", default="max", help="INT8 calibration: max, entropy, percentile")
    p.add_argument("--roi-align", default="grid_sample", choices=("grid_sample", "onnx"),
                   help="TeViT RoIAlign export form (onnx: the ONNX RoiAlign op)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--workdir", default=None, help="keep artifacts here (default: a temp dir)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse converted artifacts found in --workdir (re-time only)")
    p.add_argument("--out", default="bench/results/precision.md")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="[bench] %(message)s")
    logging.getLogger("visdeploy").setLevel(logging.INFO)
    import onnxruntime

    machine = {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
               "load_before": os.getloadavg(), "torch": torch.__version__,
               "torch_threads": torch.get_num_threads(), "onnxruntime": onnxruntime.__version__}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        for preset in args.presets:
            rows.append(bench_preset(preset, args, workdir))
            (workdir / f"{preset}.bench.json").write_text(json.dumps(rows[-1], indent=1))
    machine["load_after"] = os.getloadavg()
    text = write_report(Path(args.out), rows, machine, vars(args))
    print(text)


if __name__ == "__main__":
    main()
