"""``Pipeline``: source -> letterbox -> windows -> backend -> tracker -> per-frame results.

    pipeline = Pipeline("artifacts/tevit", window=5, stride=3)
    for result in pipeline.run("video.mp4"):       # or pipeline.process(frames) + flush()
        for track in result:
            print(result.index, track.track_id, track.class_name, track.score, track.box)

A frame's result comes out once no later window can change it (latency = stride frames plus
compute). Frame size changes mid-stream: ``size_change="reletterbox"`` (default) letterboxes
each frame on its own and maps its masks back to its own size; ``"error"`` raises
``FrameSizeError``. Sinks that need one size (YTVIS JSON) refuse a change themselves.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from runtime.assemble import MASK_FORMATS, FrameAssembler, render_frame
from runtime.backends import Backend, open_backend
from runtime.errors import ConfigError, FrameSizeError
from runtime.instances import decode_outputs
from runtime.manifest import load_manifest
from runtime.results import FrameResult
from runtime.sources import FrameSource, open_source
from runtime.sources.base import bgr_to_rgb
from runtime.timing import StageTimer
from runtime.tracking import Tracker
from runtime.tracking.ifc_official import OFFICIAL_WINDOW, NearOnlineTracker
from runtime.types import Frame
from runtime.windows import Letterbox, PreparedFrame, Window, Windower, check_window, pad_cyclic

log = logging.getLogger("runtime.pipeline")

MODES = ("deployment", "benchmark")
SIZE_CHANGE_POLICIES = ("reletterbox", "error")


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
        _check_choice("mode", mode, MODES)
        _check_choice("mask_format", mask_format, MASK_FORMATS)
        _check_choice("size_change", size_change, SIZE_CHANGE_POLICIES)
        self.manifest = load_manifest(artifacts)
        length = window if window is not None else self.manifest.window[0]
        stride = stride if stride is not None else self.manifest.window[1]
        check_window(length, stride, max_frames=self.manifest.frames_range[2])
        self.window_length, self.stride = length, stride
        self.mode, self.score_threshold = mode, score_threshold
        self.mask_format, self.size_change, self.keep_images = mask_format, size_change, keep_images
        self.class_names = tuple(self.manifest.classes)
        self.tracker = make_tracker(tracker, mode)
        if isinstance(self.tracker, NearOnlineTracker) and (length, stride) != (OFFICIAL_WINDOW, 1):
            log.warning("ifc-official tracking runs with window %d, stride %d; IFC's official "
                        "schedule is window %d, stride 1", length, stride, OFFICIAL_WINDOW)
        self.assembler = FrameAssembler(policy=overlap)
        self.windower = Windower(length, stride)
        self.timer = StageTimer()
        self._fill = np.clip(np.round(self.manifest.mean), 0, 255).astype(np.uint8)
        options = {"device": device, "precision": precision, "threads": threads,
                   "stages": stages}
        self.backend = backend if isinstance(backend, Backend) else open_backend(
            self.manifest, backend, **options)
        self.backend.activate()  # fail before any frame: sha256, providers, engine I/O
        self.reset()

    # -- public API ------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: frame indices and track IDs restart."""
        self.tracker.reset()
        self.windower.reset()
        self.assembler.reset()
        self.timer.reset()
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        self._stream_size: tuple[int, int] | None = None
        self._arrival: dict[int, float] = {}
        self._clock_start: float | None = None
        self._outbox: deque[FrameResult] = deque()
        self.frames_in = self.frames_out = 0

    def run(self, source: str | int | Path | FrameSource, *,
            max_frames: int | None = None) -> Iterator[FrameResult]:
        """Yield a ``FrameResult`` per frame of ``source`` (a SOURCE spec or an open source).

        Starts a new stream (``reset``). At the end of the source (or ``max_frames``) pending
        frames are flushed. If you stop iterating early, call ``flush()`` for the frames still
        pending.
        """
        self.reset()
        owned = not isinstance(source, FrameSource)
        src = open_source(source) if owned else source
        try:
            frames = iter(src)
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
                src.close()

    def process(self, frames: np.ndarray | Iterable[np.ndarray], *,
                bgr: bool = False) -> list[FrameResult]:
        """Feed frames from your own capture loop; return the results that became final.

        ``frames``: one uint8 ``[H, W, 3]`` image or a sequence of them (RGB, or BGR with
        ``bgr=True``). Timestamps are wall-clock seconds since the first frame. Call
        ``flush()`` at the end of the stream.
        """
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = [frames]
        now = time.monotonic()
        self._clock_start = now if self._clock_start is None else self._clock_start
        results: list[FrameResult] = []
        for image in frames:
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
                raise ValueError("process() expects uint8 [H, W, 3] images, got "
                                 f"{getattr(image, 'dtype', type(image))} "
                                 f"{getattr(image, 'shape', '')}")
            rgb = bgr_to_rgb(image) if bgr else image
            frame = Frame(self.frames_in, time.monotonic() - self._clock_start, rgb)
            results.extend(self._push(frame))
        return results

    def flush(self) -> list[FrameResult]:
        """End of stream: run the final (end-aligned) window and return every pending frame."""
        results = list(self._outbox)
        self._outbox.clear()
        return results + self._flush_windows()

    def _flush_windows(self) -> list[FrameResult]:
        window = self.windower.flush()
        results = self._run_window(window) if window is not None else []
        return results + self._emit_final(self.windower.final_before)

    def summary(self) -> dict:
        """backend (and how auto chose it), frames, tracks created, latency mean/p95 (ms) and
        per-stage timing."""
        mean_ms, p95_ms = self.timer.latency_ms()
        return {"backend": self.backend.selection or self.backend.name,
                "frames": self.frames_out, "tracks": self.tracker.num_created,
                "latency_mean_ms": mean_ms, "latency_p95_ms": p95_ms,
                "stages": self.timer.summary(self.frames_out)}

    def close(self) -> None:
        self.backend.deactivate()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- stages ----------------------------------------------------------------------------
    def _push(self, frame: Frame) -> list[FrameResult]:
        arrival = time.perf_counter()
        with self.timer.stage("letterbox"):
            prepared = self._prepare(frame)
        self._arrival[frame.index] = arrival
        self.frames_in += 1
        window = self.windower.push(prepared)
        return self._run_window(window) if window is not None else []

    def _prepare(self, frame: Frame) -> PreparedFrame:
        size = frame.size
        if self._stream_size is not None and size != self._stream_size:
            if self.size_change == "error":
                raise FrameSizeError(
                    f"frame {frame.index} is {size[1]}x{size[0]} but the stream started at "
                    f"{self._stream_size[1]}x{self._stream_size[0]}; use size_change="
                    "'reletterbox' (CLI --on-size-change reletterbox) to letterbox each frame "
                    "on its own")
            log.warning("frame %d: size changed from %s to %s; re-letterboxing",
                        frame.index, self._stream_size, size)
        self._stream_size = size
        letterbox = self._letterboxes.get(size)
        if letterbox is None:
            if len(self._letterboxes) > 8:
                self._letterboxes.clear()
            letterbox = Letterbox.fit(size, self.manifest.input_hw)
            self._letterboxes[size] = letterbox
            warn_about_padding(letterbox, self.manifest)
        return PreparedFrame(frame, letterbox.apply(frame.image, self._fill), letterbox)

    def _run_window(self, window: Window) -> list[FrameResult]:
        n = len(window.frames)
        t_min, _, t_max = self.manifest.frames_range
        target = t_max if self.manifest.fixed_frames else max(n, t_min)
        content_hw = np.array([window.content_hw], np.int32)  # [1, 2]
        with self.timer.stage("inference"):
            outputs = self.backend.infer(pad_cyclic(window.stack(), target)[None], content_hw)
        with self.timer.stage("tracking"):
            instances = decode_outputs(outputs, num_frames=n, num_classes=len(self.class_names),
                                       min_score=self.tracker.continue_score,
                                       content_hw=window.content_hw)
            ids = self.tracker.update(instances, window.frame_indices)
            self.assembler.add(window, instances, ids, self.tracker)
        return self._emit_final(self.windower.final_before)

    def _emit_final(self, before: int) -> list[FrameResult]:
        results = []
        min_score = self.score_threshold if self.mode == "deployment" else 0.0
        for prepared, entries in self.assembler.pop_final(before):
            with self.timer.stage("paste"):
                result = render_frame(prepared, entries, class_names=self.class_names,
                                      min_score=min_score, mask_format=self.mask_format,
                                      keep_image=self.keep_images)
            arrival = self._arrival.pop(prepared.frame.index, None)
            if arrival is not None:
                latency = time.perf_counter() - arrival
                self.timer.add("latency", latency)
                result = replace(result, latency_ms=latency * 1e3)
            self.frames_out += 1
            results.append(result)
        return results


PADDING_WARNING = 0.10  # share of the model input that is letterbox padding


def warn_about_padding(letterbox: Letterbox, manifest) -> float:
    """Warn when the source's aspect ratio leaves more than ``PADDING_WARNING`` of the model input
    as padding, naming the export of a matching artifact; return the padded share.

    The models' official inference never pads (IFC, VisTR) or reads the image size only for its
    proposals (TeViT): with padding, the mask heads' normalisations still see it (docs/contract.md).
    """
    (ch, cw), (h, w) = letterbox.content_hw, letterbox.dst_hw
    padded = 1.0 - (ch * cw) / (h * w)
    if padded > PADDING_WARNING:
        fit = f"{-(-ch // 32) * 32}x{-(-cw // 32) * 32}"
        log.warning(
            "source %dx%d fills only %dx%d of the %dx%d model input (%.0f%% letterbox padding); "
            "for the exact official computation export an artifact for this aspect ratio: make "
            "export MODEL=%s PRESET=%s INPUT_SIZE=%s", letterbox.src_hw[1], letterbox.src_hw[0],
            cw, ch, w, h, 100 * padded, manifest.model, manifest.data["preset"], fit)
    return padded


TRACKERS = ("default", "ifc-official")


def make_tracker(tracker: Tracker | NearOnlineTracker | str | None, mode: str):
    """A tracker instance from a name in ``TRACKERS`` (None = ``default``) or the instance itself."""
    if tracker is None or tracker == "default":
        return default_tracker(mode)
    if tracker == "ifc-official":
        return NearOnlineTracker()
    if isinstance(tracker, str):
        raise ConfigError(f"tracker must be one of {', '.join(TRACKERS)} or a Tracker; got {tracker!r}")
    return tracker


def default_tracker(mode: str) -> Tracker:
    """Deployment: the Tracker defaults (conservative births). Benchmark: low-score rows may
    start and extend tracks (continue 0.01, birth 0.05, as IFC/IDOL keep class hypotheses above
    0.01-0.05), because YTVIS AP rewards extra low-score hypotheses."""
    if mode == "benchmark":
        return Tracker(continue_score=0.01, birth_score=0.05)
    return Tracker()


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
