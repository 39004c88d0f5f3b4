"""Windows of many streams into engine batches: ``WindowExchange`` and ``batch_inputs``.

Reader threads put prepared frames into a bounded lane per stream; the scheduler (one thread)
cuts them into ``WindowJob``s with each stream's windower and takes batches:

- rows of one batch share T, the engine input's frame count (``StreamSettings.engine_frames``).
  A fixed-T artifact (VisTR) pads every window cyclically to frames.max, as VisTR's official
  inference pads short clips (Epiphqny/VisTR inference.py:185-193, outputs cut back to the real
  length at :204-205), so all its windows batch together. A dynamic-T artifact (TeViT, IFC) gets
  each window as it is: a short final window is never padded or cut to match another stream
  (its frames attend to each other, so that would change its result); it goes in a batch of its
  own T.
- up to ``max_batch`` rows (the manifest's batch max), oldest job first, one row per stream in a
  round before a stream's next job; a batch leaves once it is full, once every stream that can
  still deliver has a job in it, or ``max_wait_s`` after its oldest window became ready (its
  last frame was decoded).
- a stream whose reader is slow, stalled or gone only ever delays a batch by ``max_wait_s``.

Backpressure: a reader waits while its lane holds ``frame_capacity`` frames; the scheduler cuts
frames into jobs only while the stream has fewer than ``job_capacity`` jobs waiting. ``stop()``
closes every lane: readers' later frames are refused, the frames already in are cut and the
streams flushed (end-aligned final windows) without waiting for any reader.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable, Mapping

import numpy as np

from runtime.stream_state import StreamState, WindowJob


class _Lane:
    """One stream's frames and jobs inside the exchange."""

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self.frames: deque = deque()
        self.jobs: deque[WindowJob] = deque()
        self.reading = True  # the reader may still put frames
        self.flushed = False  # the final job was cut: no job after those in ``jobs``

    @property
    def done(self) -> bool:
        return self.flushed and not self.jobs


class WindowExchange:
    """Per-stream lanes of frames and window jobs; ``next_batch`` hands out engine batches.

    Args:
        streams: stream id -> its ``StreamState``.
        max_batch: rows per batch (the manifest's batch max, or fewer).
        max_wait_s: longest wait for more rows once a job is ready.
        frame_capacity, job_capacity: lane bounds (module docstring).
        clock: seconds, the clock of ``WindowJob.ready_s`` (``time.perf_counter``).
    """

    def __init__(self, streams: Mapping[Hashable, StreamState], *, max_batch: int,
                 max_wait_s: float, frame_capacity: int, job_capacity: int = 2,
                 clock=time.perf_counter) -> None:
        self._lanes = {key: _Lane(state) for key, state in streams.items()}
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.frame_capacity, self.job_capacity = max(1, frame_capacity), max(1, job_capacity)
        self._clock = clock
        self._cv = threading.Condition()
        self._aborted = False

    # -- readers -----------------------------------------------------------------------------
    def put_frame(self, key: Hashable, prepared) -> bool:
        """Queue a prepared frame, waiting while the lane is full; False once the lane is
        closed (stop): the reader should end."""
        lane = self._lanes[key]
        with self._cv:
            while lane.reading and len(lane.frames) >= self.frame_capacity:
                self._cv.wait()
            if not lane.reading:
                return False
            lane.frames.append(prepared)
            self._cv.notify_all()
            return True

    def end_stream(self, key: Hashable) -> None:
        """The reader is done (source ended, failed or stopped): flush the stream."""
        with self._cv:
            self._lanes[key].reading = False
            self._cv.notify_all()

    # -- control -----------------------------------------------------------------------------
    def stop(self, key: Hashable | None = None) -> None:
        """Close one lane (``key``) or all: frames already in are still cut and flushed."""
        with self._cv:
            for lane_key, lane in self._lanes.items():
                if key is None or lane_key == key:
                    lane.reading = False
            self._cv.notify_all()

    def abort(self) -> None:
        """Drop everything: ``next_batch`` returns None, readers' puts are refused."""
        with self._cv:
            self._aborted = True
            for lane in self._lanes.values():
                lane.reading = False
                lane.frames.clear()
                lane.jobs.clear()
            self._cv.notify_all()

    # -- scheduler ---------------------------------------------------------------------------
    def next_batch(self) -> list[WindowJob] | None:
        """The next batch (jobs of one T, plus end-of-stream jobs without a window), in the
        order their results must be absorbed; None when every stream is done (or aborted)."""
        with self._cv:
            while not self._aborted:
                self._cut_jobs()
                heads = [lane.jobs[0] for lane in self._lanes.values() if lane.jobs]
                if not heads:
                    if all(lane.done for lane in self._lanes.values()):
                        return None
                    self._cv.wait()
                    continue
                oldest = min(heads, key=lambda job: job.ready_s)
                wait = oldest.ready_s + self.max_wait_s - self._clock()
                if wait <= 0 or self._complete(oldest):
                    return self._take(oldest)
                self._cv.wait(wait)
            return None

    def _cut_jobs(self) -> None:
        """Move frames into each stream's windower (within the job bound, unbounded once the
        lane is closed) and cut the final job of streams whose reader ended."""
        taken = False
        for lane in self._lanes.values():
            while lane.frames and (len(lane.jobs) < self.job_capacity or not lane.reading):
                job = lane.state.window_job(lane.frames.popleft())
                taken = True
                if job is not None:
                    lane.jobs.append(job)
            if not lane.reading and not lane.frames and not lane.flushed:
                lane.jobs.append(lane.state.final_job())
                lane.flushed = True
        if taken:
            self._cv.notify_all()  # readers waiting for room

    def _complete(self, oldest: WindowJob) -> bool:
        """Whether to send now: no more rows can join (full, or every stream that may still
        deliver is in), or the oldest job needs no engine run."""
        if oldest.window is None:
            return True
        rows = sum(self._matching(lane, oldest.frames) for lane in self._lanes.values())
        if rows >= self.max_batch:
            return True
        return all(lane.jobs or lane.done for lane in self._lanes.values())

    @staticmethod
    def _matching(lane: _Lane, frames: int) -> int:
        """Jobs at the head of ``lane`` with engine T ``frames`` (the ones a batch may take)."""
        count = 0
        for job in lane.jobs:
            if job.window is None or job.frames != frames:
                break
            count += 1
        return count

    def _take(self, oldest: WindowJob) -> list[WindowJob]:
        """Up to ``max_batch`` jobs of ``oldest``'s T, round-robin over the streams by the age
        of their head job; end-of-stream jobs without a window ride along."""
        lanes = sorted((lane for lane in self._lanes.values() if lane.jobs),
                       key=lambda lane: lane.jobs[0].ready_s)
        batch, rows, progress = [], 0, True
        while progress:
            progress = False
            for lane in lanes:
                if not lane.jobs:
                    continue
                head = lane.jobs[0]
                if head.window is None:
                    batch.append(lane.jobs.popleft())
                elif head.frames == oldest.frames and rows < self.max_batch:
                    batch.append(lane.jobs.popleft())
                    rows, progress = rows + 1, True
        self._cv.notify_all()
        return batch


def batch_inputs(jobs: list[WindowJob]) -> tuple[np.ndarray, np.ndarray]:
    """Jobs sharing T -> (uint8 ``[B, T, H, W, 3]`` clips, int32 ``[B, 2]`` content_hw): each
    row carries its own stream's real image size inside the letterbox."""
    frames = {job.frames for job in jobs}
    if len(frames) != 1:
        raise ValueError(f"rows of one engine batch must share T; got T = {sorted(frames)}")
    clips = np.stack([job.clip() for job in jobs])
    content_hw = np.array([job.window.content_hw for job in jobs], np.int32)
    return clips, content_hw
