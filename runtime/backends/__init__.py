"""Engine backends behind one ``infer(frames) -> dict`` interface, chosen by name.

``BACKENDS`` maps a name to a factory ``(manifest, **options) -> Backend``; a new runner (a
Triton client) plugs in by adding one entry. ``auto`` picks the fastest one installed for the
device (``runtime.backends.auto``).
"""

from __future__ import annotations

from types import MappingProxyType

from runtime.backends.auto import choose_backend, detect_environment
from runtime.backends.base import OUTPUT_NAMES, Backend
from runtime.backends.onnxrt import OnnxRuntimeBackend, select_providers
from runtime.backends.openvino import (
    OpenVINOBackend,
    TwoStageOpenVINOBackend,
    check_device,
    import_openvino,
)
from runtime.backends.tensorrt import open_tensorrt_backend
from runtime.backends.two_stage import TwoStageOnnxBackend
from runtime.errors import ConfigError
from runtime.manifest import Manifest

STAGE_MODES = ("auto", "one", "two")


def use_stages(manifest: Manifest, stages: str, precision: str) -> bool:
    """Whether to run the frame + clip stages: ``two`` always, ``one`` never, ``auto`` when the
    manifest lists them at ``precision``."""
    if stages not in STAGE_MODES:
        raise ConfigError(f"stages must be one of {', '.join(STAGE_MODES)}; got {stages!r}")
    return stages == "two" or (stages == "auto" and manifest.has_stages("onnx", precision))


def open_onnxruntime_backend(manifest: Manifest, *, stages: str = "auto", **options) -> Backend:
    """onnxruntime over the whole-model graph (``stages="one"``) or the frame + clip stages
    (``"two"``: features of frames shared by overlapping windows are computed once). ``auto``
    takes the stages when the manifest lists them at the requested precision."""
    two = use_stages(manifest, stages, options.get("precision", "fp32"))
    return TwoStageOnnxBackend(manifest, **options) if two else OnnxRuntimeBackend(manifest, **options)


def open_openvino_backend(manifest: Manifest, *, stages: str = "auto", **options) -> Backend:
    """OpenVINO on the CPU, one graph or two stages as ``open_onnxruntime_backend``. A missing
    openvino package or a GPU device fails here, before any frame."""
    import_openvino()
    check_device(options.get("device", "auto"))
    two = use_stages(manifest, stages, options.get("precision", "fp32"))
    return TwoStageOpenVINOBackend(manifest, **options) if two else OpenVINOBackend(manifest, **options)


def open_auto_backend(manifest: Manifest, *, device: str = "auto", **options) -> Backend:
    """The backend ``runtime.backends.auto.choose_backend`` picks for this machine; its choice
    and reason are in ``backend.selection``."""
    precision = options.get("precision", "fp32")
    choice = choose_backend(device, detect_environment(manifest, precision, device))
    if choice.backend == "tensorrt":
        options.pop("stages", None)
    backend = BACKENDS[choice.backend](manifest, device=choice.device, **options)
    backend.selection = f"auto -> {choice.backend} ({choice.reason})"
    return backend


def open_triton_backend(manifest: Manifest, **options) -> Backend:
    """A Triton Inference Server client (runtime.backends.triton; options ``server``,
    ``model``, ``retry``, ``timeout_s``), imported on use: the Triton server's own Python
    imports this package and has neither tritonclient nor OpenCV."""
    from runtime.backends.triton import TritonBackend

    return TritonBackend(manifest, **options)


BACKENDS = MappingProxyType({
    "onnxruntime": open_onnxruntime_backend,
    "openvino": open_openvino_backend,
    "tensorrt": open_tensorrt_backend,
    "triton": open_triton_backend,
})
BACKEND_CHOICES = ("auto", *BACKENDS)

__all__ = ["BACKENDS", "BACKEND_CHOICES", "OUTPUT_NAMES", "STAGE_MODES", "Backend",
           "OnnxRuntimeBackend", "OpenVINOBackend", "TwoStageOnnxBackend",
           "TwoStageOpenVINOBackend", "open_backend", "select_providers"]


def open_backend(manifest: Manifest, name: str = "onnxruntime", **options) -> Backend:
    """Build (not yet activate) the backend ``name`` (one of ``BACKEND_CHOICES``) for
    ``manifest``. ``stages`` applies to onnxruntime and OpenVINO and is ignored by the others."""
    if name == "auto":
        return open_auto_backend(manifest, **options)
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if name == "tensorrt":
        options.pop("stages", None)
    return BACKENDS[name](manifest, **options)
