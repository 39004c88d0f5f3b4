"""One speed table per model: PyTorch eager, onnxruntime and OpenVINO at FP32/FP16/INT8, same run.

    python bench/speed.py [--models tevit:tiny ifc:tiny vistr:tiny tevit:msgshift@192x320]
        [--threads 2] [--precisions fp32 fp16 int8] [--int8-engines modelopt nncf]
        [--backends onnxruntime openvino] [--rounds 5] [--calib-data synthetic:tiny:3]
        [--ap-data DIR --ap-videos N [--ap-tracker auto]] [--malloc default|keep]
        [--max-window-s 60] [--workdir DIR] [--out FILE]

Each model is exported at its preset's input size (``@HxW`` overrides it; multiples of 32), its
FP16 and INT8 graphs calibrated by ``calibration`` (keep-lists, parity budget or ``--ap-data``
AP budget) and, with nncf installed, NNCF's INT8 graph checked against the same budget
(bench/speed_variants.py). Every runner then processes the same sliding windows of a moving
clip (the manifest's T and stride S, batch 1), interleaved: each round gives every runner the
next window, in a rotated order, after one warm-up round. Reported: the median wall ms per
window (and the minimum), the median CPU ms of this process (robust to other jobs' load),
frames/s = S new frames per window / that time (streaming throughput; a two-stage runner computes
only the S new frames, the others the whole window), speed-up vs eager, and the achieved GFLOP/s:
the FLOPs the exported graph does per window (bench/graph_flops.py: its Conv/MatMul/Gemm shapes)
over the time, against this CPU's FP32 peak measured here (``core_peak_gflops``).
A model whose eager window takes longer than ``--max-window-s`` is skipped with a note (use a
smaller ``@HxW``). Prints markdown (and writes it to ``--out``); the machine is described in
the header, and timings on a shared machine are only comparable within one table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from graph_flops import eager_flops, graph_flops, stage_flops  # noqa: E402
from speed_variants import (  # noqa: E402
    STATIC,
    delta_text,
    open_runners,
    prepare_model,
    scores_delta,
)

from calibration.data import Windows  # noqa: E402
from calibration.nncf_int8 import OVERFLOW_FIXES  # noqa: E402
from calibration.parity import CHECK_BACKENDS  # noqa: E402
from runtime.manifest import CONTENT_HW, load_manifest  # noqa: E402


def matmul_peak_gflops(threads: int, n: int = 4096, repeats: int = 5, *,
                       clock=time.perf_counter) -> float:
    """Best FP32 GFLOP/s of an n x n x n matmul with ``threads`` (torch's BLAS) by ``clock``."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b), clock) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def core_peak_gflops(threads: int) -> float:
    """``threads`` x one core's matmul GFLOP per CPU-second (1 thread, ``time.process_time``):
    the CPU's FP32 peak as far as other jobs on a shared machine allow to tell (their load
    stretches wall time, not this process's CPU time)."""
    return threads * matmul_peak_gflops(1, 2048, clock=time.process_time)


def openvino_matmul_peak_gflops(threads: int, n: int = 4096, repeats: int = 5) -> float:
    """The same matmul as one f32 OpenVINO MatMul (oneDNN's kernels, what the OpenVINO rows run)."""
    import openvino as ov
    from openvino import opset13 as ops

    from runtime.backends.openvino import compile_config

    a = ops.parameter([n, n], ov.Type.f32, name="a")
    b = ops.constant(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    compiled = ov.Core().compile_model(ov.Model([ops.matmul(a, b, False, False)], [a]), "CPU",
                                       compile_config(threads))
    request, x = compiled.create_infer_request(), np.ones((n, n), np.float32)
    request.infer({"a": x})
    best = min(_seconds(lambda: request.infer({"a": x})) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _seconds(fn, clock=time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


def clip_windows(manifest, rounds: int) -> tuple[Windows, int]:
    """Sliding windows (T, stride S) over a moving-texture clip, batch 1, no padding."""
    length, stride = manifest.window
    if manifest.fixed_frames:
        length = manifest.frames_range[2]
    h, w = manifest.input_hw
    base = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    clip = np.stack([np.roll(base, 5 * t, axis=1) for t in range(length + stride * rounds)])
    frames = np.stack([clip[i * stride:i * stride + length] for i in range(rounds + 1)])
    return Windows.unpadded(frames), stride


def timed_rounds(runners: dict, windows: Windows) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, CPU ms) per window for each runner: window 0 warms up, then each round gives
    every runner the next window, starting one runner later each round. CPU ms is this
    process's CPU time (all its threads): other jobs on a shared machine stretch wall time, not
    this; idle threads that spin-wait add to it."""
    names = list(runners)
    for name in names:
        runners[name](windows[0])
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(1, len(windows)):
        window = windows[r]
        for name in names[r % len(names):] + names[:r % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            runners[name](window)
            times[name].append((1e3 * (time.perf_counter() - wall),
                                1e3 * (time.process_time() - cpu)))
    return times


def window_gflop(directory: Path, windows: Windows, stride: int) -> dict[str, float]:
    """GFLOP per window: the whole graph at T, and the two-stage path (S new frames + clip)."""
    manifest = load_manifest(directory)
    entry = manifest.artifact("onnx", "fp32")
    t = windows.frames.shape[1]
    shapes = {"frames": list(windows.frames[:1].shape)}
    if CONTENT_HW in manifest.entry_inputs(entry):
        shapes[CONTENT_HW] = [1, 2]
    result = {"one": graph_flops(directory / entry["file"], shapes)["total"] / 1e9}
    if manifest.has_stages("onnx", "fp32"):
        frame = directory / manifest.artifact("onnx", "fp32", stage="frame")["file"]
        clip = directory / manifest.artifact("onnx", "fp32", stage="clip")["file"]
        result["two"] = stage_flops(frame, clip, shapes, new_frames=stride, frames=t) / 1e9
    return result


def bench_model(spec: str, args, workdir: Path, peak: float) -> str:
    name, _, rest = spec.partition(":")
    preset, _, size = rest.partition("@")
    from models import build_model

    hw = tuple(int(v) for v in size.split("x")) if size else build_model(name, preset).spec.input_hw
    prepared = prepare_model(name, preset, hw, workdir, args)
    manifest = load_manifest(prepared.directory)
    windows, stride = clip_windows(manifest, args.rounds)
    runners = open_runners(prepared, hw, args)
    eager_s = _seconds(lambda: runners["PyTorch eager fp32"](windows[0]))
    t = windows.frames.shape[1]
    title = f"### {name} {preset}, {hw[0]}x{hw[1]}, T={t}, stride S={stride}, B=1"
    if eager_s > args.max_window_s:
        return (f"{title}\n\nskipped: one eager window took {eager_s:.0f} s (> --max-window-s "
                f"{args.max_window_s:g}); run it at a smaller @HxW\n")
    gflop = window_gflop(prepared.directory, windows, stride)
    reference = {}
    for label, run in list(runners.items()):
        try:
            reference[label] = run(windows[0])
        except Exception as err:  # e.g. a Q/DQ form one runtime cannot run: a note, no row
            prepared.notes.append(f"{label} failed: {' '.join(str(err).split())[:300]}")
            del runners[label]
    times = timed_rounds(runners, windows)
    return title + "\n\n" + format_table(prepared, runners, times, reference, gflop, stride,
                                         peak) + "\n"


def format_table(prepared, runners, times, reference, gflop, stride, peak) -> str:
    eager_ms, eager_cpu = (statistics.median(v) for v in zip(*times["PyTorch eager fp32"]))
    base = reference.get("onnxruntime fp32", reference["PyTorch eager fp32"])
    lines = ["| runner | wall ms / window (median, min) | CPU ms | frames/s | vs eager (wall, "
             "CPU) | GFLOP/s (% of FP32 peak) | scores Δ vs ORT fp32 | INT8 budget |",
             "|---|---|---|---|---|---|---|---|"]
    for label, pairs in times.items():
        values, cpus = zip(*pairs)
        ms, cpu = statistics.median(values), statistics.median(cpus)
        flops = gflop["two" if label.endswith("two-stage") else "one"]
        engine = getattr(runners[label], "engine", None)
        check = prepared.int8_checks.get("nncf" if "NNCF" in label else "modelopt")
        if label.endswith(STATIC):  # the static compile's own measurement
            static = (check or {}).get("openvino_static")
            check = {**static, "measured_on": "openvino, static shape"} if static else None
        budget = budget_text(check) if " int8" in label else ""
        kernels = ""
        if engine is not None and engine.name.startswith("openvino") and " int8" in label:
            from runtime.backends.openvino import kernel_precisions

            counts = kernel_precisions(getattr(engine, "compiled", None) or engine.clip_model)
            kernels = f"; {sum(n for (_, p), n in counts.items() if p in ('i8', 'u8'))} " \
                      f"of {sum(counts.values())} kernels INT8"
        lines.append(f"| {label} | {ms:.1f}, {min(values):.1f} | {cpu:.0f} | "
                     f"{1e3 * stride / ms:.2f} | {eager_ms / ms:.2f}x, {eager_cpu / cpu:.2f}x | "
                     f"{flops / ms * 1e3:.0f} ({100 * flops / ms * 1e3 / peak:.0f}%) | "
                     f"{delta_text(scores_delta(base, reference[label]))} | {budget}{kernels} |")
    notes = [f"GFLOP per window (exported graph's Conv/MatMul/Gemm): whole window "
             f"{gflop['one']:.2f}" + (f", two-stage (S new frames + clip stage) {gflop['two']:.2f}"
                                       if "two" in gflop else "")]
    notes += prepared.notes
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def budget_text(check: dict | None) -> str:
    """``loss 0.83 within`` (parity) or ``AP drop 0.31 within`` (AP), with the backend it was
    measured on (``measured_on``) and NNCF's fallback."""
    if not check:
        return "not measured"
    metric = check.get("check", "parity") != "parity"  # a static-compile record names its check
    kind = "AP drop" if metric or any(k.endswith("_drop") for k in check) else "parity loss"
    text = f"{kind} {check['value']:.3g} {'within' if check['within_budget'] else 'OVER'}"
    if check.get("measured_on"):
        text += f" on {check['measured_on']}"
    if "before_fallback" in check:
        text += (f" (NNCF alone {check['before_fallback']:.3g}; "
                 f"{check['blocks_back_to_fp32']} blocks back to FP32"
                 + (f", {check['blocks_readmitted']} more tried and kept INT8"
                    if check.get("blocks_readmitted") else "") + ")")
    return text


def header(args, peak: float) -> str:
    import onnxruntime

    from runtime.backends.openvino import openvino_installed

    ov = "not installed"
    if openvino_installed():
        import openvino

        ov = openvino.__version__.split("-")[0]
    load = os.getloadavg()
    allocator = malloc_mode()
    preload = os.environ.get("LD_PRELOAD")  # e.g. jemalloc, which replaces glibc malloc
    preload_note = f"; LD_PRELOAD={preload}" if preload else ""
    return (f"## bench/speed.py, {datetime.date.today()}\n\n"
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"--threads {args.threads}; torch {torch.__version__}, onnxruntime "
            f"{onnxruntime.__version__}, openvino {ov}. FP32 peak: {peak:.0f} GFLOP/s "
            f"(--threads x one core's 2048^3 matmul GFLOP per CPU-second; wall-clock 4096^3 "
            f"matmul now: torch {matmul_peak_gflops(args.threads):.0f}, OpenVINO "
            f"{openvino_matmul_peak_gflops(args.threads):.0f}). Load average at start "
            f"{load[0]:.1f} (a shared machine: compare within a table). glibc malloc: "
            f"{allocator}{' (freed memory kept for reuse)' if allocator == 'keep' else ''}"
            f"{preload_note}.\n")


# glibc keeps freed memory for reuse: no return to the OS below 16 GiB of free heap, blocks up to
# 32 MiB from the heap rather than fresh mmaps (glibc's maximum for the threshold), 512 MiB
# headroom per heap growth. Without this PyTorch eager page-faults its activations afresh every
# call (VisTR tiny: ~83k minor faults, a third of its CPU time in the kernel), and that cost grew
# 2-3x with other runtimes' sessions in the process. onnxruntime's arena and OpenVINO's
# allocator reuse their memory anyway, yet ran 10-25 % slower with these settings here: compare
# each side at its best mode (two runs) rather than trusting one run's "vs eager". glibc
# tunables: https://www.gnu.org/software/libc/manual/html_node/Memory-Allocation-Tunables.html
# (the MALLOC_*_ variables are their older aliases).
KEPT_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(16 << 30),
                   "MALLOC_TOP_PAD_": str(512 << 20)}


def malloc_mode() -> str:
    """``keep`` when this process runs with KEPT_MALLOC_ENV, else ``default``."""
    return "keep" if all(os.environ.get(k) == v for k, v in KEPT_MALLOC_ENV.items()) else "default"


def reexec_with_kept_malloc(argv: list[str]) -> None:
    """Run this script again with KEPT_MALLOC_ENV (glibc reads it only at start-up); no return."""
    env = dict(os.environ, **KEPT_MALLOC_ENV)
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], env)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["tevit:tiny", "ifc:tiny", "vistr:tiny"],
                   help="name:preset[@HxW]")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "int8"])
    p.add_argument("--int8-engines", nargs="+", default=["modelopt", "nncf"],
                   choices=["modelopt", "nncf"],
                   help="INT8 graphs to make: the calibration's (ModelOpt) and/or NNCF's")
    p.add_argument("--nncf-overflow-fix", choices=list(OVERFLOW_FIXES), default="enable",
                   help="NNCF's 7-bit weights: on every Conv/MatMul (enable, default), the first "
                        "layer only (first_layer: NNCF's default, the tables before 2026-12-03's "
                        "sixth session) or none")
    p.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino"])
    p.add_argument("--roi-align", default="onnx_gathered",
                   choices=["onnx", "onnx_gathered", "grid_sample"],
                   help="TeViT's RoIAlign export form (default: per level, the fastest on "
                        "both CPU runtimes; the tables in docs/benchmarks.md use it)")
    p.add_argument("--deform-conv", choices=["grid_sample", "onnx"],
                   help="VisTR's deformable-conv export form (default: the exporter's)")
    p.add_argument("--rounds", type=int, default=5, help="timed windows per runner")
    p.add_argument("--calib-data", default="synthetic:tiny:3")
    p.add_argument("--calib-windows", type=int, default=8)
    p.add_argument("--eval-windows", type=int, default=2)
    p.add_argument("--ap-data", help="dataset folder: INT8/FP16 budget is the AP drop on it")
    p.add_argument("--ap-videos", type=int)
    p.add_argument("--ap-tracker", choices=["auto", "default", "ifc-official"], default="auto",
                   help="tracker of the AP budget's streaming run (auto: each model's deployed "
                        "one, IFC's official near-online linking for ifc, the default otherwise)")
    p.add_argument("--check-backend", choices=CHECK_BACKENDS,
                   help="runtime the FP16/INT8 budgets are measured on (default: openvino when "
                        "installed, the fastest CPU path these tables look for)")
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="glibc allocator for the whole run: default, or keep (freed memory kept "
                        "for reuse, KEPT_MALLOC_ENV: eager PyTorch stops page-faulting its "
                        "activations every window, but the runtimes ran 10-25 %% slower with "
                        "it; the script re-executes itself with it set)")
    p.add_argument("--max-window-s", type=float, default=60.0)
    p.add_argument("--workdir", default="artifacts/bench_speed", help="exports kept here (reused)")
    p.add_argument("--out", help="also write the markdown here")
    p.add_argument("--flops-only", action="store_true",
                   help="only the FLOP comparison: exported graph vs torch.utils.flop_counter")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.malloc == "keep" and malloc_mode() != "keep":
        reexec_with_kept_malloc(sys.argv[1:] if argv is None else list(argv))
    if args.check_backend is None:
        from runtime.backends.openvino import openvino_installed

        args.check_backend = "openvino" if openvino_installed() else "onnxruntime"
    workdir = Path(args.workdir)
    if args.flops_only:
        text = "\n".join(flops_comparison(spec, args, workdir) for spec in args.models)
    else:
        peak = core_peak_gflops(args.threads)
        text = header(args, peak) + "\n" + "\n".join(
            bench_model(spec, args, workdir, peak) for spec in args.models)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


def flops_comparison(spec: str, args, workdir: Path) -> str:
    """GFLOP per window counted on the exported graph vs torch.utils.flop_counter on eager."""
    from speed_variants import eager_model, export_dir, export_forms

    from export.artifacts import export_artifacts

    name, _, rest = spec.partition(":")
    preset, _, size = rest.partition("@")
    model = eager_model(name, preset, tuple(int(v) for v in size.split("x")) if size else None)
    hw = tuple(model.spec.input_hw)
    forms = export_forms(name, args)
    roi_align = forms.get("roi_align")
    directory = export_dir(workdir, name, preset, hw, next(iter(forms.values()), None))
    if not (directory / "manifest.json").is_file():
        export_artifacts(name, preset, directory, input_hw=hw, parity_cases=((1, 2),), **forms)
    manifest = load_manifest(directory)
    windows, _ = clip_windows(manifest, 0)
    graph = graph_flops(directory / "model.onnx", {
        "frames": list(windows.frames.shape),
        **({CONTENT_HW: [1, 2]} if CONTENT_HW in manifest.entry_inputs(
            manifest.artifact("onnx", "fp32")) else {})})
    if roi_align:
        model.use_roi_align(roi_align)
    eager = eager_flops(model, (torch.from_numpy(windows.frames),
                                torch.from_numpy(windows.content_hw)))
    fmt = lambda d: ", ".join(f"{k} {v / 1e9:.2f}" for k, v in d.items())  # noqa: E731
    return (f"{name} {preset} {hw[0]}x{hw[1]} T={windows.frames.shape[1]}: graph GFLOP "
            f"{fmt(graph)}; flop_counter GFLOP {fmt(eager)}")


if __name__ == "__main__":
    sys.exit(main())
