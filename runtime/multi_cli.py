"""``python -m runtime.stream SRC [SRC ...] --artifacts A --out-dir DIR``: many sources, one
model, one process (``runtime.stream`` routes here when ``--out-dir`` is given).

Each stream writes ``DIR/<stream>/overlay.mp4``, ``results.json`` (YouTube-VIS) and
``events.jsonl`` (``--outputs`` picks which); stream names come from the sources
(runtime.stream_names) or ``--names``. Exit codes are ``runtime.stream``'s: 0 done; 1 a stream
failed, the engine failed or an output failed (everything processed is written, the failure is
named); 2 refused before the first frame; 130 Ctrl-C (every frame read so far is written).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.progress import Progress, format_summary
from runtime.serving.client_options import add_triton_options, check_triton_options
from runtime.settings import (
    check_at_least,
    check_fourcc,
    check_fraction,
    check_non_negative,
    check_positive,
)
from runtime.stream_cli import SETUP_ERRORS, _output_lines, add_model_options

log = logging.getLogger("runtime.stream")
OUTPUT_FILES = {"overlay": "overlay.mp4", "results": "results.json", "events": "events.jsonl"}


def wants_multi(argv: list[str]) -> bool:
    """Whether ``argv`` asks for the multi-stream command line (it names ``--out-dir``)."""
    return any(arg == "--out-dir" or arg.startswith("--out-dir=") for arg in argv)


def build_parser() -> argparse.ArgumentParser:
    from runtime.multistream import DEFAULT_MAX_BATCH_WAIT_MS
    from runtime.sources import ReconnectPolicy
    from runtime.stream_state import MODES, SIZE_CHANGE_POLICIES

    p = argparse.ArgumentParser(prog="python -m runtime.stream",
                                description="Stream several sources through one VIS model in "
                                            "one process, their windows batched.")
    p.add_argument("sources", nargs="+", help="cameras (0, camera0), video files, rtsp:// or "
                   "http:// URLs, image folders or quoted globs")
    p.add_argument("--artifacts", required=True, help="artifact directory with manifest.json")
    p.add_argument("--out-dir", required=True, help="outputs per stream: DIR/<stream>/"
                   "overlay.mp4, results.json, events.jsonl")
    p.add_argument("--outputs", default="overlay,results,events",
                   help="which outputs each stream writes (comma list of overlay, results, "
                        "events; default all)")
    p.add_argument("--names", help="stream names, comma list in source order (default: from "
                   "the sources: file stem, folder name, camera0, URL host and path)")
    p.add_argument("--max-batch-wait-ms", type=float, default=DEFAULT_MAX_BATCH_WAIT_MS,
                   help="longest wait for more streams' windows once one is ready (default "
                        "%(default)g; 0 sends whatever is ready)")
    p.add_argument("--max-batch", type=int, help="windows per engine call (default: the "
                   "manifest's batch max; 1 runs the streams unbatched)")
    add_model_options(p)
    p.add_argument("--fourcc", default="mp4v", help="overlay codec (default mp4v)")
    p.add_argument("--max-frames", type=int, help="stop each stream after N >= 1 frames")
    p.add_argument("--score", type=float, default=0.3, help="deployment-mode score threshold")
    p.add_argument("--mode", default="deployment", choices=MODES)
    p.add_argument("--overlap", default="average", choices=["average", "latest"])
    p.add_argument("--on-size-change", default="reletterbox", choices=SIZE_CHANGE_POLICIES)
    p.add_argument("--fps", type=float, help="frame rate for image folders and the overlays")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--reconnect", type=int, default=ReconnectPolicy.max_attempts,
                   help="live sources: retries when an open fails or a stream is lost")
    p.add_argument("--tracker", default="default", choices=["default", "ifc-official"])
    p.add_argument("--stages", default="auto", choices=["auto", "one", "two"])
    p.add_argument("--quiet", action="store_true", help="no progress output or info logs")
    add_triton_options(p)  # --server, --model, ... (runtime.serving.client_options)
    return p


def check_settings(args: argparse.Namespace) -> None:
    """``ConfigError`` for a setting out of range, before anything is opened or loaded."""
    from runtime.errors import ConfigError

    check_fraction("--score", args.score)
    for flag, value in (("--max-frames", args.max_frames), ("--max-batch", args.max_batch)):
        if value is not None:
            check_at_least(flag, value, 1)
    if args.fps is not None:
        check_positive("--fps", args.fps)
    check_at_least("--threads", args.threads, 0, hint=" (0: onnxruntime's default)")
    check_at_least("--reconnect", args.reconnect, 0)
    check_non_negative("--max-batch-wait-ms", args.max_batch_wait_ms)
    check_fourcc(args.fourcc)
    check_triton_options(args)
    unknown = set(output_kinds(args)) - set(OUTPUT_FILES)
    if unknown or not output_kinds(args):
        raise ConfigError(f"--outputs takes a comma list of {', '.join(OUTPUT_FILES)}; got "
                          f"{args.outputs!r}")


def output_kinds(args: argparse.Namespace) -> list[str]:
    return [kind.strip() for kind in args.outputs.split(",") if kind.strip()]


def stream_outputs(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, Path]]:
    """Stream name -> output kind -> file, under ``--out-dir``."""
    root = Path(args.out_dir)
    return {name: {kind: root / name / OUTPUT_FILES[kind] for kind in output_kinds(args)}
            for name in names}


def run(argv: list[str]) -> int:
    """Parse ``argv``, start up, stream; return the exit code (KeyboardInterrupt while starting
    propagates: ``runtime.stream.main`` turns it into 130)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from runtime.multi_setup import setup

    try:
        multi, groups = setup(args)
    except SETUP_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _run(args, multi, groups)


@dataclass
class MultiOutcome:
    """Frames taken by at least one output, per stream; Ctrl-C; an engine error."""

    frames: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    error: Exception | None = None


def _run(args, multi, groups) -> int:
    from runtime.stream_loop import StopFlag

    progress = Progress(total=None, label=f"{len(groups)} streams", enabled=not args.quiet)
    start, stop = time.monotonic(), StopFlag(multi)
    outcome = MultiOutcome(frames={name: 0 for name in groups})
    try:
        try:
            _stream(multi, groups, progress, stop, outcome)
        finally:
            failures = [f for group in groups.values() for f in group.close()]
            multi.close()
    except KeyboardInterrupt:
        print("aborted (second Ctrl-C): pending frames dropped, outputs closed", file=sys.stderr)
        return 130
    finally:
        stop.restore()
    failed_streams = _report(args, multi, groups, outcome, failures, time.monotonic() - start)
    if outcome.error is not None or failures or failed_streams:
        return 1
    return 130 if outcome.interrupted else 0


def _stream(multi, groups, progress: Progress, stop, outcome: MultiOutcome) -> None:
    """Every result to its stream's outputs. A stream whose outputs all failed stops reading;
    an engine error (raised after the last result) ends up in ``outcome.error``."""
    silenced: set[str] = set()
    try:
        for name, result in multi.run():
            group = groups[name]
            with multi.streams[name].timer.stage("sinks"):
                group.write(result)
            if not group.all_failed:
                outcome.frames[name] += 1
            elif name not in silenced:
                silenced.add(name)
                multi.stop(name)  # nothing left to write its frames to
            progress.update(sum(outcome.frames.values()), latency_ms=result.latency_ms,
                            tracks=sum(s.tracker.num_created for s in multi.streams.values()))
    except Exception as err:  # recorded by the runtime, raised after the last result
        outcome.error = err
    finally:
        progress.finish()
    outcome.interrupted = stop.set


def _report(args, multi, groups, outcome: MultiOutcome, failures, wall_s: float) -> list[str]:
    """Print errors and the summary; return the streams that failed."""
    summary = multi.summary()
    failed = [name for name, s in summary["streams"].items() if s["status"] == "failed"]
    if outcome.error is not None:
        print(f"error: {outcome.error}", file=sys.stderr)
    for name in failed:
        stream = summary["streams"][name]
        print(f"error: stream {name} ({stream['source']}) failed: {stream['error']}",
              file=sys.stderr)
    for failure in failures:
        print(f"error: output {failure.describe()}", file=sys.stderr)
    outputs, streams = [], []
    for name, stream in summary["streams"].items():
        streams.append(f"stream {name} ({stream['source']}): {stream['status']}, "
                       f"{outcome.frames[name]} frames, {stream['tracks']} tracks, latency p95 "
                       f"{stream['latency_p95_ms']:.0f} ms")
        outputs += [f"{name} {line}" for line in _output_lines(groups[name])]
    batches = ", ".join(f"{n} x B={b}" for b, n in summary["batches"].items()) or "none"
    text = format_summary(summary | {"frames": sum(outcome.frames.values())}, wall_s=wall_s,
                          interrupted=outcome.interrupted, failed=outcome.error is not None,
                          outputs=outputs)
    print("\n".join([text, *streams, f"engine batches: {batches}"]), file=sys.stderr)
    return failed
