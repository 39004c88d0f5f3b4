"""``python -m runtime.serve --repository DIR``: run Triton Inference Server on a model repository.

Starts the real ``tritonserver`` (Triton 2.51 from the nvidia-pytriton wheel in the server
environment, ``make serve-env``) with gRPC on 8001, HTTP on 8000 and metrics on 8002, bound to
127.0.0.1 unless ``--host`` says otherwise. Triton has no authentication of its own: anyone who
reaches these ports can run the models and read the metrics, so expose them only behind a
network you trust or an authenticating proxy (docs/serving.md). Ctrl-C or SIGTERM stops it
(in-flight windows finish first, 5 s at most).

Exit codes: 0 stopped; 2 refused before starting (no repository, no server environment, bad
port); 1 when the server failed to start (a port in use, a model that does not load);
otherwise tritonserver's own exit code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from runtime.errors import BackendUnavailableError, ConfigError
from runtime.settings import check_port

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repository", required=True,
                   help="Triton model repository (python -m export.triton ... --repository DIR)")
    p.add_argument("--grpc-port", type=int, default=8001, help="clients' --server port")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002,
                   help="Prometheus metrics at http://HOST:PORT/metrics")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 "
                        "exposes the server WITHOUT authentication)")
    p.add_argument("--server-env", default=None,
                   help="server Python environment (default: $VISDEPLOY_SERVE_ENV, else "
                        ".venv-serve; make serve-env creates it)")
    p.add_argument("--work-dir", default=None,
                   help="folder for Triton's backend files (default: a new temporary folder)")
    return p


def _ports(args: argparse.Namespace):
    from runtime.serving.server import Ports

    numbers = {"--grpc-port": args.grpc_port, "--http-port": args.http_port,
               "--metrics-port": args.metrics_port}
    for flag, port in numbers.items():
        check_port(flag, port)
        if port == 0:
            raise ConfigError(f"{flag} must be a fixed port (clients need to know it); got 0")
    if len(set(numbers.values())) < 3:
        raise ConfigError(f"gRPC, HTTP and metrics need three different ports; got {numbers}")
    return Ports(grpc=args.grpc_port, http=args.http_port, metrics=args.metrics_port,
                 host=args.host)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("runtime.serve")
    from runtime.serving.process import TritonServer

    try:
        server = TritonServer(args.repository, ports=_ports(args), server_env=args.server_env,
                              work_dir=args.work_dir)
    except (ConfigError, BackendUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        log.warning("listening on %s: Triton has no authentication; anyone who reaches ports "
                    "%d-%d can run the models (docs/serving.md)", args.host,
                    min(args.grpc_port, args.http_port, args.metrics_port),
                    max(args.grpc_port, args.http_port, args.metrics_port))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd, Kubernetes: stop cleanly
    try:
        server.start()
        print(f"serving {', '.join(server.models)}: clients use --backend triton --server "
              f"{server.grpc_address} (metrics {server.metrics_url}); Ctrl-C stops",
              flush=True)
        return server.wait()
    except BackendUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("stopping Triton")
        return 0
    finally:
        server.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
