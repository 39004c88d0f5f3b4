"""Engine backends behind one ``infer(frames) -> dict`` interface, chosen by name.

``BACKENDS`` maps a name to a factory ``(manifest, **options) -> Backend``; a new runner (the
TensorRT plan runner, a Triton client) plugs in by adding one entry.
"""

from __future__ import annotations

from types import MappingProxyType

from runtime.backends.base import OUTPUT_NAMES, Backend
from runtime.backends.onnxrt import OnnxRuntimeBackend, select_providers
from runtime.backends.tensorrt import open_tensorrt_backend
from runtime.backends.two_stage import TwoStageOnnxBackend
from runtime.errors import ConfigError
from runtime.manifest import Manifest

STAGE_MODES = ("auto", "one", "two")


def open_onnxruntime_backend(manifest: Manifest, *, stages: str = "auto", **options) -> Backend:
    """onnxruntime over the whole-model graph (``stages="one"``) or the frame + clip stages
    (``"two"``: features of frames shared by overlapping windows are computed once). ``auto``
    takes the stages when the manifest lists them at the requested precision."""
    if stages not in STAGE_MODES:
        raise ConfigError(f"stages must be one of {', '.join(STAGE_MODES)}; got {stages!r}")
    precision = options.get("precision", "fp32")
    two = stages == "two" or (stages == "auto" and manifest.has_stages("onnx", precision))
    return TwoStageOnnxBackend(manifest, **options) if two else OnnxRuntimeBackend(manifest, **options)


def open_triton_backend(manifest: Manifest, **options) -> Backend:
    """A Triton Inference Server client (runtime.backends.triton; options ``server``,
    ``model``, ``retry``, ``timeout_s``), imported on use: the Triton server's own Python
    imports this package and has neither tritonclient nor OpenCV."""
    from runtime.backends.triton import TritonBackend

    return TritonBackend(manifest, **options)


BACKENDS = MappingProxyType({
    "onnxruntime": open_onnxruntime_backend,
    "tensorrt": open_tensorrt_backend,
    "triton": open_triton_backend,
})

__all__ = ["BACKENDS", "OUTPUT_NAMES", "STAGE_MODES", "Backend", "OnnxRuntimeBackend",
           "TwoStageOnnxBackend", "open_backend", "select_providers"]


def open_backend(manifest: Manifest, name: str = "onnxruntime", **options) -> Backend:
    """Build (not yet activate) the backend ``name`` for ``manifest``."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name](manifest, **options)
