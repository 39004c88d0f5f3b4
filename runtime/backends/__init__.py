"""Engine backends behind one ``infer(frames) -> dict`` interface, chosen by name.

``BACKENDS`` maps a name to a factory ``(manifest, **options) -> Backend``; a new runner (the
TensorRT plan runner, a Triton client) plugs in by adding one entry.
"""

from __future__ import annotations

from types import MappingProxyType

from runtime.backends.base import OUTPUT_NAMES, Backend
from runtime.backends.onnxrt import OnnxRuntimeBackend, select_providers
from runtime.backends.tensorrt import open_tensorrt_backend
from runtime.errors import ConfigError
from runtime.manifest import Manifest

BACKENDS = MappingProxyType({
    "onnxruntime": OnnxRuntimeBackend,
    "tensorrt": open_tensorrt_backend,
})

__all__ = ["BACKENDS", "OUTPUT_NAMES", "Backend", "OnnxRuntimeBackend", "open_backend",
           "select_providers"]


def open_backend(manifest: Manifest, name: str = "onnxruntime", **options) -> Backend:
    """Build (not yet activate) the backend ``name`` for ``manifest``."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name](manifest, **options)
