"""Create the Triton server's own Python environment: ``python -m runtime.serving.environment DIR``
(``make serve-env`` runs it for ``.venv-serve``; the Triton tests run it when it is missing).

Separate from the client's environment because Triton 2.51's Python backend needs numpy < 2
while the client (OpenCV 5) needs numpy 2 (runtime/serving/server.py). It holds only what runs in
the server: numpy < 2, onnxruntime, the nvidia-pytriton wheel for its ``tritonserver`` binary,
Python backend and stubs (installed without its own dependencies: the binary needs none of
them), and visdeploy without extras (editable when this is a clone), so no OpenCV or SciPy.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from runtime.errors import BackendUnavailableError

log = logging.getLogger("runtime.serve")

SERVER_PACKAGES = ("numpy>=1.24,<2", "onnxruntime>=1.17")
PYTRITON = "nvidia-pytriton==0.7.0"  # bundles tritonserver 2.51.0 (manylinux_2_35 x86_64)


def project_install_spec() -> list[str]:
    """pip arguments installing this visdeploy without dependencies: the clone (editable) when
    running from one, else the same released version."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return ["--no-deps", "-e", str(root)]
    from importlib.metadata import version

    return ["--no-deps", f"visdeploy=={version('visdeploy')}"]


def create_server_env(directory: str | Path) -> Path:
    """Create (or complete) the server environment in ``directory``; return it."""
    directory = Path(directory)
    started = time.perf_counter()
    steps = [
        [sys.executable, "-m", "venv", str(directory)],
        [str(directory / "bin" / "python3"), "-m", "pip", "install", "--quiet", *SERVER_PACKAGES],
        [str(directory / "bin" / "python3"), "-m", "pip", "install", "--quiet", "--no-deps",
         PYTRITON],
        [str(directory / "bin" / "python3"), "-m", "pip", "install", "--quiet",
         *project_install_spec()],
    ]
    log.info("Creating the Triton server environment %s (numpy<2, onnxruntime, %s, visdeploy "
             "without extras; about 90 MB to download the first time) ...", directory, PYTRITON)
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackendUnavailableError(
                f"creating the server environment failed at `{' '.join(step)}`:\n"
                f"{done.stderr.strip()[-2000:]}")
    log.info("Server environment ready in %.0f s", time.perf_counter() - started)
    return directory


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[serve-env] %(message)s")
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m runtime.serving.environment DIR", file=sys.stderr)
        return 2
    try:
        create_server_env(args[0])
    except BackendUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
