"""``Spinner``: a long step (the ONNX export's trace) shows it is alive, on a terminal and in logs."""

from __future__ import annotations

import io
import threading

from runtime.progress import Spinner


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run_until(stream, lines: int, **kwargs) -> str:
    """Keep a spinner running until ``stream`` shows ``lines`` updates (no fixed sleep)."""
    seen = threading.Event()
    with Spinner("Exporting ONNX", stream=stream, **kwargs):
        for _ in range(2000):
            text = stream.getvalue()
            if text.count("\r" if stream.isatty() else "\n") >= lines:
                seen.set()
                break
            threading.Event().wait(0.01)
    assert seen.is_set(), stream.getvalue()
    return stream.getvalue()


def test_spinner_on_a_terminal_redraws_in_place_then_clears():
    text = _run_until(_Terminal(), 3)
    assert "Exporting ONNX" in text and " s" in text and "\n" not in text
    assert text.endswith("\r")  # the line is wiped at the end
    assert any(frame in text for frame in Spinner.FRAMES)


def test_spinner_off_a_terminal_prints_a_line_per_interval():
    text = _run_until(io.StringIO(), 2, interval_s=0.05)
    assert text.splitlines()[0].startswith("Exporting ONNX: still running (")
    assert "\r" not in text


def test_disabled_spinner_prints_nothing():
    stream = io.StringIO()
    with Spinner("x", stream=stream, enabled=False, interval_s=0.01):
        threading.Event().wait(0.1)
    assert stream.getvalue() == ""
