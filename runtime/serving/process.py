"""``TritonServer``: one ``tritonserver`` process on a model repository, started, waited for
until ready, stopped (or killed, as a crash would) — used by ``python -m runtime.serve``, the
tests and ``bench/triton_serving.py``.

    with TritonServer("repo", ports=Ports(grpc=8001, http=8000, metrics=8002)) as server:
        print(server.grpc_address)          # 127.0.0.1:8001 for --backend triton --server
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from runtime.errors import BackendUnavailableError, ConfigError
from runtime.serving.server import (
    Ports,
    backend_directory,
    find_install,
    server_command,
    server_environment,
)

log = logging.getLogger("runtime.serve")


def free_tcp_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago (tests, benchmarks)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def check_repository(repository: Path) -> list[str]:
    """Model names in ``repository`` (folders with a config.pbtxt); ``ConfigError`` if none."""
    if not repository.is_dir():
        raise ConfigError(f"model repository {repository} does not exist; write one with "
                          "python -m export.triton ARTIFACTS --repository DIR")
    models = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file())
    if not models:
        raise ConfigError(f"{repository} holds no model (no */config.pbtxt); write one with "
                          f"python -m export.triton ARTIFACTS --repository {repository}")
    return models


class TritonServer:
    """A ``tritonserver`` child process (its own process group, so its Python-backend stubs go
    with it). ``log_path``: server output file (None: this process's stdout/stderr)."""

    def __init__(self, repository: str | Path, *, ports: Ports | None = None,
                 server_env: str | Path | None = None, work_dir: str | Path | None = None,
                 log_path: str | Path | None = None, ready_timeout_s: float = 120.0) -> None:
        self.repository = Path(repository).resolve()
        self.models = check_repository(self.repository)
        self.ports, self.ready_timeout_s = ports or Ports(), ready_timeout_s
        self.install = find_install(server_env)
        self._owns_work_dir = work_dir is None  # a temporary folder, removed by stop()
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="visdeploy-triton-"))
        self.log_path = Path(log_path) if log_path is not None else None
        self.process: subprocess.Popen | None = None

    @property
    def grpc_address(self) -> str:
        return f"{self.ports.local_host}:{self.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.ports.local_host}:{self.ports.metrics}/metrics"

    def start(self) -> TritonServer:
        """Start the server and wait until every model is ready."""
        backends = backend_directory(self.install, self.work_dir)
        command = server_command(self.install, self.repository, backends, self.ports)
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        log.info("Starting Triton on %s (gRPC %d, HTTP %d, metrics %d): %s", self.ports.host,
                 self.ports.grpc, self.ports.http, self.ports.metrics, ", ".join(self.models))
        started = time.perf_counter()
        try:
            self.process = subprocess.Popen(command, env=server_environment(self.install),
                                            stdout=output, stderr=subprocess.STDOUT if output
                                            else None, start_new_session=True)
        finally:
            if output is not None:
                output.close()
        self._wait_ready()
        log.info("Triton ready in %.1f s", time.perf_counter() - started)
        return self

    def _wait_ready(self) -> None:
        url = f"http://{self.ports.local_host}:{self.ports.http}/v2/health/ready"
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailableError(
                    f"tritonserver exited with code {self.process.returncode} while starting"
                    f"{self._log_tail()}; a port in use, or a model that failed to load")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.kill()
        raise BackendUnavailableError(f"tritonserver was not ready after {self.ready_timeout_s:.0f}"
                                      f" s{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f" (log {self.log_path}:\n" + "\n".join(tail) + "\n)"

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        return self.process.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Triton drains in-flight requests for up to --exit-timeout-secs), then kill
        whatever of its process group is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("tritonserver did not stop in %.0f s; killing it", timeout_s)
        self.kill()
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server's process group at once (what a crash or a lost box looks like)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
