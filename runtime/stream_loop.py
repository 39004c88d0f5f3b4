"""The streaming loop of ``python -m runtime.stream``: source -> pipeline -> every output.

Ctrl-C: the first one stops reading and flushes the frames already read to every output (a
live source waiting to reconnect wakes up at once); the second one raises KeyboardInterrupt.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass

from runtime.pipeline import Pipeline
from runtime.progress import Progress
from runtime.sinks import DisplaySink, SinkGroup

log = logging.getLogger("runtime.stream")


class StopFlag:
    """Installs the SIGINT handler for a run; ``restore()`` puts the previous one back."""

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


@dataclass
class StreamOutcome:
    """What a run did: ``frames`` taken by at least one output (every frame when there are
    none), stopped by Ctrl-C or by ``error`` (a processing error; output failures are in the
    ``SinkGroup``; the stream also stops once every output has failed)."""

    frames: int = 0
    interrupted: bool = False
    error: Exception | None = None


def stream(pipeline: Pipeline, source, sinks: SinkGroup, *, max_frames: int | None,
           progress: Progress, stop: StopFlag, outcome: StreamOutcome) -> StreamOutcome:
    """Run ``source`` through the pipeline into ``sinks``, filling ``outcome`` as it goes.

    A processing error (``RuntimeError``/``ValueError``) ends the stream after the pending
    frames are delivered (best effort); it is returned in ``outcome.error``, not raised. The
    stream also ends once every output has failed. KeyboardInterrupt (second Ctrl-C) propagates.
    """
    display = next((s for s in sinks if isinstance(s, DisplaySink)), None)
    results = pipeline.run(source, max_frames=max_frames)

    def deliver(result) -> None:
        with pipeline.timer.stage("sinks"):
            sinks.write(result)
        if not sinks.all_failed:  # a frame no output took is not counted as written
            outcome.frames += 1
        progress.update(outcome.frames, tracks=pipeline.tracker.num_created,
                        latency_ms=result.latency_ms)

    try:
        try:
            for result in results:
                deliver(result)
                if stop.set or sinks.all_failed or (display is not None
                                                    and display.stop_requested):
                    break
            else:
                outcome.interrupted = stop.set  # the source ended, maybe because Ctrl-C stopped it
                return outcome
        except (RuntimeError, ValueError) as err:
            outcome.error = err
            _salvage(pipeline, deliver)
            return outcome
        results.close()  # stops reading the source; the frames read so far are still pending
        outcome.interrupted = stop.set or (display is not None and display.stop_requested)
        if not sinks.all_failed:
            for result in pipeline.flush():
                deliver(result)
        return outcome
    finally:
        progress.finish()


def _salvage(pipeline: Pipeline, deliver) -> None:
    """After a processing error, still deliver the frames that were pending (best effort)."""
    try:
        for result in pipeline.flush():
            deliver(result)
    except Exception as err:
        log.error("could not flush the pending frames after the error: %s", err)
