"""Start a real ``tritonserver`` (Triton Inference Server 2.51, from the ``nvidia-pytriton`` wheel
in the server's own Python environment) on a model repository, and stop it.

The server environment (``make serve-env``: ``.venv-serve`` with numpy < 2, onnxruntime,
visdeploy without extras and nvidia-pytriton) is separate from the client's because the Python
backend bundled with Triton 2.51 cannot hand numpy 2 arrays to the server (every output comes
back empty), while the client side (OpenCV 5) needs numpy 2. Found on this kind of machine
(2026-12), docs/serving.md "Server environment":
- the wheel ships ``pytriton/tritonserver/{bin,backends/python,python_backend_stubs/3.X}`` and
  the shared libraries in ``nvidia_pytriton.libs`` (``LD_LIBRARY_PATH``);
- the backend stub of the server's Python version goes into ``backends/python/`` (copied into a
  work folder here, so the installed wheel stays untouched);
- the stub's embedded interpreter finds its site-packages through the first ``python3`` on
  ``PATH``: the server environment's ``bin/`` goes first.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import BackendUnavailableError

log = logging.getLogger("runtime.serve")

SERVE_ENV_VARIABLE = "VISDEPLOY_SERVE_ENV"
SERVE_ENV_NAME = ".venv-serve"
MAKE_HINT = ("create it with `make serve-env` in a visdeploy clone, or pass --server-env DIR of "
             "a venv holding nvidia-pytriton, 'numpy<2', onnxruntime and visdeploy (--no-deps)")
_PROBE = ("import json, sys, sysconfig; print(json.dumps([sysconfig.get_paths()['purelib'], "
          "'%d.%d' % sys.version_info[:2]]))")


@dataclass(frozen=True)
class ServerInstall:
    """Where the server environment keeps what ``tritonserver`` needs."""

    env: Path
    tritonserver: Path   # pytriton/tritonserver (bin/, backends/, python_backend_stubs/)
    libraries: Path      # nvidia_pytriton.libs
    python_version: str  # "3.11": picks the backend stub

    @property
    def stub(self) -> Path:
        return (self.tritonserver / "python_backend_stubs" / self.python_version
                / "triton_python_backend_stub")


def default_server_env() -> Path:
    """``$VISDEPLOY_SERVE_ENV``, else ``.venv-serve`` here, else in the visdeploy clone."""
    if os.environ.get(SERVE_ENV_VARIABLE):
        return Path(os.environ[SERVE_ENV_VARIABLE])
    here = Path.cwd() / SERVE_ENV_NAME
    clone = Path(__file__).resolve().parents[2] / SERVE_ENV_NAME
    return here if here.is_dir() or not clone.is_dir() else clone


def find_install(env: str | Path | None = None) -> ServerInstall:
    """Check the server environment and locate its Triton; ``BackendUnavailableError`` naming
    what is missing and ``MAKE_HINT``."""
    env = Path(env) if env is not None else default_server_env()
    python = env / "bin" / "python3"
    if not python.is_file():
        raise BackendUnavailableError(f"no server environment at {env} (no bin/python3); "
                                      + MAKE_HINT)
    probe = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:
        raise BackendUnavailableError(f"{python} does not run: {probe.stderr.strip()}")
    purelib, version = json.loads(probe.stdout)
    install = ServerInstall(env, Path(purelib) / "pytriton" / "tritonserver",
                            Path(purelib) / "nvidia_pytriton.libs", version)
    missing = [p for p in (install.tritonserver / "bin" / "tritonserver", install.libraries,
                           install.tritonserver / "backends" / "python", install.stub)
               if not p.exists()]
    if missing:
        raise BackendUnavailableError(
            f"{env} lacks Triton's files ({', '.join(map(str, missing))}); nvidia-pytriton "
            f"0.7 for Python {version} (x86_64, glibc >= 2.35) provides them; " + MAKE_HINT)
    check = subprocess.run([str(python), "-c", "import numpy, onnxruntime, runtime.backends; "
                            "print(numpy.__version__)"], capture_output=True, text=True,
                           timeout=120)
    if check.returncode != 0 or not check.stdout.strip().startswith("1."):
        found = check.stdout.strip() or check.stderr.strip().splitlines()[-1:]
        raise BackendUnavailableError(
            f"{env} must hold numpy < 2, onnxruntime and visdeploy's runtime (got: {found}); "
            "the Python backend of Triton 2.51 returns empty tensors with numpy 2; " + MAKE_HINT)
    return install


def backend_directory(install: ServerInstall, work: Path) -> Path:
    """``work/backends`` with Triton's Python backend and the stub for the server's Python."""
    backends = work / "backends"
    python = backends / "python"
    if not (python / "triton_python_backend_stub").is_file():
        shutil.copytree(install.tritonserver / "backends" / "python", python, dirs_exist_ok=True)
        shutil.copy2(install.stub, python / "triton_python_backend_stub")
    return backends


@dataclass(frozen=True)
class Ports:
    """gRPC, HTTP and metrics ports and the address all three listen on."""

    grpc: int = 8001
    http: int = 8000
    metrics: int = 8002
    host: str = "127.0.0.1"

    @property
    def local_host(self) -> str:
        """Where this machine reaches the server (``0.0.0.0``/``::`` -> loopback)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


def server_command(install: ServerInstall, repository: Path, backends: Path,
                   ports: Ports) -> list[str]:
    """The ``tritonserver`` command line (flags of Triton 2.51's ``tritonserver --help``)."""
    return [str(install.tritonserver / "bin" / "tritonserver"),
            f"--model-repository={repository}", f"--backend-directory={backends}",
            f"--grpc-address={ports.host}", f"--grpc-port={ports.grpc}",
            f"--http-address={ports.host}", f"--http-port={ports.http}",
            f"--metrics-address={ports.host}", f"--metrics-port={ports.metrics}",
            "--exit-timeout-secs=5", "--log-verbose=0"]


def server_environment(install: ServerInstall) -> dict[str, str]:
    """This process's environment with Triton's libraries and the server env's ``python3``."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(install.libraries), env.get("LD_LIBRARY_PATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(install.env / "bin"), env.get("PATH", "")))
    env.pop("PYTHONPATH", None)  # the client's packages (numpy 2) must not reach the stub
    env.pop("PYTHONHOME", None)
    return env
