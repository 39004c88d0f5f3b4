"""``python -m runtime.stream SOURCE --artifacts DIR``: stream a source through a VIS model.

Exit codes: 0 done; 1 error while processing or an output failed (every frame processed is
still written to the healthy outputs; the failure is named); 2 bad setting, source, artifact or
output path (refused before the first frame: nothing processed, earlier outputs untouched);
130 stopped with Ctrl-C (every frame processed so far is written; a second Ctrl-C aborts at
once; Ctrl-C while starting exits at once and writes nothing).

This module imports only ``sys`` when it loads; the command line (``runtime.stream_cli``) and the
runtime (OpenCV, onnxruntime, SciPy) are imported inside ``main``, so Ctrl-C at any moment after
Python's own start-up ends with exit 130 and no traceback.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        from runtime.stream_cli import run

        return run(argv)
    except KeyboardInterrupt:
        print("stopped (Ctrl-C) while starting: nothing was processed, nothing was written",
              file=sys.stderr)
        return INTERRUPTED


def _exit(code: int) -> None:
    """Exit with ``code``. After Ctrl-C, leave through ``os._exit``: CPython marks a
    KeyboardInterrupt that passed through a C-level ``PyRun_*`` call (SciPy's compiled modules
    run code that way while importing) as unhandled even when Python code caught it, and then
    kills the process with SIGINT at exit (Modules/main.c ``Py_RunMain`` -> ``exit_sigint``),
    turning our clean 130 into a signal death. Every output is closed by then."""
    if code == INTERRUPTED:
        import logging
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
