"""Options of ``python -m runtime.stream`` that need more than argparse: the default artifact
directory, ``--list-cameras``, the ``--show`` check and the ``--view``/``--codec`` options.

Kept apart from ``runtime.stream_cli`` (the parser and start-up order) so each piece is small.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from runtime.errors import ConfigError

log = logging.getLogger("runtime.stream")

DEFAULT_ARTIFACTS = Path("artifacts") / "tevit"


def resolve_artifacts(value: str | None) -> str:
    """``--artifacts``, or ``artifacts/tevit`` (relative to the current folder) when it holds a
    manifest; ``ConfigError`` naming the export command otherwise."""
    if value is not None:
        return value
    if (DEFAULT_ARTIFACTS / "manifest.json").is_file():
        log.info("--artifacts not given: using %s", DEFAULT_ARTIFACTS)
        return str(DEFAULT_ARTIFACTS)
    state = ("has no manifest.json" if DEFAULT_ARTIFACTS.is_dir() else "does not exist")
    raise ConfigError(f"no --artifacts given, and the default {DEFAULT_ARTIFACTS} {state} in "
                      f"{Path.cwd()}; export a model first (make export MODEL=tevit, or "
                      "python -m export tevit), or pass --artifacts DIR")


class ListCamerasAction(argparse.Action):
    """``--list-cameras``: print the cameras OpenCV can open and exit (no SOURCE needed)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from runtime.sources.cameras import candidate_indices, format_cameras, list_cameras

        tried = candidate_indices()
        cameras = list_cameras(tried)
        print(format_cameras(cameras, tried))
        parser.exit(0 if cameras else 1)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--list-cameras``, ``--codec``, ``--view`` and ``--view-host`` to ``parser``."""
    from runtime.sinks.video import CODECS

    parser.add_argument("--list-cameras", action=ListCamerasAction,
                        help="list the cameras OpenCV can open here, then exit")
    parser.add_argument("--codec", default="auto", choices=CODECS,
                        help="overlay codec: auto (H.264 when PyAV is installed, which browsers "
                             "play; else mp4v with a notice), h264 (or refuse), fourcc "
                             "(OpenCV's writer with --fourcc)")
    parser.add_argument("--view", type=int, metavar="PORT", default=None,
                        help="serve the live overlay and tracks on http://127.0.0.1:PORT/ "
                             "(MJPEG; for boxes without a display; 0: any free port)")
    parser.add_argument("--view-host", default="127.0.0.1",
                        help="address --view listens on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 exposes it without authentication)")


def check_options(args: argparse.Namespace) -> None:
    """``ConfigError`` for these options before anything is opened: port range, ``--show``
    without a GUI (checked before the model is loaded), ``--fourcc`` with ``--codec h264``."""
    from runtime.settings import check_port
    from runtime.sinks.video import gui_unavailable

    if args.view is not None:
        check_port("--view", args.view)
    if args.show:
        reason = gui_unavailable()
        if reason:
            raise ConfigError(reason)
    if args.codec == "h264" and args.fourcc is not None:
        raise ConfigError(f"--fourcc {args.fourcc} asks for OpenCV's writer, --codec h264 for "
                          "PyAV's; give one of them")
