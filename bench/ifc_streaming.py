"""IFC streaming on CPU: one-stage vs two-stage, PyTorch eager vs onnxruntime, same run.

    python bench/ifc_streaming.py [--presets tiny r50] [--hw 192 320] [--window 5]
                                  [--strides 1 3] [--windows 6] [--out bench/results/ifc.md]

A stream of random uint8 frames is cut into windows of T frames every S frames. One-stage runs the
whole model on every window (each frame's backbone runs T/S times); two-stage runs the frame stage
once per new frame, caches its features and runs the clip stage on the last T cached features
(DESIGN §4). The four modes (eager/onnxruntime × one/two-stage) run interleaved window by window
after two warm-up windows; frames/s = S / median window time over ``--windows`` windows. Weights
are a seeded random init (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.onnx_export import export_onnx  # noqa: E402
from export.two_stage import export_two_stage  # noqa: E402
from models.base import OUTPUT_NAMES  # noqa: E402
from models.ifc.config import PRESETS  # noqa: E402
from models.ifc.model import IFCModel  # noqa: E402
from runtime.backends.base import engine_feeds, full_content_hw  # noqa: E402
from runtime.manifest import CONTENT_HW  # noqa: E402

# A stream step takes the new frames [1, S, H, W, 3] and the window [1, T, H, W, 3].
Step = Callable[[np.ndarray, np.ndarray], object]


def eager_steps(model: IFCModel) -> dict[str, Step]:
    cache: list[tuple[torch.Tensor, ...]] = []

    def one(new, window):
        return model(torch.from_numpy(window))

    def two(new, window):
        feats = model.frame_stage(torch.from_numpy(new))
        cache.extend(tuple(f[:, i : i + 1] for f in feats) for i in range(new.shape[1]))
        del cache[: -window.shape[1]]
        return model.clip_stage(*(torch.cat(parts, dim=1) for parts in zip(*cache, strict=True)))

    return {"one-stage": one, "two-stage": two}


def session(path: Path):
    """CPU session as in ``export.parity.ort_session`` (extended optimisation), without thread
    spinning: spinning ORT workers would steal the cores from the interleaved PyTorch runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_steps(one_path: Path, frame_path: Path, clip_path: Path, names) -> dict[str, Step]:
    one_sess, frame_sess, clip_sess = session(one_path), session(frame_path), session(clip_path)
    cache: list[list[np.ndarray]] = []

    one_inputs = [i.name for i in one_sess.get_inputs()]
    clip_content = CONTENT_HW in [i.name for i in clip_sess.get_inputs()]

    def one(new, window):  # unpadded clips: content_hw = the whole input
        return one_sess.run(list(OUTPUT_NAMES), engine_feeds(one_inputs, window, None))

    def two(new, window):
        feats = frame_sess.run(list(names), {"frames": new})
        cache.extend([f[:, i : i + 1] for f in feats] for i in range(new.shape[1]))
        del cache[: -window.shape[1]]
        window_feats = [np.concatenate(parts, axis=1) for parts in zip(*cache, strict=True)]
        feeds = dict(zip(names, window_feats, strict=True))
        if clip_content:
            feeds[CONTENT_HW] = full_content_hw(window.shape[0], window.shape[2:4])
        return clip_sess.run(list(OUTPUT_NAMES), feeds)

    return {"one-stage": one, "two-stage": two}


def parity(model: IFCModel, video: np.ndarray, one: Step, two: Step, window: int) -> dict:
    """Max abs error of onnxruntime (one- and two-stage) vs eager on the first window."""
    x = video[:, :window]
    with torch.inference_mode():
        ref = {k: v.numpy() for k, v in model(torch.from_numpy(x)).items()}
    errs = {}
    for mode, step in (("one", one), ("two", two)):
        out = dict(zip(OUTPUT_NAMES, step(x, x), strict=True))
        errs[mode] = {k: float(np.abs(out[k] - ref[k]).max()) for k in ("scores", "masks", "embeddings")}
        errs[mode]["index_equal"] = bool((out["query_index"] == ref["query_index"]).all())
    return errs


def stream_fps(steps: dict[str, Step], video: np.ndarray, window: int, stride: int,
               windows: int) -> dict[str, float]:
    """Frames/s per mode = S / median window time.

    Modes are interleaved window by window, so load from other processes hits every mode alike.
    The first two windows warm up each mode (the first feeds a whole window, the second a
    stride's worth of frames: both input shapes are seen before timing).
    """
    times: dict[str, list[float]] = {mode: [] for mode in steps}
    for w in range(windows + 2):
        end = window + w * stride
        new = video[:, :window] if w == 0 else video[:, end - stride : end]
        for mode, step in steps.items():
            start = time.perf_counter()
            step(new, video[:, end - window : end])
            if w >= 2:
                times[mode].append(time.perf_counter() - start)
    return {mode: stride / statistics.median(ts) for mode, ts in times.items()}


def bench_preset(preset: str, hw: tuple[int, int], args, workdir: Path) -> list[dict]:
    torch.manual_seed(0)
    model = IFCModel(dataclasses.replace(PRESETS[preset], input_hw=hw)).eval()
    start = time.perf_counter()
    one_path = export_onnx(model, workdir / f"{preset}.onnx")
    two = export_two_stage(model, workdir / f"{preset}_two")
    export_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    length = args.window + (args.windows + 1) * max(args.strides)
    video = rng.integers(0, 256, (1, length, *hw, 3), dtype=np.uint8)
    rows = []
    for stride in args.strides:
        ort = ort_steps(one_path, two.frame_path, two.clip_path, two.feature_names)
        steps = {("pytorch", k): v for k, v in eager_steps(model).items()}
        steps |= {("onnxruntime", k): v for k, v in ort.items()}
        with torch.inference_mode():
            fps = stream_fps(steps, video, args.window, stride, args.windows)
        for backend in ("pytorch", "onnxruntime"):
            rows.append({"preset": preset, "hw": hw, "T": args.window, "S": stride,
                         "backend": backend, "export_s": export_s,
                         **{mode: fps[(backend, mode)] for mode in ("one-stage", "two-stage")}})
            print(_row(rows[-1]), flush=True)
    ort = ort_steps(one_path, two.frame_path, two.clip_path, two.feature_names)
    rows[-1]["parity"] = parity(model, video, ort["one-stage"], ort["two-stage"], args.window)
    return rows


def _row(r: dict) -> str:
    ratio = r["two-stage"] / r["one-stage"]
    return (f"| {r['preset']} | {r['hw'][0]}×{r['hw'][1]} | {r['T']} | {r['S']} | {r['backend']} | "
            f"{r['one-stage']:.2f} | {r['two-stage']:.2f} | {ratio:.2f}× |")


def _parity_line(r: dict) -> str:
    parts = []
    for mode, errs in r["parity"].items():
        floats = ", ".join(f"{k} {v:.1e}" for k, v in errs.items() if k != "index_equal")
        parts.append(f"{mode}-stage: {floats}, query_index "
                     + ("equal" if errs["index_equal"] else "DIFFERENT"))
    return f"- {r['preset']} {r['hw'][0]}×{r['hw'][1]}, T={r['T']}: " + "; ".join(parts)


def report(rows: list[dict], args) -> str:
    head = [
        "| preset | input | T | S | backend | one-stage frames/s | two-stage frames/s | two/one |",
        "|---|---|---|---|---|---|---|---|",
    ]
    eager = {(r["preset"], r["S"]): r for r in rows if r["backend"] == "pytorch"}
    ort_vs = [f"- {p} S={s}: onnxruntime/eager one-stage "
              f"{r['one-stage'] / eager[(p, s)]['one-stage']:.2f}×, two-stage "
              f"{r['two-stage'] / eager[(p, s)]['two-stage']:.2f}×"
              for r in rows if r["backend"] == "onnxruntime" for p, s in [(r["preset"], r["S"])]]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
               f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s) for torch and ORT, "
               f"onnxruntime {__import__('onnxruntime').__version__}")
    return "\n".join([
        "# IFC streaming frames/s on CPU (bench/ifc_streaming.py)", "",
        f"Run {dt.date.today().isoformat()} on {machine}; random-init weights, batch 1; "
        f"frames/s = S / median of {args.windows} window times, the four modes interleaved "
        "window by window after two warm-up windows.", "",
        *head, *(_row(r) for r in rows), "", "onnxruntime vs PyTorch eager, same run:", *ort_vs, "",
        "onnxruntime vs PyTorch max abs error on one T-frame window (index_equal: query_index):",
        *(_parity_line(r) for r in rows if "parity" in r), "",
        "Export time (one-stage + both stages, dynamo, opset 18): " + ", ".join(
            sorted({f"{r['preset']} {r['export_s']:.0f} s" for r in rows})), "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "r50"], choices=sorted(PRESETS))
    parser.add_argument("--hw", nargs=2, type=int, default=[192, 320], help="input H W (multiples of 32)")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--windows", type=int, default=6, help="timed windows per setting")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for PyTorch and onnxruntime (1: stable on a shared machine)")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            rows += bench_preset(preset, tuple(args.hw), args, Path(tmp))
    text = report(rows, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
