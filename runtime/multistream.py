"""``MultiStreamPipeline``: many sources through one model in one process.

    with MultiStreamPipeline("artifacts/tevit", ["front.mp4", "rtsp://10.0.0.5/ch1"]) as multi:
        for stream_id, result in multi.run():       # each stream's frames in order
            print(stream_id, result.index, result.track_ids)
        print(multi.summary())

One backend serves every stream; each stream has its own letterbox (so its own ``content_hw``
row), windows, tracker and frame assembly (runtime.stream_state). Windows of ready streams go
to the engine together, up to the manifest's batch max, waiting at most ``max_batch_wait_ms``
for more (runtime.batching). Decode (a thread per source), inference and post-processing run
concurrently (runtime.staged). A stream's results equal a single-stream ``Pipeline`` run of the
same source (tests/runtime/test_rt_multistream.py). A source that ends or fails ends its own
stream (logged, and in ``reports``); the others go on.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from runtime.backends import Backend
from runtime.errors import ConfigError
from runtime.manifest import load_manifest
from runtime.pipeline import open_pipeline_backend
from runtime.results import FrameResult
from runtime.settings import check_at_least, check_non_negative
from runtime.sources import FrameSource, ReconnectPolicy, open_source
from runtime.staged import StagedRun, StreamInput, StreamReport
from runtime.stream_names import check_names, unique_names
from runtime.stream_state import StreamSettings, StreamState, check_options, make_tracker
from runtime.timing import StageTimer
from runtime.tracking import Tracker

log = logging.getLogger("runtime.multistream")

DEFAULT_MAX_BATCH_WAIT_MS = 50.0


class MultiStreamPipeline:
    """Several sources, one model: yields ``(stream_id, FrameResult)``.

    Args:
        artifacts: directory with manifest.json and the model files.
        sources: SOURCE specs or open ``FrameSource``s; a list (stream ids derived from the
            sources, runtime.stream_names) or a mapping stream id -> source.
        max_batch: windows per engine call (default and upper bound: the manifest's batch max;
            1 runs the streams unbatched).
        max_batch_wait_ms: longest wait for more windows once one is ready (latency vs batch
            size; 0 sends whatever is ready).
        max_frames: stop each stream after this many frames.
        fps, reconnect: how SOURCE specs are opened (``runtime.sources.open_source``).
        close_sources: also close the open ``FrameSource``s given in ``sources`` (each when its
            stream ends); sources opened from SOURCE specs are always closed.
        tracker: a name (``default``, ``ifc-official``), a ``Tracker`` (copied for each stream)
            or a callable returning a new tracker.
        The other options are ``Pipeline``'s, applied to every stream.
    Attributes:
        names: stream ids in source order. reports: stream id -> ``StreamReport`` (status,
        frames read, error). batch_sizes: engine batch size -> batches run.
    """

    def __init__(self, artifacts: str | Path, sources: Sequence | Mapping, *,
                 backend: str | Backend = "onnxruntime", device: str = "auto",
                 precision: str = "fp32", window: int | None = None, stride: int | None = None,
                 mode: str = "deployment", overlap: str = "average", score_threshold: float = 0.3,
                 mask_format: str = "bool", size_change: str = "reletterbox",
                 keep_images: bool = True, tracker: Tracker | str | Callable | None = None,
                 threads: int = 0, stages: str = "auto", max_batch: int | None = None,
                 max_batch_wait_ms: float = DEFAULT_MAX_BATCH_WAIT_MS,
                 max_frames: int | None = None, fps: float | None = None,
                 reconnect: ReconnectPolicy | None = None, close_sources: bool = False) -> None:
        options = {"mode": mode, "overlap": overlap, "score_threshold": score_threshold,
                   "mask_format": mask_format, "size_change": size_change,
                   "keep_images": keep_images}
        check_options(**options)
        self.max_batch_wait_s = check_non_negative("max_batch_wait_ms", max_batch_wait_ms) / 1e3
        if max_frames is not None:
            check_at_least("max_frames", max_frames, 1)
        self.names, specs = _named(sources)
        self.manifest = load_manifest(artifacts)
        self.max_batch = _check_max_batch(max_batch, self.manifest.batch_range[2])
        self.settings = StreamSettings.checked(self.manifest, window=window, stride=stride,
                                               **options)
        self.max_frames, self._closed, self._run = max_frames, False, None
        self.streams = {name: StreamState(self.settings, _tracker(tracker, mode), name=name)
                        for name in self.names}
        self.sources: dict[str, FrameSource] = {}
        self._owned: set[str] = set()
        try:
            for name, spec in zip(self.names, specs, strict=True):
                self.sources[name] = spec if isinstance(spec, FrameSource) else open_source(
                    spec, fps=fps, reconnect=reconnect)
                if close_sources or not isinstance(spec, FrameSource):
                    self._owned.add(name)
            self.backend = open_pipeline_backend(self.manifest, backend, device=device,
                                                 precision=precision, threads=threads,
                                                 stages=stages)
        except BaseException:
            self._close_sources()
            raise
        _widen_feature_cache(self.backend, len(self.names), self.manifest.frames_range[2])
        self.timer = StageTimer()  # the engine's stage; each stream's state has its own timer
        self.reports = {name: StreamReport(name, self.sources[name].description)
                        for name in self.names}

    @property
    def batch_sizes(self) -> dict[int, int]:
        return dict(self._run.batch_sizes) if self._run is not None else {}

    def run(self) -> Iterator[tuple[str, FrameResult]]:
        """Yield ``(stream_id, FrameResult)`` until every stream has ended (or ``stop()`` was
        called and the frames read so far are out); each stream's frames come in order.
        Raises an engine error after the last result. Runs once per pipeline. If you stop
        iterating early, ``flush()`` returns the frames still pending."""
        if self._closed or self._run is not None:
            raise RuntimeError("a MultiStreamPipeline runs its sources once and is then "
                               "closed; create a new one to stream again")
        inputs = {name: StreamInput(self.sources[name], self.streams[name], self.max_frames,
                                    owned=name in self._owned) for name in self.names}
        self._run = StagedRun(inputs, self.backend, max_batch=self.max_batch,
                              max_wait_s=self.max_batch_wait_s, timer=self.timer,
                              on_stream_end=_report_end)
        self.reports = self._run.reports
        yield from self._run.results()

    def stop(self, stream_id: str | None = None) -> None:
        """Stop reading one stream (``stream_id``) or all; keep iterating ``run()`` to get the
        frames read so far. Safe to call from a signal handler."""
        if stream_id is not None and stream_id not in self.streams:
            raise ConfigError(f"no stream {stream_id!r}; streams: {', '.join(self.names)}")
        if self._run is not None:
            self._run.stop(stream_id)
        else:
            for name, source in self.sources.items():
                if stream_id in (None, name):
                    source.request_stop()

    request_stop = stop  # what runtime.stream_loop.StopFlag calls on Ctrl-C

    def flush(self) -> list[tuple[str, FrameResult]]:
        """The results drained when ``run()``'s generator was closed early."""
        leftover = list(self._run.leftover) if self._run is not None else []
        if self._run is not None:
            self._run.leftover.clear()
        return leftover

    def summary(self) -> dict:
        """Frames, tracks and latency over all streams and per stream, engine batch sizes and
        per-stage timing (stream stages added up, inference once)."""
        states = self.streams.values()
        frames = sum(state.frames_out for state in states)
        combined = StageTimer.combined([state.timer for state in states] + [self.timer])
        mean_ms, p95_ms = combined.latency_ms()
        per_stream = {}
        for name, state in self.streams.items():
            report = self.reports[name]
            s_mean, s_p95 = state.timer.latency_ms()
            per_stream[name] = {"frames": state.frames_out, "tracks": state.tracker.num_created,
                                "status": report.status, "error": report.error,
                                "source": report.description, "latency_mean_ms": s_mean,
                                "latency_p95_ms": s_p95}
        return {"frames": frames, "tracks": sum(s["tracks"] for s in per_stream.values()),
                "latency_mean_ms": mean_ms, "latency_p95_ms": p95_ms,
                "stages": combined.summary(frames), "batches": dict(sorted(
                    self.batch_sizes.items())), "streams": per_stream}

    def close(self) -> None:
        """Release the model (and the sources this pipeline opened, if it never ran)."""
        if not self._closed:
            self._closed = True
            if self._run is None:
                self._close_sources()
            self.backend.deactivate()

    def _close_sources(self) -> None:
        for name in self._owned:
            if name in self.sources:
                self.sources[name].close()

    def __enter__(self) -> MultiStreamPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _named(sources: Sequence | Mapping) -> tuple[list[str], list]:
    if isinstance(sources, Mapping):
        names, specs = check_names([str(k) for k in sources], len(sources)), list(sources.values())
    elif isinstance(sources, (str, Path, FrameSource)) or not isinstance(sources, Sequence):
        raise ConfigError("sources must be a list of SOURCE specs or open sources, or a "
                          f"mapping name -> source; got {type(sources).__name__}")
    else:
        names, specs = unique_names(sources), list(sources)
    if not specs:
        raise ConfigError("no sources given; pass at least one SOURCE")
    return names, specs


def _check_max_batch(max_batch: int | None, manifest_max: int) -> int:
    if max_batch is None:
        return manifest_max
    check_at_least("max_batch", max_batch, 1)
    if max_batch > manifest_max:
        raise ConfigError(f"max_batch={max_batch} is more than the artifact accepts (batch.max="
                          f"{manifest_max} in manifest.json); use {manifest_max} or less, or "
                          "re-export with a larger batch range")
    return max_batch


def _tracker(tracker, mode: str):
    """A new tracker for one stream (trackers hold a stream's tracks: never shared)."""
    if isinstance(tracker, (str, type(None))):
        return make_tracker(tracker, mode)
    if callable(tracker) and not hasattr(tracker, "update"):
        return tracker()
    return copy.deepcopy(tracker)


def _widen_feature_cache(backend: Backend, streams: int, max_frames: int) -> None:
    """The two-stage backend caches per-frame features of recent windows (two windows' worth
    by default); with several streams interleaved, keep that much per stream."""
    cache = getattr(backend, "cache", None)
    if cache is not None and hasattr(cache, "capacity"):
        cache.capacity = max(cache.capacity, 2 * max_frames * streams)


def _report_end(report: StreamReport) -> None:
    if report.status == "failed":
        log.error("stream %s (%s) failed after %d frames: %s; its frames so far are delivered, "
                  "the other streams go on", report.name, report.description,
                  report.frames_read, report.error)
    elif report.status in ("disconnected", "truncated"):
        log.warning("stream %s (%s) ended early (%s) after %d frames; the other streams go on",
                    report.name, report.description, report.status, report.frames_read)
    else:
        log.info("stream %s (%s): %s after %d frames", report.name, report.description,
                 report.status, report.frames_read)
