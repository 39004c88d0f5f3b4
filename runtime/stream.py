"""``python -m runtime.stream SOURCE --artifacts DIR``: stream a source through a VIS model.

Exit codes: 0 done, 1 error while processing (finished frames are still written), 2 bad
arguments / source / artifact / output path (nothing processed), 130 stopped with Ctrl-C
(every frame processed so far is written; a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from runtime.errors import (
    ArtifactError,
    BackendUnavailableError,
    ConfigError,
    ManifestError,
    SinkError,
    SourceError,
)
from runtime.pipeline import MODES, SIZE_CHANGE_POLICIES, Pipeline
from runtime.progress import Progress, format_summary
from runtime.sinks import (
    DisplaySink,
    JsonlEventSink,
    OverlayVideoSink,
    Sink,
    YtvisJsonSink,
    ensure_writable,
)
from runtime.sources import open_source

log = logging.getLogger("runtime.stream")
SETUP_ERRORS = (SourceError, ManifestError, ArtifactError, ConfigError, BackendUnavailableError,
                SinkError)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.stream", description=__doc__.split("\n")[0])
    p.add_argument("source", help="camera index (0, camera0), video file, rtsp:// or http:// "
                   "URL, image folder, or a quoted glob")
    p.add_argument("--artifacts", required=True, help="artifact directory with manifest.json")
    p.add_argument("--backend", default="auto",
                   choices=["auto", "onnxruntime", "openvino", "tensorrt"],
                   help="auto (default): a TensorRT plan on an NVIDIA GPU when one fits, "
                        "OpenVINO on the CPU when installed, else onnxruntime; the summary "
                        "says which")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="onnxruntime execution provider (default: CUDA if present, else CPU)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--window", type=int, help="frames per window T (default: manifest)")
    p.add_argument("--stride", type=int, help="step S between windows, 1 <= S < T")
    p.add_argument("--out", help="overlay video (.mp4) with masks, boxes, IDs and scores")
    p.add_argument("--json", help="YouTube-VIS results JSON")
    p.add_argument("--events", help="JSONL file, one line per frame")
    p.add_argument("--show", action="store_true", help="display frames (needs GUI OpenCV)")
    p.add_argument("--max-frames", type=int, help="stop after N frames")
    p.add_argument("--score", type=float, default=0.3, help="deployment-mode score threshold")
    p.add_argument("--mode", default="deployment", choices=MODES)
    p.add_argument("--overlap", default="average", choices=["average", "latest"],
                   help="output of frames covered by several windows")
    p.add_argument("--on-size-change", default="reletterbox", choices=SIZE_CHANGE_POLICIES)
    p.add_argument("--video-id", type=int, default=1, help="video_id written to --json")
    p.add_argument("--fps", type=float, help="frame rate for image folders and the overlay")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--tracker", default="default", choices=["default", "ifc-official"],
                   help="post-tracker: ours (default) or IFC's official near-online linking "
                        "(use with --window 5 --stride 1)")
    p.add_argument("--stages", default="auto", choices=["auto", "one", "two"],
                   help="onnxruntime: use the two-stage export (per-frame features computed once "
                        "across overlapping windows) when the manifest lists one (auto), never "
                        "(one) or always (two)")
    p.add_argument("--quiet", action="store_true", help="no progress output or info logs")
    return p


def open_sinks(args, *, num_classes: int, fps: float) -> list[Sink]:
    sinks: list[Sink] = []
    try:
        if args.show:
            sinks.append(DisplaySink())
        if args.out:
            sinks.append(OverlayVideoSink(args.out, fps=fps))
        if args.json:
            sinks.append(YtvisJsonSink(args.json, num_classes=num_classes,
                                       video_id=args.video_id, mode=args.mode))
        if args.events:
            sinks.append(JsonlEventSink(args.events))
    except Exception:
        close_sinks(sinks)
        raise
    return sinks


def close_sinks(sinks: list[Sink]) -> None:
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # one failing sink must not stop the others from flushing
            log.error("closing %s failed: %s", type(sink).__name__, err)


class _StopFlag:
    """First SIGINT asks for a clean stop (and wakes a reconnecting source); the second one
    raises KeyboardInterrupt."""

    def __init__(self, source) -> None:
        self.set = False
        self._source = source
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.set = True
        if hasattr(self._source, "request_stop"):
            self._source.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log.warning("Ctrl-C: finishing pending frames and flushing outputs (again to abort)")

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def stream(pipeline: Pipeline, source, sinks: list[Sink], *, max_frames: int | None,
           progress: Progress) -> bool:
    """Run ``source`` through the pipeline into ``sinks``; True when stopped by Ctrl-C/q."""
    stop = _StopFlag(source)
    display = next((s for s in sinks if isinstance(s, DisplaySink)), None)
    results = pipeline.run(source, max_frames=max_frames)

    def deliver(result) -> None:
        with pipeline.timer.stage("sinks"):
            for sink in sinks:
                sink.write(result)
        progress.update(pipeline.frames_out, tracks=pipeline.tracker.num_created,
                        latency_ms=result.latency_ms)

    try:
        try:
            for result in results:
                deliver(result)
                if stop.set or (display is not None and display.stop_requested):
                    break
            else:
                return stop.set  # the source ended, possibly because Ctrl-C stopped it
        except (RuntimeError, ValueError):
            _salvage(pipeline, deliver)
            raise
        results.close()  # stops reading the source; the frames read so far are still pending
        for result in pipeline.flush():
            deliver(result)
        return True
    finally:
        stop.restore()
        progress.finish()


def _salvage(pipeline: Pipeline, deliver) -> None:
    """After a processing error, still deliver the frames that were pending (best effort)."""
    try:
        for result in pipeline.flush():
            deliver(result)
    except Exception as err:
        log.error("could not flush the pending frames after the error: %s", err)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        for path in (args.out, args.json, args.events):
            if path:
                ensure_writable(path)  # fail before loading anything
        source = open_source(args.source, fps=args.fps)
        pipeline = Pipeline(args.artifacts, backend=args.backend, device=args.device,
                            precision=args.precision, window=args.window, stride=args.stride,
                            mode=args.mode, overlap=args.overlap, score_threshold=args.score,
                            size_change=args.on_size_change, keep_images=bool(args.out or args.show),
                            threads=args.threads, stages=args.stages, tracker=args.tracker)
        sinks = open_sinks(args, num_classes=len(pipeline.class_names),
                           fps=args.fps or source.fps)
    except SETUP_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = source.total_frames
    if args.max_frames is not None and total is not None:
        total = min(total, args.max_frames)
    progress = Progress(total=total if not source.is_live else None,
                        label=source.description, enabled=not args.quiet)
    start, code, interrupted = time.monotonic(), 0, False
    try:
        interrupted = stream(pipeline, source, sinks, max_frames=args.max_frames,
                             progress=progress)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("aborted (second Ctrl-C): pending frames dropped, outputs closed", file=sys.stderr)
        code = 130
    finally:
        close_sinks(sinks)
        source.close()
        pipeline.close()
    print(format_summary(pipeline.summary(), wall_s=time.monotonic() - start,
                         interrupted=interrupted), file=sys.stderr)
    return 130 if interrupted and code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
