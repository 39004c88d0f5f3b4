"""``--backend triton`` options of ``python -m runtime.stream`` (one source or several):
``--server``, ``--model``, ``--server-retries``, ``--server-timeout`` (kept apart from
``runtime.stream_cli`` and ``runtime.multi_cli``)."""

from __future__ import annotations

import argparse

from runtime.errors import ConfigError
from runtime.settings import check_at_least, check_positive

TRITON_FLAGS = ("--server", "--model", "--server-retries", "--server-timeout")


def add_triton_options(parser: argparse.ArgumentParser) -> None:
    """Add the Triton client's options (defaults None: given only with --backend triton)."""
    parser.add_argument("--server", default=None, metavar="HOST:PORT[,HOST:PORT]",
                        help="--backend triton: Triton's gRPC endpoint (default 127.0.0.1:8001); "
                             "a comma list fails over to the next server")
    parser.add_argument("--model", default=None,
                        help="--backend triton: model name in the repository (default: the "
                             "manifest's model)")
    parser.add_argument("--server-retries", type=int, default=None,
                        help="--backend triton: rounds over the servers when none answers, with "
                             "backoff 0.5 s doubling to 8 s (default 8, about 40 s; 0 = none), "
                             "then stop with every finished frame written")
    parser.add_argument("--server-timeout", type=float, default=None,
                        help="--backend triton: seconds one window may take (default 30)")


def check_triton_options(args: argparse.Namespace) -> None:
    """``ConfigError`` for Triton options without ``--backend triton`` or out of range."""
    given = [f for f in TRITON_FLAGS if getattr(args, f[2:].replace("-", "_")) is not None]
    if args.backend != "triton":
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to --backend triton; add "
                              "--backend triton or drop them")
        return
    from runtime.backends.triton import parse_servers

    if args.server is not None:
        parse_servers(args.server)
    if args.server_retries is not None:
        check_at_least("--server-retries", args.server_retries, 0)
    if args.server_timeout is not None:
        check_positive("--server-timeout", args.server_timeout)


def chosen_backend(args: argparse.Namespace):
    """``args.backend`` (a name), or for ``triton`` the client backend for ``args.artifacts``
    (not yet active) built from the options above."""
    if args.backend != "triton":
        return args.backend
    from runtime.backends import open_backend
    from runtime.backends.triton import DEFAULT_SERVER
    from runtime.manifest import load_manifest
    from runtime.sources import ReconnectPolicy

    retry = ReconnectPolicy() if args.server_retries is None else ReconnectPolicy(
        max_attempts=args.server_retries)
    return open_backend(load_manifest(args.artifacts), "triton",
                        server=args.server or DEFAULT_SERVER, model=args.model, retry=retry,
                        timeout_s=args.server_timeout or 30.0)
