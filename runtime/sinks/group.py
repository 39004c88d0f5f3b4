"""``SinkGroup``: deliver every frame to every healthy sink; isolate the ones that fail.

A sink that raises while writing is closed at once (keeping what it wrote so far), reported
once in the log and left out from then on; the other sinks still get every frame. ``close()``
closes the rest and returns every failure, so a caller can end the run non-zero naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.results import FrameResult
from runtime.sinks.base import Sink

log = logging.getLogger("runtime.sinks")


@dataclass(frozen=True)
class SinkFailure:
    """``label``'s sink failed at ``frame`` (None: while closing) with ``error``."""

    label: str
    frame: int | None
    error: BaseException

    def describe(self) -> str:
        when = "while closing" if self.frame is None else f"at frame {self.frame}"
        return f"{self.label} failed {when}: {self.error}"


class SinkGroup:
    """Sinks by label (e.g. ``"--events e.jsonl"``), written in order.

    Attributes:
        written: label -> frames that sink accepted.
        failures: every ``SinkFailure`` so far, in the order they happened.
    """

    def __init__(self, sinks: Mapping[str, Sink]) -> None:
        self._sinks = dict(sinks)
        self._healthy = dict(sinks)
        self.written = {label: 0 for label in sinks}
        self.failures: list[SinkFailure] = []
        self._closed = False

    def __iter__(self):
        return iter(self._healthy.values())

    @property
    def all_failed(self) -> bool:
        """True when there were sinks and none is left healthy (no reason to go on)."""
        failed = {f.label for f in self.failures}
        return bool(self._sinks) and failed >= set(self._sinks)

    def write(self, result: FrameResult) -> None:
        """Give ``result`` to every healthy sink; a sink that raises is closed and dropped."""
        for label, sink in list(self._healthy.items()):
            try:
                sink.write(result)
            except Exception as err:  # any sink error: isolate it, the others go on
                self._fail(label, result.index, err)
            else:
                self.written[label] += 1

    def _fail(self, label: str, frame: int, err: Exception) -> None:
        failure = SinkFailure(label, frame, err)
        self.failures.append(failure)
        sink = self._healthy.pop(label)
        log.error("%s; closed it (the frames before stay written), the other outputs go on",
                  failure.describe())
        try:
            sink.close()
        except Exception as close_err:
            log.error("%s: closing after the failure also failed: %s", label, close_err)

    def close(self) -> list[SinkFailure]:
        """Close every healthy sink (each one even if another fails); return all failures."""
        if self._closed:
            return list(self.failures)
        self._closed = True
        for label, sink in list(self._healthy.items()):
            try:
                sink.close()
            except Exception as err:  # one failing sink must not stop the others from flushing
                self.failures.append(SinkFailure(label, None, err))
                log.error("%s", self.failures[-1].describe())
        self._healthy.clear()
        return list(self.failures)
