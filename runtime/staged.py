"""Pipelined execution: decode, inference and post-processing run concurrently.

    reader per source --frames--> WindowExchange --batch--> inference thread --outputs-->
    post-processing thread --(stream id, FrameResult)--> the caller (writes the sinks)

A reader decodes and letterboxes its source's frames; the inference thread takes batches of
windows (runtime.batching) and runs the backend; the post-processing thread decodes the
outputs, tracks, assembles and pastes the final frames; the caller's thread takes the results.
Every hand-over is bounded (lane sizes, two batches, ``RESULT_BURSTS`` batches' results), so a slow
stage slows the ones before it down instead of piling up frames. onnxruntime, OpenCV's decode
and resize and numpy's large operations release the GIL, so the stages overlap.

The order of everything a stream produces is the sequential order: one scheduler cuts each
stream's windows in frame order, batches are run and absorbed in the order they were formed,
so results equal the sequential path's (tests/runtime/test_rt_multistream.py).

End of stream, ``stop()`` (Ctrl-C) and closing the results generator drain: readers stop, the
frames read so far are windowed and flushed, and every finished frame comes out (closing puts
them into ``leftover``). ``abort()`` (second Ctrl-C) drops what is pending.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from runtime.batching import WindowExchange, batch_inputs
from runtime.sources import FrameSource
from runtime.stream_state import StreamState, WindowJob
from runtime.timing import StageTimer

log = logging.getLogger("runtime.staged")

RESULT_BURSTS = 2  # engine batches' worth of finished frames waiting for the caller
BATCH_QUEUE = 2  # engine batches waiting for post-processing
POLL_S = 0.1  # how often a blocked hand-over looks for an abort
READER_JOIN_S = 10.0  # > the 5 s FFmpeg read timeout of network streams
_DONE = object()


@dataclass
class StreamInput:
    """A source, its stream state, at most ``max_frames`` frames; ``owned``: the reader closes
    the source when it ends."""

    source: FrameSource
    state: StreamState
    max_frames: int | None = None
    owned: bool = False


@dataclass
class StreamReport:
    """How a stream went: ``status`` running, ended, truncated, disconnected, max-frames,
    stopped or failed (``error`` says why); ``frames_read`` frames went into the pipeline."""

    name: str
    description: str
    status: str = "running"
    frames_read: int = 0
    error: BaseException | None = None


class StagedRun:
    """One pipelined run over ``inputs`` (stream id -> ``StreamInput``) with one backend.

    Args:
        backend: an active ``Backend``; only the inference thread calls it.
        max_batch, max_wait_s: batching (runtime.batching.WindowExchange).
        timer: receives the ``inference`` stage (the streams' timers get the others).
        on_stream_end: called with a stream's ``StreamReport`` when its reader ends (from the
            reader's thread).
    Attributes:
        reports: stream id -> ``StreamReport``.
        batch_sizes: engine batch size -> how many batches of it ran.
        error: the first engine or post-processing error (raised by ``results`` at the end).
        leftover: finished results drained after the results generator was closed.
    """

    def __init__(self, inputs: dict[Hashable, StreamInput], backend, *, max_batch: int,
                 max_wait_s: float, timer: StageTimer, on_stream_end=None) -> None:
        self.inputs, self.backend, self.timer = inputs, backend, timer
        self._on_stream_end = on_stream_end
        window = max(item.state.settings.window for item in inputs.values())
        self.exchange = WindowExchange({k: i.state for k, i in inputs.items()},
                                       max_batch=max_batch, max_wait_s=max_wait_s,
                                       frame_capacity=window)
        self.reports = {k: StreamReport(str(k), i.source.description) for k, i in inputs.items()}
        self.batch_sizes: Counter[int] = Counter()
        self.error: BaseException | None = None
        self.leftover: list[tuple[Hashable, object]] = []
        self._batches: queue.Queue = queue.Queue(BATCH_QUEUE)
        stride = max(item.state.settings.stride for item in inputs.values())
        self._results: queue.Queue = queue.Queue(RESULT_BURSTS * max_batch * stride)
        self._aborted, self._consumer_gone = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._readers: list[threading.Thread] = []

    # -- control (safe from a signal handler: no lock the caller's thread holds) ------------
    def stop(self, key: Hashable | None = None) -> None:
        """Stop reading one stream (``key``) or all; what was read still comes out."""
        for k, item in self.inputs.items():
            if key is None or k == key:
                item.source.request_stop()
        self.exchange.stop(key)

    def abort(self) -> None:
        """Drop every pending frame and end the threads as soon as they can."""
        self._aborted.set()
        for item in self.inputs.values():
            item.source.request_stop()
        self.exchange.abort()

    # -- the caller's side -------------------------------------------------------------------
    def results(self) -> Iterator[tuple[Hashable, object]]:
        """Yield ``(stream id, FrameResult)`` as frames become final, each stream in frame
        order; raise ``error`` after the last one. Closing the generator drains into
        ``leftover``; any other exception (KeyboardInterrupt) aborts."""
        self._start()
        try:
            while (item := self._results.get()) is not _DONE:
                yield item
        except GeneratorExit:
            self._drain_into_leftover()
            raise
        except BaseException:
            self._give_up()
            raise
        finally:
            self._join()
        if self.error is not None:
            raise self.error

    def _drain_into_leftover(self) -> None:
        try:
            self.stop()
            while (item := self._results.get()) is not _DONE:
                self.leftover.append(item)
        except BaseException:
            self._give_up()
            raise

    def _give_up(self) -> None:
        self._consumer_gone.set()
        self.abort()

    def _start(self) -> None:
        for key, item in self.inputs.items():
            thread = threading.Thread(target=self._read, args=(key, item), daemon=True,
                                      name=f"read-{key}")
            self._readers.append(thread)
        self._threads = [threading.Thread(target=self._infer_loop, daemon=True, name="infer"),
                         threading.Thread(target=self._post_loop, daemon=True, name="post")]
        for thread in self._readers + self._threads:
            thread.start()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()
        if self._aborted.is_set():
            return  # a reader inside a blocking read ends (and closes its source) on its own
        deadline = time.monotonic() + READER_JOIN_S
        for thread in self._readers:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s is still inside a read of its source; it ends (and closes the "
                            "source) when that read returns", thread.name)

    # -- stage 1: readers --------------------------------------------------------------------
    def _read(self, key: Hashable, item: StreamInput) -> None:
        report, state = self.reports[key], item.state
        try:
            frames = iter(item.source)
            while item.max_frames is None or report.frames_read < item.max_frames:
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                arrival = time.perf_counter()
                state.timer.add("decode", arrival - start)
                if not self.exchange.put_frame(key, state.prepare(frame, arrival)):
                    break
                report.frames_read += 1
            report.status = _end_status(item, report.frames_read)
        except Exception as err:  # a failing source ends its own stream only
            report.status, report.error = "failed", err
        finally:
            self.exchange.end_stream(key)
            if item.owned:
                item.source.close()
            if self._on_stream_end is not None:
                self._on_stream_end(report)

    # -- stage 2: inference ------------------------------------------------------------------
    def _infer_loop(self) -> None:
        try:
            while (batch := self.exchange.next_batch()) is not None:
                if not self._put(self._batches, self._run_batch(batch), self._aborted):
                    break
        except BaseException as err:  # a defect in batching: nothing more can run
            self._fatal(err)
        finally:
            self._put(self._batches, _DONE, self._aborted)

    def _run_batch(self, batch: list[WindowJob]) -> list[tuple[WindowJob, dict | None, int]]:
        """Run the jobs that have a window as one engine batch -> (job, outputs, row) each."""
        jobs = [job for job in batch if job.window is not None]
        outputs = None
        if jobs:
            clips, content_hw = batch_inputs(jobs)  # [B, T, H, W, 3], [B, 2]
            try:
                with self.timer.stage("inference"):
                    outputs = self.backend.infer(clips, content_hw)
                self.batch_sizes[len(jobs)] += 1
            except Exception as err:  # stop reading; the frames read so far still come out
                streams = sorted({str(job.stream.name) for job in jobs})
                log.error("the engine failed on a batch of %d window(s) of stream(s) %s: %s; "
                          "stopping every stream", len(jobs), ", ".join(streams), err)
                self.error = self.error or err
                self.stop()
        rows = iter(range(len(jobs)))
        return [(job, outputs, next(rows)) if job.window is not None else (job, None, 0)
                for job in batch]

    # -- stage 3: post-processing ------------------------------------------------------------
    def _post_loop(self) -> None:
        try:
            while (batch := self._get(self._batches)) is not _DONE:
                for job, outputs, row in batch:
                    for result in job.stream.absorb(job, outputs, row):
                        self._put(self._results, (job.stream.name, result), self._consumer_gone)
        except BaseException as err:
            self._fatal(err)
        finally:
            self._put(self._results, _DONE, self._consumer_gone)

    def _fatal(self, err: BaseException) -> None:
        self.error = self.error or err
        log.error("stopping every stream after an internal error: %r", err)
        self.abort()

    def _get(self, source: queue.Queue):
        while True:
            try:
                item = source.get(timeout=POLL_S)
            except queue.Empty:
                if self._aborted.is_set():
                    return _DONE
                continue
            return _DONE if self._aborted.is_set() else item

    @staticmethod
    def _put(target: queue.Queue, item, gone: threading.Event) -> bool:
        """Put ``item``, waiting for room; False (dropped) once ``gone`` is set."""
        while not gone.is_set():
            try:
                target.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False


def _end_status(item: StreamInput, frames: int) -> str:
    source = item.source
    if source.disconnected:
        return "disconnected"
    if source.truncated:
        return "truncated"
    if source.stop_requested:
        return "stopped"
    if item.max_frames is not None and frames >= item.max_frames:
        return "max-frames"
    return "ended"
