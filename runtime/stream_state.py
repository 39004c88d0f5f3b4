"""The state of one video stream: letterbox, windows, tracker and frame assembly.

``Pipeline`` holds one ``StreamState``, ``MultiStreamPipeline`` one per source; both share one
backend, which keeps nothing between calls. A state has three parts, each driven by one stage
(in the pipelined runtime, runtime.staged, each stage is a thread of its own):

1. ``prepare``: letterbox a decoded frame (the source's reader);
2. ``window_job`` / ``final_job``: cut the prepared frames into windows, each a ``WindowJob``
   for the engine (the scheduler, which batches jobs of many streams);
3. ``absorb``: decode the engine's outputs for one job, track, assemble and render the frames
   that became final (post-processing).

A part touches only its own members (1: the letterboxes; 2: the windower; 3: the tracker and
the assembler), so the three may run concurrently. A job carries ``final_before`` (the
windower's value when the job was cut), so the post-processing never reads the windower.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from runtime.assemble import MASK_FORMATS, OVERLAP_POLICIES, FrameAssembler, render_frame
from runtime.errors import ConfigError, FrameSizeError
from runtime.instances import decode_outputs
from runtime.manifest import Manifest
from runtime.results import FrameResult
from runtime.settings import check_fraction
from runtime.timing import StageTimer
from runtime.tracking import Tracker
from runtime.tracking.ifc_official import NearOnlineTracker
from runtime.types import Frame
from runtime.windows import Letterbox, PreparedFrame, Window, Windower, check_window, pad_cyclic

log = logging.getLogger("runtime.pipeline")

MODES = ("deployment", "benchmark")
SIZE_CHANGE_POLICIES = ("reletterbox", "error")
TRACKERS = ("default", "ifc-official")
PADDING_WARNING = 0.10  # share of the model input that is letterbox padding
MAX_LETTERBOXES = 8  # frame sizes remembered per stream


@dataclass(frozen=True)
class StreamSettings:
    """What every stream of a run shares (``Pipeline`` documents each option)."""

    manifest: Manifest
    window: int
    stride: int
    mode: str = "deployment"
    overlap: str = "average"
    score_threshold: float = 0.3
    mask_format: str = "bool"
    size_change: str = "reletterbox"
    keep_images: bool = True

    @classmethod
    def checked(cls, manifest: Manifest, *, window: int | None = None, stride: int | None = None,
                **options) -> StreamSettings:
        """Settings with the manifest's window by default; ``ConfigError`` for a value out of
        range."""
        check_options(**options)
        length = window if window is not None else manifest.window[0]
        stride = stride if stride is not None else manifest.window[1]
        check_window(length, stride, max_frames=manifest.frames_range[2])
        return cls(manifest=manifest, window=length, stride=stride, **options)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.classes)

    @property
    def min_score(self) -> float:
        """Tracks below this score are left out of a frame's result."""
        return self.score_threshold if self.mode == "deployment" else 0.0

    def engine_frames(self, n: int) -> int:
        """T of the engine input for a window of ``n`` frames: a fixed-T artifact (VisTR) takes
        frames.max, the window padded cyclically (windows.pad_cyclic); a dynamic-T one takes
        the window as it is (at least frames.min)."""
        t_min, _, t_max = self.manifest.frames_range
        return t_max if self.manifest.fixed_frames else max(n, t_min)


@dataclass(frozen=True)
class WindowJob:
    """One window of one stream on its way to the engine and back.

    ``window`` is None for the end of a stream with no frame left to run: the job then only
    releases the pending frames. ``frames``: T of the engine input (``engine_frames``); rows of
    one engine batch share it. ``ready_s``: ``time.perf_counter()`` when the window became
    ready (its last frame's ``arrival_s``; when the job was cut if that is unknown).
    """

    stream: StreamState
    window: Window | None
    final_before: int
    frames: int
    ready_s: float

    def clip(self) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` engine input of the window (cyclically padded to T)."""
        return pad_cyclic(self.window.stack(), self.frames)


class StreamState:
    """Letterbox, windower, tracker and assembler of one stream (module docstring).

    Args:
        settings: the run's ``StreamSettings``.
        tracker: this stream's own tracker (never shared between streams).
        name: the stream's id in multi-stream runs (``WindowJob.stream.name``).
    """

    def __init__(self, settings: StreamSettings, tracker, *, name: str = "0") -> None:
        self.settings, self.tracker, self.name = settings, tracker, name
        self.windower = Windower(settings.window, settings.stride)
        self.assembler = FrameAssembler(policy=settings.overlap)
        self.timer = StageTimer()
        self._fill = np.clip(np.round(settings.manifest.mean), 0, 255).astype(np.uint8)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: frame indices and track IDs restart."""
        self.tracker.reset()
        self.windower.reset()
        self.assembler.reset()
        self.timer.reset()
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        self._stream_size: tuple[int, int] | None = None
        self.frames_in = self.frames_out = 0

    # -- 1. prepare (reader) -----------------------------------------------------------------
    def prepare(self, frame: Frame, arrival_s: float | None = None) -> PreparedFrame:
        """Letterbox ``frame`` into the model input; ``arrival_s`` (perf_counter when it was
        decoded) starts its latency. ``FrameSizeError`` for a new size under policy ``error``."""
        arrival_s = time.perf_counter() if arrival_s is None else arrival_s
        with self.timer.stage("letterbox"):
            letterbox = self._letterbox_for(frame)
            image = letterbox.apply(frame.image, self._fill)
        return PreparedFrame(frame, image, letterbox, arrival_s=arrival_s)

    def _letterbox_for(self, frame: Frame) -> Letterbox:
        size = frame.size
        if self._stream_size is not None and size != self._stream_size:
            if self.settings.size_change == "error":
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
            if len(self._letterboxes) > MAX_LETTERBOXES:
                self._letterboxes.clear()
            letterbox = Letterbox.fit(size, self.settings.manifest.input_hw)
            self._letterboxes[size] = letterbox
            warn_about_padding(letterbox, self.settings.manifest)
        return letterbox

    # -- 2. windows (scheduler) --------------------------------------------------------------
    def window_job(self, prepared: PreparedFrame) -> WindowJob | None:
        """Add the next prepared frame; a ``WindowJob`` when it completes a window."""
        self.frames_in += 1
        window = self.windower.push(prepared)
        return self._job(window) if window is not None else None

    def final_job(self) -> WindowJob:
        """End of stream: the end-aligned window over frames no window covered yet (or none),
        releasing every pending frame once absorbed."""
        return self._job(self.windower.flush())

    def _job(self, window: Window | None) -> WindowJob:
        final_before = self.windower.final_before
        if window is None:
            return WindowJob(self, None, final_before, 0, time.perf_counter())
        ready = window.frames[-1].arrival_s  # the window is ready once its last frame is
        ready = time.perf_counter() if ready is None else ready
        return WindowJob(self, window, final_before,
                         self.settings.engine_frames(len(window.frames)), ready)

    # -- 3. absorb (post-processing) ---------------------------------------------------------
    def absorb(self, job: WindowJob, outputs: dict[str, np.ndarray] | None,
               row: int = 0) -> list[FrameResult]:
        """Fold row ``row`` of the engine ``outputs`` (batched, docs/contract.md) for ``job``
        into the tracks; return the frames that became final, in frame order.

        ``outputs=None``: the job's window was lost (engine error); frames covered only by it
        are not delivered, the others are."""
        window = job.window
        if window is not None and outputs is not None:
            with self.timer.stage("tracking"):
                instances = decode_outputs(
                    outputs, num_frames=len(window.frames), batch_index=row,
                    num_classes=len(self.settings.class_names),
                    min_score=self.tracker.continue_score, content_hw=window.content_hw)
                ids = self.tracker.update(instances, window.frame_indices)
                self.assembler.add(window, instances, ids, self.tracker)
        return self.emit_final(job.final_before)

    def emit_final(self, before: int) -> list[FrameResult]:
        """Render the pending frames with index < ``before`` (``FrameResult`` each)."""
        results = []
        settings = self.settings
        for prepared, entries in self.assembler.pop_final(before):
            with self.timer.stage("paste"):
                result = render_frame(prepared, entries, class_names=settings.class_names,
                                      min_score=settings.min_score,
                                      mask_format=settings.mask_format,
                                      keep_image=settings.keep_images)
            if prepared.arrival_s is not None:
                latency = time.perf_counter() - prepared.arrival_s
                self.timer.add("latency", latency)
                result = replace(result, latency_ms=latency * 1e3)
            self.frames_out += 1
            results.append(result)
        return results


def check_options(*, mode: str = "deployment", overlap: str = "average",
                  score_threshold: float = 0.3, mask_format: str = "bool",
                  size_change: str = "reletterbox", keep_images: bool = True) -> None:
    """``ConfigError`` for an option out of range (callers check before loading anything)."""
    _check_choice("mode", mode, MODES)
    _check_choice("mask_format", mask_format, MASK_FORMATS)
    _check_choice("size_change", size_change, SIZE_CHANGE_POLICIES)
    _check_choice("overlap policy", overlap, OVERLAP_POLICIES)
    check_fraction("score_threshold", score_threshold)


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
