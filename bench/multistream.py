"""Many cameras in one process (issue 22): batched vs N processes vs unbatched, and how far the
pipelined runtime's stages overlap.

    nice python bench/multistream.py [--artifacts DIR] [--streams 1 2 4] [--frames 24]
        [--parts engine streams stages] [--threads 0] [--repeats 1] [--wait-ms 50]

- streams: for each N in ``--streams``, N generated clips (moving coloured squares, four sizes,
  ``--frames`` frames each, MP4) through ``--artifacts`` (default: the tiny TeViT export, made
  once into a temporary folder) in three ways:
    batched    one process, ``MultiStreamPipeline`` (engine batches up to the manifest's max)
    processes  N processes, each a ``Pipeline`` on one clip, started together once all loaded
    unbatched  one process, ``MultiStreamPipeline(max_batch=1)``
  Each runs in fresh processes. Aggregate frames/s = all frames / (last end - first start), model
  loading excluded; latency p50/p95 over every frame (decode to result; the clips are read as
  fast as they decode, so latency includes the wait in the bounded queues); RSS = peak resident
  memory (summed over the N processes).
- engine: the backend alone, time per window at B = 1, 2, 4 (rounds interleaved): what a batch
  buys on this engine and device, apart from everything else.
- stages: one stream through the contract graph of the tests (192x320 input, a few ONNX ops)
  from a 360x640 clip, overlay MP4 + JSONL events written by the caller: sequential vs pipelined
  ``Pipeline.run``. Per-frame time of each pipelined stage (decode+letterbox: reader thread;
  inference; tracking+paste: post-processing thread; sinks: caller) from the run's own timer;
  end-to-end frames/s against 1/sum and 1/max of them (goal: >= 0.8 of 1/max).
Prints markdown for docs/notes/lab-notebook.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

import rt_fixtures as F  # noqa: E402

SIZES = [(240, 320), (180, 320), (192, 256), (200, 300)]
CONFIGS = ("batched", "processes", "unbatched")
THREAD_STAGES = {"decode+letterbox": ("decode", "letterbox"), "inference": ("inference",),
                 "tracking+paste": ("tracking", "paste"), "sinks": ("sinks",)}


# -- worker processes ------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    """Load, say READY, wait for a line on stdin, stream the clips, print one JSON line."""
    from runtime import MultiStreamPipeline, Pipeline

    options = {"device": "cpu", "threads": args.threads, "keep_images": False}
    if args.worker == "single":
        model = Pipeline(args.artifacts, **options)
    else:
        max_batch = 1 if args.worker == "unbatched" else None
        model = MultiStreamPipeline(args.artifacts, args.clips, max_batch=max_batch,
                                    max_batch_wait_ms=args.wait_ms, **options)
    print("READY", flush=True)
    sys.stdin.readline()
    start = time.time()
    results = model.run(args.clips[0]) if args.worker == "single" else (
        result for _, result in model.run())
    latencies = [result.latency_ms for result in results]
    end = time.time()
    batches = {} if args.worker == "single" else model.summary()["batches"]
    model.close()
    print(json.dumps({"frames": len(latencies), "start": start, "end": end,
                      "latency_ms": latencies, "batches": batches,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


def _spawn(kind: str, clips: list[Path], args: argparse.Namespace) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", kind, "--artifacts", str(args.artifacts),
               "--threads", str(args.threads), "--wait-ms", str(args.wait_ms),
               "--clips", *map(str, clips)]
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def run_config(config: str, clips: list[Path], args: argparse.Namespace) -> dict:
    """Start the worker(s) of ``config``, release them together, merge their reports."""
    if config == "processes":
        procs = [_spawn("single", [clip], args) for clip in clips]
    else:
        procs = [_spawn(config, clips, args)]
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"worker failed to start: {line!r}")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.communicate(timeout=3600)[0].splitlines()[-1]) for proc in procs]
    latencies = np.concatenate([r["latency_ms"] for r in reports])
    frames = sum(r["frames"] for r in reports)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    batches: dict[str, int] = {}
    for report in reports:
        for size, count in report["batches"].items():
            batches[size] = batches.get(size, 0) + count
    return {"frames": frames, "wall_s": wall, "fps": frames / wall,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "rss_mb": sum(r["rss_mb"] for r in reports), "batches": batches}


def bench_streams(args: argparse.Namespace, folder: Path) -> list[str]:
    clips = []
    for i in range(max(args.streams)):
        frames, _ = F.make_clip(args.frames, size=SIZES[i % len(SIZES)], side=40,
                                objects={0: ((20 + 10 * i, 5), (0.5, 3.0)),
                                         1: ((120, 200 - 20 * i), (-0.5, -2.5))})
        clips.append(F.write_mp4(folder / f"stream{i}.mp4", frames))
    rows = ["| N streams | way | frames | wall s | aggregate frames/s | vs N processes | "
            "p50 latency ms | p95 latency ms | peak RSS MB (sum) | engine batches (B: count) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in args.streams:
        for repeat in range(args.repeats):
            measured = {config: run_config(config, clips[:n], args) for config in CONFIGS}
            reference = measured["processes"]["fps"]
            for config, m in measured.items():
                batches = ", ".join(f"{b}: {c}" for b, c in sorted(m["batches"].items())) or "-"
                rows.append(f"| {n} | {config}{f' (run {repeat + 1})' if args.repeats > 1 else ''}"
                            f" | {m['frames']} | {m['wall_s']:.1f} | {m['fps']:.2f} | "
                            f"{m['fps'] / reference:.2f}x | {m['p50_ms']:.0f} | "
                            f"{m['p95_ms']:.0f} | {m['rss_mb']:.0f} | {batches} |")
            print("\n".join(rows[-3:]), flush=True)
    return rows


# -- pipelined stages ------------------------------------------------------------------------
def _stream_once(artifacts: Path, clip: Path, out: Path, pipelined: bool) -> dict:
    from runtime import Pipeline
    from runtime.sinks import JsonlEventSink, OverlayVideoSink

    with Pipeline(artifacts, device="cpu") as pipeline:
        sinks = [OverlayVideoSink(out / "o.mp4"), JsonlEventSink(out / "e.jsonl")]
        start, frames = time.perf_counter(), 0
        for result in pipeline.run(clip, pipelined=pipelined):
            with pipeline.timer.stage("sinks"):
                for sink in sinks:
                    sink.write(result)
            frames += 1
        wall = time.perf_counter() - start
        for sink in sinks:
            sink.close()
        stages = pipeline.summary()["stages"]
    per_frame = {name: sum(stages.get(s, {}).get("total_s", 0.0) for s in parts) / frames
                 for name, parts in THREAD_STAGES.items()}
    return {"frames": frames, "fps": frames / wall, "per_frame_ms": per_frame}


def bench_stages(args: argparse.Namespace, folder: Path) -> list[str]:
    artifacts = F.build_contract_artifacts(folder / "contract", height=192, width=320)
    frames, _ = F.make_clip(args.stage_frames, size=(360, 640), side=60,
                            objects={0: ((40, 0), (0.5, 3.0)), 1: ((200, 560), (-0.3, -3.0)),
                                     2: ((100, 300), (1.0, 0.0))})
    clip = F.write_mp4(folder / "stages.mp4", frames)
    header = " | ".join(f"{name} ms/frame" for name in THREAD_STAGES)
    rows = [f"| run | frames/s end to end | {header} | 1/sum frames/s | 1/max frames/s | "
            "e2e / (1/max) |", "|---" * (6 + len(THREAD_STAGES)) + "|"]
    for repeat in range(args.repeats + 1):
        for pipelined in (False, True):
            m = _stream_once(artifacts, clip, folder, pipelined)
            times = m["per_frame_ms"]
            total, worst = sum(times.values()), max(times.values())
            stage_cells = " | ".join(f"{times[name] * 1e3:.2f}" for name in THREAD_STAGES)
            rows.append(f"| {'pipelined' if pipelined else 'sequential'} (round {repeat + 1}) | "
                        f"{m['fps']:.1f} | {stage_cells} | {1 / total:.1f} | {1 / worst:.1f} | "
                        f"{m['fps'] * worst:.2f} |")
            print(rows[-1], flush=True)
    return rows


def bench_engine(args: argparse.Namespace) -> list[str]:
    """Engine time per window at B = 1, 2, 4 (rounds interleaved), the backend alone."""
    from runtime.backends import open_backend
    from runtime.manifest import load_manifest

    manifest = load_manifest(args.artifacts)
    backend = open_backend(manifest, "onnxruntime", device="cpu", threads=args.threads)
    backend.activate()
    length = manifest.window[0]
    h, w = manifest.input_hw
    sizes = [b for b in (1, 2, 4) if b <= manifest.batch_range[2]]
    clips = np.random.default_rng(0).integers(0, 255, (max(sizes), length, h, w, 3), np.uint8)
    times: dict[int, list[float]] = {b: [] for b in sizes}
    backend.infer(clips[:1])  # warm-up
    for _ in range(args.repeats + 2):
        for b in sizes:
            start = time.perf_counter()
            backend.infer(clips[:b])
            times[b].append((time.perf_counter() - start) / b)
    backend.deactivate()
    best = {b: min(t) for b, t in times.items()}
    rows = ["| B | ms per window (min of rounds) | median | vs B=1 |", "|---|---|---|---|"]
    rows += [f"| {b} | {best[b] * 1e3:.0f} | {np.median(times[b]) * 1e3:.0f} | "
             f"{best[1] / best[b]:.2f}x |" for b in sizes]
    return rows


def _tevit_artifacts(folder: Path) -> Path:
    from export.artifacts import export_artifacts

    print("exporting the tiny TeViT ...", flush=True)
    return export_artifacts("tevit", "tiny", folder / "tevit").directory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--artifacts", type=Path, help="artifact directory (default: tiny TeViT)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--frames", type=int, default=24, help="frames per stream")
    p.add_argument("--stage-frames", type=int, default=300)
    p.add_argument("--parts", nargs="+", default=["engine", "streams", "stages"],
                   choices=["engine", "streams", "stages"])
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--wait-ms", type=float, default=50.0, help="--max-batch-wait-ms")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--worker", choices=["single", "batched", "unbatched"], help=argparse.SUPPRESS)
    p.add_argument("--clips", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} at start, {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if {"streams", "engine"} & set(args.parts):
            args.artifacts = args.artifacts or _tevit_artifacts(folder)
        if "engine" in args.parts:
            print("\n".join(bench_engine(args)))
        if "streams" in args.parts:
            print("\n".join(bench_streams(args, folder)))
        if "stages" in args.parts:
            print("\n".join(bench_stages(args, folder)))
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
