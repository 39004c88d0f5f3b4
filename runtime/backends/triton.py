"""Triton client backend: each window goes to a Triton Inference Server over gRPC.

Same interface and outputs as the local backends (``infer(frames, content_hw)`` -> the
contract's dict); stateless per window, so tracking, letterbox and sinks stay with the client and
windows of many clients meet in the server's dynamic batcher (docs/serving.md).

Failover and retries: ``server`` is one ``HOST:PORT`` or a comma list. A window goes to the
server that answered last; when it cannot be reached (gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ...)
the next one is tried at once. When none answers, the backend waits with backoff (the live
sources' ``ReconnectPolicy``: 0.5 s doubling to 8 s, 8 rounds by default, about 40 s) and tries
them all again; the stream continues when one comes back. After the budget it raises
``ServerUnavailableError`` (the CLI writes every finished frame and exits 1); later calls then
try each server once without waiting, so the final flush is quick. Errors a retry cannot fix
(unknown model, wrong shapes, a failing model) raise ``TritonServerError`` at once.
tritonclient is imported on activation only (the ``serve`` extra).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from runtime.backends.base import OUTPUT_NAMES, Backend
from runtime.errors import ArtifactError, BackendUnavailableError, ConfigError
from runtime.manifest import CONTENT_HW, FRAMES, MANIFEST_NAME, Manifest, sha256_file
from runtime.serving import MANIFEST_SHA_PARAMETER
from runtime.sources.live import ReconnectPolicy

log = logging.getLogger("runtime.backends")

DEFAULT_SERVER = "127.0.0.1:8001"  # python -m runtime.serve's gRPC default
RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED")
INSTALL_HINT = "pip install 'visdeploy[serve]' (in a clone: pip install -e '.[serve]')"
DATATYPES = {FRAMES: "UINT8", CONTENT_HW: "INT32"}


class ServerUnavailableError(BackendUnavailableError):
    """No Triton server of the list answered within the retry budget."""


class TritonServerError(RuntimeError):
    """A server answered with an error that retrying cannot fix."""


def parse_servers(text: str) -> list[str]:
    """``"h1:8001,h2:8001"`` -> ``["h1:8001", "h2:8001"]``; ``ConfigError`` for an entry
    without a host or with a port outside 1..65535 (``[::1]:8001`` for IPv6)."""
    servers = [s.strip() for s in str(text).split(",") if s.strip()]
    if not servers:
        raise ConfigError(f"--server needs HOST:PORT[,HOST:PORT...]; got {text!r}")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"--server entry {server!r} is not HOST:PORT with a port in "
                              "1..65535 (Triton's gRPC port, 8001 by default)")
    return servers


def _import_grpc_client():
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as err:
        raise BackendUnavailableError(f"--backend triton needs tritonclient[grpc] ({err}): "
                                      f"{INSTALL_HINT}") from err
    return grpcclient, InferenceServerException


def status_name(err: Exception) -> str:
    """``StatusCode.UNAVAILABLE`` -> ``UNAVAILABLE`` (tritonclient's ``status()``)."""
    status = getattr(err, "status", lambda: None)() or ""
    return str(status).rsplit(".", 1)[-1]


class TritonBackend(Backend):
    """Runs windows on Triton Inference Server model ``model`` at ``server``.

    Args:
        manifest: the artifact's manifest (the repository's copy ``REPO/NAME/manifest.json``,
            or the artifact directory it came from): windows, letterbox and output shapes.
        server: ``HOST:PORT`` of Triton's gRPC endpoint, or a comma list to fail over.
        model: the Triton model name (default: the manifest's model, as export.triton names it).
        retry: backoff when no server answers (``ReconnectPolicy``; ``max_attempts`` rounds).
        timeout_s: deadline of one window's request.
        device, precision, threads, stages: accepted for the common backend signature; the
            server's model configuration decides them.
    """

    name = "triton"

    def __init__(self, manifest: Manifest, *, server: str = DEFAULT_SERVER,
                 model: str | None = None, retry: ReconnectPolicy | None = None,
                 timeout_s: float = 30.0, device: str = "auto", precision: str = "fp32",
                 threads: int = 0, stages: str = "auto") -> None:
        super().__init__(manifest)
        self.servers = parse_servers(server)
        self.model = model or manifest.model
        self.retry = retry or ReconnectPolicy()
        self.timeout_s = timeout_s
        self.current = 0
        self.gave_up = False
        self.input_names: list[str] = [FRAMES]
        self._clients: dict[str, object] = {}
        self._grpc = self._server_error = None

    @property
    def server(self) -> str:
        """The server the next window goes to."""
        return self.servers[self.current]

    # -- lifecycle -------------------------------------------------------------------------
    def activate_impl(self) -> None:
        self._grpc, self._server_error = _import_grpc_client()
        failures = []
        for index, server in enumerate(self.servers):
            try:
                config = self._client(server).get_model_config(self.model, as_json=True)
            except self._server_error as err:
                failures.append(f"{server}: {err}")
                self._drop_client(server)
                continue
            self.current = index
            self._check_config(config["config"], server)
            for failure in failures:
                log.warning("Triton %s did not answer at start (%s); it stays in the failover "
                            "list", *failure.split(": ", 1))
            return
        raise BackendUnavailableError(
            f"no Triton server answered for model {self.model!r}: {'; '.join(failures)}. Start "
            "one with python -m runtime.serve --repository DIR (docs/serving.md), or check "
            "--server and --model")

    def _check_config(self, config: dict, server: str) -> None:
        """The served model must come from this manifest (sha256 recorded by export.triton)."""
        served = config.get("parameters", {}).get(MANIFEST_SHA_PARAMETER, {}).get("string_value")
        local = sha256_file(self.manifest.directory / MANIFEST_NAME)
        if served is not None and served != local:
            raise ArtifactError(
                f"Triton model {self.model!r} at {server} was written from another manifest "
                f"(sha256 {served[:12]}…) than {self.manifest.directory / MANIFEST_NAME} "
                f"({local[:12]}…); pass --artifacts REPOSITORY/{self.model} (the repository's "
                "copy) or rewrite the repository with python -m export.triton")
        names = [i["name"] for i in config.get("input", [])]
        if FRAMES not in names or not set(names) <= set(DATATYPES):
            raise ArtifactError(f"Triton model {self.model!r} at {server} takes {names}; the "
                                f"contract needs {FRAMES!r} (and {CONTENT_HW!r} where declared)")
        self.input_names = names

    def deactivate_impl(self) -> None:
        for server in list(self._clients):
            self._drop_client(server)

    # -- inference -------------------------------------------------------------------------
    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {FRAMES: frames, CONTENT_HW: content_hw}
        inputs = []
        for name in self.input_names:
            tensor = self._grpc.InferInput(name, list(feeds[name].shape), DATATYPES[name])
            tensor.set_data_from_numpy(feeds[name])
            inputs.append(tensor)
        outputs = [self._grpc.InferRequestedOutput(n) for n in OUTPUT_NAMES]
        result = self._with_failover(lambda client: client.infer(
            self.model, inputs, outputs=outputs, client_timeout=self.timeout_s))
        return {n: result.as_numpy(n) for n in OUTPUT_NAMES}

    def _with_failover(self, request):
        """``request(client)`` on the current server, failing over and backing off (module)."""
        delays = iter(() if self.gave_up else self.retry.delays())
        rounds, errors = 0, {}
        while True:
            for _ in self.servers:
                server = self.server
                try:
                    result = request(self._client(server))
                except self._server_error as err:
                    if status_name(err) not in RETRYABLE:
                        raise TritonServerError(f"Triton {server} refused the window for model "
                                                f"{self.model!r}: {err}") from err
                    errors[server] = str(err).splitlines()[0][:200]
                    self._drop_client(server)  # a fresh channel reconnects at once
                    self.current = (self.current + 1) % len(self.servers)
                    continue
                if rounds or errors:
                    log.warning("Triton %s answered again; the stream continues", server)
                self.gave_up = False
                return result
            delay = next(delays, None)
            if delay is None:
                self.gave_up = True
                raise ServerUnavailableError(
                    f"no Triton server answered after {rounds + 1} round(s) over "
                    f"{', '.join(self.servers)} ({'; '.join(f'{s}: {e}' for s, e in errors.items())}"
                    "); the frames finished so far are written. Restart the server "
                    "(python -m runtime.serve) or raise --server-retries")
            rounds += 1
            log.warning("no Triton server answered (%s); retry %d of %d in %.1f s",
                        ", ".join(self.servers), rounds, self.retry.max_attempts, delay)
            time.sleep(delay)

    def _client(self, server: str):
        if server not in self._clients:
            self._clients[server] = self._grpc.InferenceServerClient(url=server)
        return self._clients[server]

    def _drop_client(self, server: str) -> None:
        client = self._clients.pop(server, None)
        if client is not None:
            try:
                client.close()
            except Exception as err:  # closing a broken channel must not hide the real error
                log.debug("closing the channel to %s: %s", server, err)


