"""Runtime overhead: time per stage, tracker cost per window, memory over a long stream.

    python bench/runtime_overhead.py [--artifacts artifacts/tevit] [--frames 300]
        [--size 360x640] [--parts stages tracker memory] [--memory-frames 10000]

- stages: a ``--frames`` clip (moving coloured squares, written as MP4 first) through the
  Pipeline with an overlay-MP4 sink, once per overlap policy (average, latest). Time per stage:
  decode, letterbox, inference, tracking (output decoding + tracker + overlap assembly), mask
  paste, encode (overlay MP4). Overhead = everything except inference and encode, as a share of
  inference. Mask IoU against the clip's ground truth is given per policy (meaningful only for a
  trained model or the contract graph). Without --artifacts the contract graph of the tests
  (tests/runtime/rt_fixtures.py: a handful of ONNX ops) is used, so inference is unrealistically
  cheap and the overhead ratio is not meaningful.
- tracker: ``Tracker.update`` per window (T=5, S=3, masks 96x160 = a 384x640 model input) with
  10/50/200 live tracks, all visible (N rows = N tracks), and with K=10 rows per window.
- memory: process RSS every 1000 frames of a synthetic stream through the contract graph with
  objects that leave and return (tracks expire and are re-created), JSONL sink on.
Prints markdown for docs/notes/lab-notebook.md.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

import rt_fixtures as F  # noqa: E402

from runtime.pipeline import Pipeline  # noqa: E402
from runtime.sinks import JsonlEventSink, OverlayVideoSink  # noqa: E402
from runtime.sources import open_source  # noqa: E402
from runtime.sources.base import FrameSource  # noqa: E402
from runtime.tracking import Tracker  # noqa: E402
from runtime.types import Frame  # noqa: E402

STAGE_ORDER = ("decode", "letterbox", "inference", "tracking", "paste", "encode")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _clip_objects(size: tuple[int, int]) -> tuple[dict, int]:
    h, w = size
    side = max(12, h // 8)
    return ({0: ((h * 0.1, 0.0), (0.0, w / 150)), 1: ((h * 0.5, w - side), (0.0, -w / 180)),
             2: ((0.0, w * 0.4), (h / 200, 0.0))}, side)


def _mask_iou(results, masks) -> float:
    """Mean IoU of each ground-truth object with its best-matching output mask per frame."""
    ious = []
    for result in results:
        for k in range(masks.shape[0]):
            truth = masks[k, result.index]
            if not truth.any():
                continue
            best = max(((m & truth).sum() / (m | truth).sum() for m in result.masks), default=0)
            ious.append(best)
    return float(np.mean(ious)) if ious else float("nan")


def bench_stages(artifacts: Path, frames: int, size: tuple[int, int], policy: str,
                 workdir: Path, *, keep_all: bool = False) -> dict:
    objects, side = _clip_objects(size)
    clip, masks = F.make_clip(frames, size, side=side, objects=objects)
    video = F.write_mp4(workdir / "clip.mp4", clip, fps=30)
    options = ({"tracker": Tracker(continue_score=0.0, birth_score=0.0), "score_threshold": 0.0}
               if keep_all else {})
    with Pipeline(artifacts, overlap=policy, **options) as pipeline:
        sink = OverlayVideoSink(workdir / f"overlay_{policy}.mp4", fps=30)
        source = open_source(video)
        results, start = [], time.perf_counter()
        for result in pipeline.run(source):
            with pipeline.timer.stage("encode"):
                sink.write(result)
            results.append(result)
        sink.close()
        wall = time.perf_counter() - start
        summary = pipeline.summary()
    stages = {name: summary["stages"].get(name, {}).get("total_s", 0.0) for name in STAGE_ORDER}
    shown = float(np.mean([len(r) for r in results]))
    return {"policy": policy, "frames": len(results), "wall_s": wall, "stages": stages,
            "tracks_per_frame": shown,
            "latency": (summary["latency_mean_ms"], summary["latency_p95_ms"]),
            "tracks": summary["tracks"], "iou": _mask_iou(results, masks)}


def _tracker_objects(count: int, rng: np.random.Generator) -> list:
    objects = []
    for i in range(count):
        y, x = rng.uniform(4, 92), rng.uniform(4, 156)
        vy, vx = rng.uniform(-0.5, 0.5, 2)
        objects.append(F.ScriptedObject(i, i % 5, rng.normal(size=64),
                                        lambda t, y=y, x=x, vy=vy, vx=vx: (y + vy * t, x + vx * t),
                                        radius=3.0))
    return objects


def bench_tracker(tracks: int, rows: int | None, windows: int = 30, iou_stride: int = 2) -> dict:
    """Mean/p95 ms of Tracker.update per window; ``rows`` visible per window (None: all)."""
    rng = np.random.default_rng(tracks)
    objects = _tracker_objects(tracks, rng)
    batches = []
    for k in range(windows + 5):
        frames = list(range(3 * k, 3 * k + 5))
        visible = objects if rows is None else [objects[(k * rows + j) % tracks]
                                                for j in range(rows)]
        batches.append((F.scripted_window(visible, frames, mask_hw=(96, 160), rng=rng,
                                          num_classes=5)[0], frames))
    tracker = Tracker(max_tracks=max(256, tracks), iou_stride=iou_stride)
    times = []
    for k, (instances, frames) in enumerate(batches):
        start = time.perf_counter()
        tracker.update(instances, frames)
        if k >= 5:  # the first windows create the tracks
            times.append((time.perf_counter() - start) * 1e3)
    return {"tracks": tracks, "rows": rows or tracks, "live": len(tracker.tracks),
            "stride": iou_stride,
            "mean_ms": statistics.mean(times), "p95_ms": float(np.percentile(times, 95))}


class SyntheticStream(FrameSource):
    """``count`` frames generated on the fly: three squares that leave for longer than the
    tracker's lost-track lifespan and come back, so tracks keep expiring and being created."""

    description = "synthetic stream"

    def __init__(self, count: int, size=(90, 160)) -> None:
        super().__init__()
        self.count, self.size = count, size

    def __iter__(self):
        h, w = self.size
        for t in range(self.count):
            image = np.full((h, w, 3), 20, np.uint8)
            for k, colour in F.COLOURS.items():
                phase = (t + 70 * k) % 300
                if phase < 150:  # visible 150 frames, gone 150 (> max_lost_frames=90)
                    x = int((phase * 0.9 + 20 * k) % (w - 20))
                    y = 10 + 25 * k
                    image[y:y + 20, x:x + 20] = colour
            yield Frame(t, t / 30, image)


def bench_memory(artifacts: Path, frames: int, workdir: Path) -> dict:
    samples = []
    with Pipeline(artifacts, keep_images=False) as pipeline:
        sink = JsonlEventSink(workdir / "events.jsonl")
        for result in pipeline.run(SyntheticStream(frames)):
            sink.write(result)
            if (result.index + 1) % 1000 == 0:
                samples.append((result.index + 1, _rss_mb()))
        sink.close()
        tracks = pipeline.summary()["tracks"]
    return {"samples": samples, "tracks": tracks}


def _print_stages(rows: list[dict], label: str) -> None:
    print(f"\n### Per-stage time, {rows[0]['frames']} frames, {label}\n")
    print("| policy | " + " | ".join(f"{s} ms/frame" for s in STAGE_ORDER)
          + " | overhead / inference | overhead excl. decode | latency mean / p95 ms "
          "| tracks shown per frame | track IDs | mask IoU vs GT |")
    print("|" + "---|" * (len(STAGE_ORDER) + 7))
    for row in rows:
        per = {s: row["stages"][s] / row["frames"] * 1e3 for s in STAGE_ORDER}
        infer = per["inference"] or float("nan")
        over = (per["decode"] + per["letterbox"] + per["tracking"] + per["paste"]) / infer
        over_nd = (per["letterbox"] + per["tracking"] + per["paste"]) / infer
        print(f"| {row['policy']} | " + " | ".join(f"{per[s]:.2f}" for s in STAGE_ORDER)
              + f" | {over:.1%} | {over_nd:.1%} | {row['latency'][0]:.0f} / "
              f"{row['latency'][1]:.0f} | {row['tracks_per_frame']:.1f} | {row['tracks']} | "
              f"{row['iou']:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, help="artifact dir (default: contract graph)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="360x640", help="source HxW for the stage timing")
    parser.add_argument("--memory-frames", type=int, default=10_000)
    parser.add_argument("--keep-all", action="store_true",
                        help="track and paste every engine row (worst case; use it for "
                        "untrained artifacts whose scores stay below the thresholds)")
    parser.add_argument("--parts", nargs="+", default=["stages", "tracker", "memory"],
                        choices=["stages", "tracker", "memory"])
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        contract = F.build_contract_artifacts(workdir / "contract")
        if "stages" in args.parts:
            artifacts = args.artifacts or F.build_contract_artifacts(
                workdir / "contract_big", height=192, width=320)
            label = f"{artifacts} ({Pipeline(artifacts).manifest.model})"
            rows = [bench_stages(artifacts, args.frames, size, policy, workdir,
                                 keep_all=args.keep_all) for policy in ("average", "latest")]
            _print_stages(rows, f"{label}, source {size[1]}x{size[0]}"
                          + (", every row kept" if args.keep_all else ""))
        if "tracker" in args.parts:
            print("\n### Tracker.update per window (T=5, S=3, masks 96x160)\n")
            print("| live tracks | rows per window | iou_stride | mean ms | p95 ms |\n"
                  "|---|---|---|---|---|")
            cases = ((10, None, 2), (50, None, 2), (200, None, 2), (50, 10, 2), (200, 10, 2),
                     (50, None, 4))
            for tracks, rows, stride in cases:
                r = bench_tracker(tracks, rows, iou_stride=stride)
                print(f"| {r['live']} | {r['rows']} | {r['stride']} | {r['mean_ms']:.2f} | "
                      f"{r['p95_ms']:.2f} |")
        if "memory" in args.parts:
            r = bench_memory(contract, args.memory_frames, workdir)
            print(f"\n### RSS over a {args.memory_frames}-frame stream "
                  f"(contract graph, {r['tracks']} track IDs created)\n")
            print("| frames | RSS MB |\n|---|---|")
            for frame, rss in r["samples"]:
                print(f"| {frame} | {rss:.1f} |")


if __name__ == "__main__":
    main()
