"""The command line of ``python -m runtime.stream`` (see ``runtime.stream`` for exit codes):
options, range checks, output-path checks, start-up in refusal order, the run and its summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from runtime.backends import BACKEND_CHOICES
from runtime.errors import (
    ArtifactError,
    BackendUnavailableError,
    ConfigError,
    ManifestError,
    SinkError,
    SourceError,
)
from runtime.progress import Progress, format_summary
from runtime.serving.client_options import add_triton_options, check_triton_options
from runtime.settings import check_at_least, check_fourcc, check_fraction, check_positive
from runtime.stream_options import add_options, check_options, resolve_artifacts

log = logging.getLogger("runtime.stream")
SETUP_ERRORS = (SourceError, ManifestError, ArtifactError, ConfigError, BackendUnavailableError,
                SinkError)
OUTPUT_FLAGS = ("--out", "--json", "--events")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model options every streaming command shares: backend, device, precision, window."""
    p.add_argument("--backend", default="auto", choices=list(BACKEND_CHOICES),
                   help="auto (default): a TensorRT plan on an NVIDIA GPU when one fits, "
                        "OpenVINO on the CPU when installed, else onnxruntime; the summary "
                        "says which")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="onnxruntime execution provider (default: CUDA if present, else CPU)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--window", type=int, help="frames per window T (default: manifest)")
    p.add_argument("--stride", type=int, help="step S between windows, 1 <= S < T")


def build_parser() -> argparse.ArgumentParser:
    from runtime.pipeline import MODES, SIZE_CHANGE_POLICIES
    from runtime.sources import ReconnectPolicy

    p = argparse.ArgumentParser(prog="python -m runtime.stream",
                                description="Stream a source through a VIS model.")
    p.add_argument("source", help="camera index (0, camera0), video file, rtsp:// or http:// "
                   "URL, image folder, or a quoted glob")
    p.add_argument("--artifacts", default=None, help="artifact directory with manifest.json "
                   "(default: artifacts/tevit when it exists)")
    add_model_options(p)
    p.add_argument("--out", help="overlay video (.mp4) with masks, boxes, IDs and scores")
    p.add_argument("--fourcc", default=None, help="OpenCV overlay codec (mp4v for .mp4, the "
                   "fallback when H.264 is missing; MJPG for .avi works with every OpenCV build)")
    p.add_argument("--json", help="YouTube-VIS results JSON")
    p.add_argument("--events", help="JSONL file, one line per frame")
    p.add_argument("--show", action="store_true", help="display frames (needs GUI OpenCV)")
    p.add_argument("--max-frames", type=int, help="stop after N >= 1 frames")
    p.add_argument("--score", type=float, default=0.3,
                   help="deployment-mode score threshold in [0, 1]")
    p.add_argument("--mode", default="deployment", choices=MODES)
    p.add_argument("--overlap", default="average", choices=["average", "latest"],
                   help="output of frames covered by several windows")
    p.add_argument("--on-size-change", default="reletterbox", choices=SIZE_CHANGE_POLICIES)
    p.add_argument("--video-id", type=int, default=1, help="video_id written to --json")
    p.add_argument("--fps", type=float, help="frame rate for image folders and the overlay; "
                   "for a video file it replaces the file's own timestamps with index / fps")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--reconnect", type=int, default=ReconnectPolicy.max_attempts,
                   help="live sources: retries when the first open fails or the stream is lost "
                        "(backoff 0.5 s doubling to 8 s; default %(default)s, 0 = none)")
    p.add_argument("--tracker", default="default", choices=["default", "ifc-official"],
                   help="post-tracker: ours (default) or IFC's official near-online linking "
                        "(use with --window 5 --stride 1)")
    p.add_argument("--stages", default="auto", choices=["auto", "one", "two"],
                   help="onnxruntime: use the two-stage export (per-frame features computed once "
                        "across overlapping windows) when the manifest lists one (auto), never "
                        "(one) or always (two)")
    p.add_argument("--quiet", action="store_true", help="no progress output or info logs")
    add_options(p)  # --list-cameras, --codec, --view, --view-host (runtime.stream_options)
    add_triton_options(p)  # --server, --model, ... (runtime.serving.client_options)
    return p


def check_settings(args: argparse.Namespace) -> None:
    """``ConfigError`` for a setting out of range, before anything is opened or loaded."""
    check_fraction("--score", args.score)
    if args.max_frames is not None:
        check_at_least("--max-frames", args.max_frames, 1)
    if args.fps is not None:
        check_positive("--fps", args.fps)
    check_at_least("--threads", args.threads, 0, hint=" (0: onnxruntime's default)")
    check_at_least("--reconnect", args.reconnect, 0)
    if args.fourcc is not None:
        check_fourcc(args.fourcc)
    check_options(args)
    check_triton_options(args)


def output_files(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Option -> the files it writes (the YTVIS JSON also writes its temporary file)."""
    from runtime.sinks import temp_path

    files = {flag: [Path(getattr(args, flag[2:]))] for flag in OUTPUT_FLAGS
             if getattr(args, flag[2:])}
    if "--json" in files:
        files["--json"].append(temp_path(files["--json"][0]))
    return files


def artifact_files(directory: str) -> list[Path]:
    """Files of the artifact directory (no output may replace one)."""
    folder = Path(directory)
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def open_sinks(args, *, num_classes: int, fps: float) -> dict:
    """Label (``--events e.jsonl``) -> sink, in the order they are written."""
    from runtime.sinks import DisplaySink, JsonlEventSink, OverlayVideoSink, ViewSink, YtvisJsonSink

    sinks = {}
    try:
        if args.show:
            sinks["--show"] = DisplaySink()
        if args.out:
            sinks[f"--out {args.out}"] = OverlayVideoSink(args.out, fps=fps, fourcc=args.fourcc,
                                                          codec=args.codec)
        if args.view is not None:
            sinks["--view"] = ViewSink(args.view, host=args.view_host)
        if args.json:
            sinks[f"--json {args.json}"] = YtvisJsonSink(
                args.json, num_classes=num_classes, video_id=args.video_id, mode=args.mode)
        if args.events:
            sinks[f"--events {args.events}"] = JsonlEventSink(args.events)
    except BaseException:
        for sink in sinks.values():
            sink.close()  # nothing was written: closing leaves earlier outputs as they were
        raise
    return sinks


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv``, start up, stream; return the exit code (KeyboardInterrupt while starting
    propagates: ``runtime.stream.main`` turns it into 130)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        source, pipeline, sinks = _setup(args)
    except SETUP_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _run(args, source, pipeline, sinks)


def _setup(args: argparse.Namespace):
    """Start up in refusal order, cheapest first: settings; output paths against each other
    and the artifact files; the source (its first frame decodes); output paths against the
    source files; the outputs (writable, temporary files creatable, codec probed; nothing is
    written yet); the manifest and the model. Whatever was opened is closed on the way out."""
    from runtime.manifest import load_manifest
    from runtime.sinks import SinkGroup, check_output_paths
    from runtime.sources import ReconnectPolicy, open_source

    check_settings(args)
    args.artifacts = resolve_artifacts(args.artifacts)
    outputs = output_files(args)
    check_output_paths(outputs, protected=artifact_files(args.artifacts))
    source = open_source(args.source, fps=args.fps,
                         reconnect=ReconnectPolicy(max_attempts=args.reconnect))
    for warning in unbounded_output_warnings(args, source):
        log.warning("%s", warning)
    sinks, pipeline = {}, None
    try:
        check_output_paths(outputs, sources=source.files)
        classes = load_manifest(args.artifacts).classes
        sinks = open_sinks(args, num_classes=len(classes), fps=args.fps or source.fps)
        pipeline = _load_pipeline(args)
    except BaseException:
        for sink in sinks.values():
            sink.close()  # nothing was written: earlier outputs stay as they were
        source.close()
        raise
    return source, pipeline, SinkGroup(sinks)


def unbounded_output_warnings(args: argparse.Namespace, source) -> list[str]:
    """Outputs whose memory grows with stream length, for a stream with no end (a camera or
    network stream without ``--max-frames``). Measured by ``bench/soak.py``
    (docs/notes/lab-notebook.md, runtime soak): the YTVIS JSON keeps every frame's RLE masks
    until the file is written (~1 KiB a frame for 3 tracks); an MP4 overlay keeps its sample
    index until it is closed (~74 bytes a frame with mp4v; Matroska ~7)."""
    if not source.is_live or getattr(source, "finite", False) or args.max_frames is not None:
        return []
    warnings = []
    if args.json:
        warnings.append(
            f"--json {args.json}: the YouTube-VIS file is written when the stream ends and holds "
            "every frame's masks in memory until then (about 1 KiB a frame per few tracks); on "
            "a stream without an end use --events (constant memory) or set --max-frames")
    if args.out and Path(args.out).suffix.lower() in (".mp4", ".mov", ".m4v"):
        warnings.append(
            f"--out {args.out}: an MP4 keeps its frame index in memory until it is closed (about "
            "74 bytes a frame measured with mp4v, ~190 MiB a day at 30 fps); a .mkv overlay needs "
            "about a tenth")
    return warnings


def _load_pipeline(args: argparse.Namespace):
    from runtime.pipeline import Pipeline
    from runtime.serving.client_options import chosen_backend

    return Pipeline(args.artifacts, backend=chosen_backend(args), device=args.device,
                    precision=args.precision, window=args.window, stride=args.stride,
                    mode=args.mode, overlap=args.overlap, score_threshold=args.score,
                    size_change=args.on_size_change,
                    keep_images=bool(args.out or args.show or args.view is not None),
                    threads=args.threads, stages=args.stages, tracker=args.tracker)


def _run(args: argparse.Namespace, source, pipeline, sinks) -> int:
    from runtime.stream_loop import StopFlag, StreamOutcome, stream

    total = source.total_frames
    if args.max_frames is not None and total is not None:
        total = min(total, args.max_frames)
    progress = Progress(total=total if not source.is_live else None,
                        label=source.description, enabled=not args.quiet)
    start, outcome, stop = time.monotonic(), StreamOutcome(), StopFlag(source)
    try:
        try:
            stream(pipeline, source, sinks, max_frames=args.max_frames, progress=progress,
                   stop=stop, outcome=outcome)
        finally:
            failures = sinks.close()
            source.close()
            pipeline.close()
    except KeyboardInterrupt:
        print("aborted (second Ctrl-C): pending frames dropped, outputs closed", file=sys.stderr)
        return 130
    finally:
        stop.restore()
    if outcome.error is not None:
        print(f"error: {outcome.error}", file=sys.stderr)
    for failure in failures:
        print(f"error: output {failure.describe()}", file=sys.stderr)
    print(format_summary(pipeline.summary() | {"frames": outcome.frames},
                         wall_s=time.monotonic() - start, interrupted=outcome.interrupted,
                         failed=outcome.error is not None or sinks.all_failed,
                         outputs=_output_lines(sinks)),
          file=sys.stderr)
    if outcome.error is not None or failures:
        return 1
    return 130 if outcome.interrupted else 0


def _output_lines(sinks) -> list[str]:
    failed = {f.label: f for f in sinks.failures}
    lines = []
    for label, frames in sinks.written.items():
        note = ""
        if label in failed:
            frame = failed[label].frame
            note = " (FAILED while closing)" if frame is None else f" (FAILED at frame {frame})"
        lines.append(f"{label}: {frames} frames{note}")
    return lines
