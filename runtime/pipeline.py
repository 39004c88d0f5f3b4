"""``Pipeline``: source -> letterbox -> windows -> backend -> tracker -> per-frame results.

    pipeline = Pipeline("artifacts/tevit", window=5, stride=3)
    for result in pipeline.run("video.mp4"):       # or pipeline.process(frames) + flush()
        for track in result:
            print(result.index, track.track_id, track.class_name, track.score, track.box)

A frame's result comes out once no later window can change it (latency = stride frames plus
compute). Frame size changes mid-stream: ``size_change="reletterbox"`` (default) letterboxes
each frame on its own and maps its masks back to its own size; ``"error"`` raises
``FrameSizeError``. Sinks that need one size (YTVIS JSON) refuse a change themselves.

``run()`` is pipelined (runtime.staged): the source is decoded in a thread of its own, the
engine runs in another and tracking and pasting in a third, with the same results as the
sequential loop (``run(..., pipelined=False)``). ``process()`` runs in the caller's thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from runtime.backends import Backend, open_backend
from runtime.batching import batch_inputs
from runtime.manifest import load_manifest
from runtime.results import FrameResult
from runtime.sources import FrameSource, open_source
from runtime.sources.base import to_rgb_frame
from runtime.staged import StagedRun, StreamInput
from runtime.stream_state import (  # noqa: F401  (PADDING_WARNING, ... stay importable here)
    MODES,
    PADDING_WARNING,
    SIZE_CHANGE_POLICIES,
    TRACKERS,
    StreamSettings,
    StreamState,
    WindowJob,
    check_options,
    default_tracker,
    make_tracker,
    warn_about_padding,
)
from runtime.tracking import Tracker
from runtime.tracking.ifc_official import OFFICIAL_WINDOW, NearOnlineTracker
from runtime.types import Frame

log = logging.getLogger("runtime.pipeline")


class Pipeline:
    """Streaming VIS inference driven by an artifact directory's manifest.

    Args:
        artifacts: directory with manifest.json and the model files.
        backend: ``onnxruntime``, ``openvino``, ``tensorrt`` (see ``runtime.backends.BACKENDS``)
            or ``auto`` (the fastest installed for ``device``: runtime.backends.auto), or a
            ``Backend`` instance built for this manifest (e.g. a PyTorch reference runner).
        device: auto, cpu, cuda, tensorrt (onnxruntime's execution provider; OpenVINO: cpu).
        precision: which artifact to load (fp32, fp16, int8).
        window, stride: frames per window T and step S (1 <= S < T); manifest's by default.
        mode: ``deployment`` (one label per track, tracks below ``score_threshold`` hidden) or
            ``benchmark`` (no threshold; per-frame class scores for YTVIS top-K output).
        overlap: overlap-frame policy ``average`` or ``latest`` (runtime.assemble).
        mask_format: ``bool`` (``[H, W]`` arrays) or ``rle`` (COCO compressed RLE dicts).
        size_change: ``reletterbox`` or ``error`` (module docstring).
        keep_images: put the RGB source frame into each result (needed by overlay sinks).
        tracker: a configured ``Tracker``, or a name: ``default`` (``default_tracker(mode)``) or
            ``ifc-official`` (IFC's near-online linking, runtime.tracking.ifc_official; use with
            window=5, stride=1).
        threads: onnxruntime intra-op / OpenVINO inference threads (0 = default).
        stages: onnxruntime and OpenVINO: ``auto`` runs a two-stage export (frame + clip stages, each
            frame's features computed once across overlapping windows) when the manifest lists
            one, ``one`` forces the whole-model graph, ``two`` requires the stages.
    """

    def __init__(self, artifacts: str | Path, *, backend: str | Backend = "onnxruntime",
                 device: str = "auto", precision: str = "fp32", window: int | None = None,
                 stride: int | None = None, mode: str = "deployment", overlap: str = "average",
                 score_threshold: float = 0.3, mask_format: str = "bool",
                 size_change: str = "reletterbox", keep_images: bool = True,
                 tracker: Tracker | str | None = None, threads: int = 0, stages: str = "auto") -> None:
        options = {"mode": mode, "overlap": overlap, "score_threshold": score_threshold,
                   "mask_format": mask_format, "size_change": size_change,
                   "keep_images": keep_images}
        check_options(**options)
        self._closed = False
        self.manifest = load_manifest(artifacts)
        self.settings = StreamSettings.checked(self.manifest, window=window, stride=stride,
                                               **options)
        self._state = StreamState(self.settings, make_tracker(tracker, mode))
        if isinstance(self.tracker, NearOnlineTracker) and \
                (self.window_length, self.stride) != (OFFICIAL_WINDOW, 1):
            log.warning("ifc-official tracking runs with window %d, stride %d; IFC's official "
                        "schedule is window %d, stride 1", self.window_length, self.stride,
                        OFFICIAL_WINDOW)
        self.backend = open_pipeline_backend(self.manifest, backend, device=device,
                                             precision=precision, threads=threads, stages=stages)
        self.reset()

    # -- the stream's state (one StreamState, runtime.stream_state) -------------------------
    window_length = property(lambda self: self.settings.window)
    stride = property(lambda self: self.settings.stride)
    mode = property(lambda self: self.settings.mode)
    score_threshold = property(lambda self: self.settings.score_threshold)
    mask_format = property(lambda self: self.settings.mask_format)
    size_change = property(lambda self: self.settings.size_change)
    keep_images = property(lambda self: self.settings.keep_images)
    class_names = property(lambda self: self.settings.class_names)
    tracker = property(lambda self: self._state.tracker)
    windower = property(lambda self: self._state.windower)
    assembler = property(lambda self: self._state.assembler)
    timer = property(lambda self: self._state.timer)
    frames_in = property(lambda self: self._state.frames_in)
    frames_out = property(lambda self: self._state.frames_out)

    # -- public API ------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: frame indices and track IDs restart."""
        self._state.reset()
        self._clock_start: float | None = None
        self._outbox: deque[FrameResult] = deque()

    def run(self, source: str | int | Path | FrameSource, *, max_frames: int | None = None,
            pipelined: bool = True) -> Iterator[FrameResult]:
        """Yield a ``FrameResult`` per frame of ``source`` (a SOURCE spec or an open source).

        Starts a new stream (``reset``). At the end of the source (or ``max_frames``) pending
        frames are flushed. If you stop iterating early, call ``flush()`` for the frames still
        pending. ``pipelined``: decode, inference and post-processing in threads of their own
        (same results); False runs them one after another in the caller's thread.
        """
        self._check_open()
        self.reset()
        owned = not isinstance(source, FrameSource)
        src = open_source(source) if owned else source
        if pipelined:
            yield from self._run_staged(src, owned, max_frames)
        else:
            yield from self._run_sequential(src, owned, max_frames)

    def _run_staged(self, source: FrameSource, owned: bool,
                    max_frames: int | None) -> Iterator[FrameResult]:
        state = self._state
        staged = StagedRun({state.name: StreamInput(source, state, max_frames, owned)},
                           self.backend, max_batch=1, max_wait_s=0.0, timer=self.timer)
        results = staged.results()
        try:
            for _, result in results:
                yield result
        finally:
            results.close()  # stopped early: drains the frames read so far into leftover
            self._outbox.extend(result for _, result in staged.leftover)
        error = staged.reports[state.name].error
        if error is not None:
            raise error

    def _run_sequential(self, source: FrameSource, owned: bool,
                        max_frames: int | None) -> Iterator[FrameResult]:
        try:
            frames = iter(source)
            while max_frames is None or self.frames_in < max_frames:
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.timer.add("decode", time.perf_counter() - start)
                # results wait in an outbox so a consumer that stops mid-window (Ctrl-C)
                # gets the rest from flush() instead of losing them with the generator
                self._outbox.extend(self._push(frame))
                while self._outbox:
                    yield self._outbox.popleft()
            self._outbox.extend(self._flush_windows())
            while self._outbox:
                yield self._outbox.popleft()
        finally:
            if owned:
                source.close()

    def process(self, frames: np.ndarray | Iterable[np.ndarray], *,
                bgr: bool = False) -> list[FrameResult]:
        """Feed frames from your own capture loop; return the results that became final.

        ``frames``: one image or a sequence of them (a list, or an array ``[N, H, W, C]``), each
        uint8 ``[H, W, 3]`` RGB (BGR with ``bgr=True``); grey ``[H, W]``/``[H, W, 1]`` is
        replicated to RGB and the alpha of ``[H, W, 4]`` dropped. Every frame is checked before
        any is taken: a ``ValueError`` leaves the pipeline as it was. Timestamps are wall-clock
        seconds since the first frame. Call ``flush()`` at the end of the stream.
        """
        self._check_open()
        images = [to_rgb_frame(image, bgr=bgr) for image in _frame_list(frames)]
        results: list[FrameResult] = []
        try:
            for image in images:
                now = time.monotonic()
                self._clock_start = now if self._clock_start is None else self._clock_start
                frame = Frame(self.frames_in, now - self._clock_start, image)
                results.extend(self._push(frame))
        except Exception:
            self._outbox.extend(results)  # final results of this call come from flush()
            raise
        return results

    def flush(self) -> list[FrameResult]:
        """End of stream: run the final (end-aligned) window and return every pending frame."""
        self._check_open()
        results = list(self._outbox)
        self._outbox.clear()
        return results + self._flush_windows()

    def _flush_windows(self) -> list[FrameResult]:
        return self._run_job(self._state.final_job())

    def summary(self) -> dict:
        """backend (and how auto chose it), frames, tracks created, latency mean/p95 (ms) and
        per-stage timing."""
        mean_ms, p95_ms = self.timer.latency_ms()
        return {"backend": self.backend.selection or self.backend.name,
                "frames": self.frames_out, "tracks": self.tracker.num_created,
                "latency_mean_ms": mean_ms, "latency_p95_ms": p95_ms,
                "stages": self.timer.summary(self.frames_out)}

    def close(self) -> None:
        """Release the model; safe to call twice. The pipeline cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self.backend.deactivate()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("pipeline is closed (close() released the model); create a new "
                               "Pipeline to process more frames")

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- stages, one after another ---------------------------------------------------------
    def _push(self, frame: Frame) -> list[FrameResult]:
        job = self._state.window_job(self._state.prepare(frame))
        return self._run_job(job) if job is not None else []

    def _run_job(self, job: WindowJob) -> list[FrameResult]:
        outputs = None
        if job.window is not None:
            clips, content_hw = batch_inputs([job])  # [1, T, H, W, 3], [1, 2]
            with self.timer.stage("inference"):
                outputs = self.backend.infer(clips, content_hw)
        return self._state.absorb(job, outputs)


def open_pipeline_backend(manifest, backend: str | Backend, **options) -> Backend:
    """The named backend (or the given instance), activated: sha256, providers and engine I/O
    are checked before any frame. ``stages`` goes to every named backend (one or two stages)."""
    engine = backend if isinstance(backend, Backend) else open_backend(manifest, backend, **options)
    engine.activate()
    return engine


def _frame_list(frames) -> list:
    """One image (an array of up to 3 dimensions, or anything not iterable) -> [it]; a list,
    tuple, iterable or array ``[N, ...]`` -> its items."""
    if isinstance(frames, np.ndarray):
        return [frames] if frames.ndim <= 3 else list(frames)
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        return [frames]
    return list(frames)

