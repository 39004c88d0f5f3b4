"""``python -m runtime.stream SOURCE --artifacts DIR``: stream a source through a VIS model;
``python -m runtime.stream SRC [SRC ...] --artifacts DIR --out-dir OUT``: several sources
through one model in one process, batched (runtime.multi_cli).

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
# imported up front with Ctrl-C held back (see _import_runtime); onnxruntime is otherwise
# imported lazily at model load
HEAVY_MODULES = ("runtime.stream_cli", "runtime.multi_cli", "runtime.pipeline", "onnxruntime")


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        _import_runtime()
        from runtime.multi_cli import wants_multi

        argv = sys.argv[1:] if argv is None else list(argv)
        if wants_multi(argv):  # SRC [SRC ...] --out-dir DIR: runtime.multi_cli
            from runtime.multi_cli import run as run_multi

            return run_multi(argv)
        from runtime.stream_cli import run

        return run(argv)
    except KeyboardInterrupt:
        print("stopped (Ctrl-C) while starting: nothing was processed, nothing was written",
              file=sys.stderr)
        return INTERRUPTED


def _import_runtime() -> None:
    """Import ``HEAVY_MODULES`` with SIGINT held until they are done, then raise it.

    A KeyboardInterrupt raised inside a C extension's initialisation does not come out as one:
    onnxruntime's module init reports "ImportError: import numpy failed" after numpy prints a
    traceback, which would read as a missing package. Holding Ctrl-C for the second or two of
    imports turns it into a clean exit 130 right after them. An ImportError is left to the code
    that needs the module (it names the package to install).
    """
    import importlib
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread; import on first use instead
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        for name in HEAVY_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


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
