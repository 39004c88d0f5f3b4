"""Soak: a long stream with every file output on, sampling memory and open file descriptors.

    nice python bench/soak.py [--minutes 30] [--max-frames N] [--size 192x320]
        [--artifacts DIR] [--threads 1] [--sample-s 30] [--warmup-s 120]
        [--outputs out,json,events] [--overlay o.mp4|o.mkv] [--out-dir DIR]
    nice python bench/soak.py --writer-probe   # overlay writer memory per container

A small clip of moving coloured squares (``--clip-frames``, written once as MP4) is decoded
again from the file on every pass (so captures are opened and closed all the time) and looped
with continuous frame indices and timestamps, through ``Pipeline`` into the overlay video, the
YTVIS JSON and the JSONL events (``runtime.sinks.SinkGroup``, as ``python -m runtime.stream``
does). Without ``--artifacts`` the contract graph of the tests (tests/runtime/rt_fixtures.py)
is built at the clip size, so inference is cheap and the run exercises everything around it.

Every ``--sample-s`` seconds: elapsed time, frames, process RSS (/proc/self/status VmRSS), open
file descriptors (/proc/self/fd) and the bytes the YTVIS sink holds (it keeps every RLE mask
until the end by design, so it is the one part expected to grow; the figure lets its growth be
told apart from a leak). Prints a markdown series and the growth after ``--warmup-s``:
flat = RSS growth below 1 % and no fd growth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

import rt_fixtures as F  # noqa: E402

from runtime.pipeline import Pipeline  # noqa: E402
from runtime.sinks import JsonlEventSink, OverlayVideoSink, SinkGroup, YtvisJsonSink  # noqa: E402
from runtime.sources import VideoFileSource  # noqa: E402
from runtime.sources.base import FrameSource  # noqa: E402
from runtime.types import Frame  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ytvis_held_kb(sink: YtvisJsonSink | None) -> float:
    """Memory of the RLE masks the YTVIS sink holds (its by-design growth), estimated with
    ``sys.getsizeof`` of each mask's dict, counts string, size list and its per-frame slot."""
    if sink is None:
        return 0.0
    held = 0
    for log in sink._tracks.values():
        held += sys.getsizeof(log.rles)
        for rle in log.rles.values():
            held += (sys.getsizeof(rle) + sys.getsizeof(rle["counts"])
                     + sys.getsizeof(rle["size"]) + 2 * 28)  # + the 2 size ints
    return held / 1024


class LoopedFile(FrameSource):
    """Decode ``path`` again and again (a fresh capture per pass) until ``deadline`` or
    ``max_frames``; indices and timestamps continue across passes."""

    def __init__(self, path: Path, *, deadline: float, max_frames: int | None) -> None:
        super().__init__()
        self.path, self.deadline, self.max_frames = path, deadline, max_frames
        self.description = f"{path} (looped)"
        self.passes = 0

    def __iter__(self):
        index, offset = 0, 0.0
        while not self.stop_requested and time.monotonic() < self.deadline:
            with VideoFileSource(self.path) as source:
                last = 0.0
                for frame in source:
                    if self.max_frames is not None and index >= self.max_frames:
                        return
                    yield Frame(index, offset + frame.timestamp_s, frame.image)
                    index, last = index + 1, frame.timestamp_s
                offset += last + 1.0 / source.fps
            self.passes += 1


def build_inputs(args, work: Path) -> tuple[Path, Path]:
    h, w = args.size
    frames, _ = F.make_clip(args.clip_frames, size=(h, w), side=max(12, h // 6),
                            objects={0: ((h * 0.1, 0.0), (0.0, w / 60)),
                                     1: ((h * 0.5, w * 0.8), (0.0, -w / 80)),
                                     2: ((0.0, w * 0.4), (h / 70, 0.0))})
    clip = F.write_mp4(work / "clip.mp4", frames, fps=30)
    artifacts = Path(args.artifacts) if args.artifacts else \
        F.build_contract_artifacts(work / "contract", height=h, width=w)
    return clip, artifacts


def soak(args) -> list[tuple]:
    work = Path(args.out_dir or tempfile.mkdtemp(prefix="soak-"))
    work.mkdir(parents=True, exist_ok=True)
    clip, artifacts = build_inputs(args, work)
    start = time.monotonic()
    source = LoopedFile(clip, deadline=start + args.minutes * 60, max_frames=args.max_frames)
    pipeline = Pipeline(artifacts, device="cpu", threads=args.threads, keep_images=True)
    outputs, ytvis = {}, None
    if "out" in args.outputs:
        outputs["--out"] = OverlayVideoSink(work / args.overlay, fps=30.0)
    if "json" in args.outputs:
        ytvis = outputs["--json"] = YtvisJsonSink(work / "r.json",
                                                  num_classes=len(pipeline.class_names))
    if "events" in args.outputs:
        outputs["--events"] = JsonlEventSink(work / "e.jsonl")
    sinks = SinkGroup(outputs)
    series, next_sample, frames = [], start, 0
    try:
        for result in pipeline.run(source):
            sinks.write(result)
            frames += 1
            now = time.monotonic()
            if now >= next_sample:
                series.append((now - start, frames, rss_mb(), open_fds(), ytvis_held_kb(ytvis),
                               pipeline.tracker.num_created, source.passes))
                print("| {:.0f} | {} | {:.1f} | {} | {:.0f} | {} | {} |".format(*series[-1]),
                      flush=True)
                next_sample = now + args.sample_s
        series.append((time.monotonic() - start, frames, rss_mb(), open_fds(),
                       ytvis_held_kb(ytvis), pipeline.tracker.num_created, source.passes))
    finally:
        failures = sinks.close()
        pipeline.close()
    for failure in failures:
        print(f"output failure: {failure.describe()}")
    print(f"outputs in {work}: " + ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB"
                                             for p in sorted(work.glob("*.*")) if p.is_file()))
    return series


def report(series: list[tuple], warmup_s: float) -> None:
    print("| elapsed s | frames | RSS MiB | open fds | YTVIS held KiB | tracks | passes |")
    print("|---|---|---|---|---|---|---|")
    for row in series:
        print("| {:.0f} | {} | {:.1f} | {} | {:.0f} | {} | {} |".format(*row))
    after = [row for row in series if row[0] >= warmup_s] or series[-1:]
    first, last = after[0], series[-1]
    growth = last[2] - first[2]
    held = (last[4] - first[4]) / 1024
    print(f"\nafter warm-up ({first[0]:.0f} s, frame {first[1]}) to the end ({last[0]:.0f} s, "
          f"frame {last[1]}): RSS {first[2]:.1f} -> {last[2]:.1f} MiB ({growth:+.1f} MiB, "
          f"{growth / first[2] * 100:+.2f} %), of which YTVIS-held RLE {held:+.2f} MiB; "
          f"open fds {first[3]} -> {last[3]}; {last[1] / max(last[0], 1e-9):.1f} frames/s")
    verdict = abs(growth - held) / first[2] < 0.01 and last[3] <= first[3]
    print(f"flat (< 1 % RSS growth beyond the YTVIS-held masks, no fd growth): {verdict}")


WRITER_PROBES = ((".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "mp4v"))


def writer_growth(work: Path, size: tuple[int, int], frames: int = 40_000) -> None:
    """RSS growth of an OpenCV ``VideoWriter`` alone per container (the muxer's index), over
    the frames after the first 5,000; the writer is released afterwards."""
    h, w = size
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
    print("| container | codec | growth B/frame |\n|---|---|---|")
    for suffix, fourcc in WRITER_PROBES:
        path = work / f"writer{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, (w, h))
        base = None
        for i in range(frames):
            writer.write(image)
            base = rss_mb() if i == 5000 else base
        grown = (rss_mb() - base) * 2**20 / (frames - 5001)
        writer.release()
        path.unlink(missing_ok=True)
        print(f"| {suffix} | {fourcc} | {grown:.0f} |", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--size", default="192x320", help="clip (and contract input) HxW")
    p.add_argument("--clip-frames", type=int, default=90)
    p.add_argument("--artifacts", default=None, help="default: the contract graph at --size")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--sample-s", type=float, default=30.0)
    p.add_argument("--warmup-s", type=float, default=120.0)
    p.add_argument("--outputs", default="out,json,events",
                   help="comma-separated outputs to write: out (overlay MP4), json (YTVIS; holds "
                        "every mask until the end), events (JSONL)")
    p.add_argument("--writer-probe", action="store_true",
                   help="only measure the overlay writer's memory per frame per container")
    p.add_argument("--overlay", default="o.mp4",
                   help="overlay file name: its container picks the writer as in --out (.mp4/.mkv: "
                        "H.264 through PyAV when installed, else OpenCV mp4v; .avi: OpenCV)")
    p.add_argument("--out-dir", default=None, help="where the outputs go (default: a temp dir)")
    args = p.parse_args(argv)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    args.outputs = {name.strip() for name in args.outputs.split(",") if name.strip()}
    unknown = args.outputs - {"out", "json", "events"}
    if unknown:
        p.error(f"--outputs: unknown {sorted(unknown)}; choose from out, json, events")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cv2.setNumThreads(1)
    if args.writer_probe:
        writer_growth(Path(args.out_dir or tempfile.mkdtemp(prefix="soak-")), args.size)
        return 0
    print(f"soak: {args.minutes} min, size {args.size[0]}x{args.size[1]}, threads "
          f"{args.threads}, outputs {','.join(sorted(args.outputs))}, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    print("live samples: | elapsed s | frames | RSS MiB | open fds | YTVIS held KiB | tracks | "
          "passes |", flush=True)
    series = soak(args)
    print()
    report(series, args.warmup_s)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
