"""onnxruntime backend: CPU, CUDA or TensorRT execution provider, sha256-checked artifact.

The session uses ``ORT_ENABLE_EXTENDED`` by default: ``ORT_ENABLE_ALL`` segfaults while creating
sessions for FP16 graphs on CPU (onnxruntime 1.24 and 1.32, see specs/toolchain.md §4).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from runtime.backends.base import OUTPUT_NAMES, Backend, engine_feeds
from runtime.errors import ArtifactError, BackendUnavailableError, ConfigError
from runtime.manifest import Manifest

log = logging.getLogger("runtime.backends")

# device name -> execution providers in priority order
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def session_options(optimization: str = "extended", threads: int = 0):
    """``ort.SessionOptions`` at ``optimization`` (disable|basic|extended|all), quiet logging.

    One place for every onnxruntime session of the project (runtime, export parity, calibration).
    """
    ort = _import_ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return options


def select_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device`` (auto|cpu|cuda|tensorrt) given ORT's ``available``."""
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if device not in PROVIDERS:
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu, cuda or tensorrt")
    wanted = PROVIDERS[device][0]
    if wanted not in available:
        raise BackendUnavailableError(
            f"onnxruntime has no {wanted} here (available: {', '.join(available)}); on a machine "
            f"with an NVIDIA GPU replace the CPU wheel: pip uninstall -y onnxruntime && pip "
            f"install -e \".[gpu]\" (onnxruntime-gpu; needs a matching CUDA"
            f"{' and TensorRT' if device == 'tensorrt' else ''}), or use --device cpu"
        )
    return [p for p in PROVIDERS[device] if p in available]


def _import_ort():
    try:
        import onnxruntime
    except ImportError as err:  # pragma: no cover - base dependency
        raise BackendUnavailableError(
            "the onnxruntime backend needs onnxruntime: pip install -e \".[cpu]\" (CPU), or "
            "pip install -e \".[gpu]\" for onnxruntime-gpu (CUDA and TensorRT execution "
            "providers); never both"
        ) from err
    return onnxruntime


def open_session(manifest: Manifest, entry: dict, *, device: str = "auto",
                 optimization: str = "extended", threads: int = 0):
    """An ``ort.InferenceSession`` for the manifest ``entry`` (sha256 checked first)."""
    ort = _import_ort()
    providers = select_providers(device, ort.get_available_providers())
    path = manifest.verified_path(entry)
    log.info("Loading %s (%.1f MB) with %s ...", path.name, path.stat().st_size / 1e6, providers[0])
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(str(path), session_options(optimization, threads),
                                       providers=providers)
    except Exception as err:  # onnxruntime raises its own untyped pybind errors
        raise ArtifactError(f"onnxruntime cannot load {path}: {err}; the file is corrupt or "
                            "was written by an incompatible exporter: re-export it") from err
    log.info("Session ready in %.2f s on %s", time.perf_counter() - start, session.get_providers()[0])
    return session


def check_session_io(manifest: Manifest, input_session, output_session) -> None:
    """Compare sessions' I/O with the manifest: ``input_session`` takes uint8 ``frames`` at the
    manifest's fixed H and W, ``output_session`` gives the DESIGN §4 outputs (the same session
    for a one-graph model; the frame and clip stages of a two-stage one)."""
    inputs = {i.name: i for i in input_session.get_inputs()}
    outputs = {o.name for o in output_session.get_outputs()}
    if "frames" not in inputs:
        raise ArtifactError(f"engine input is {sorted(inputs)}, manifest contract needs "
                            "'frames'; re-export with the current exporter")
    frames = inputs["frames"]
    h, w = manifest.input_hw
    shape_hw = list(frames.shape[2:4]) if len(frames.shape) == 5 else None
    fixed_hw_ok = shape_hw is not None and all(
        not isinstance(d, int) or d == want for d, want in zip(shape_hw, (h, w), strict=True)
    )
    if frames.type != "tensor(uint8)" or not fixed_hw_ok:
        raise ArtifactError(f"engine input frames is {frames.type} {frames.shape}, manifest "
                            f"says uint8 [B, T, {h}, {w}, 3]; artifact and manifest disagree")
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        raise ArtifactError(f"engine outputs lack {missing} (has {sorted(outputs)}); "
                            "re-export with the current exporter")


class OnnxRuntimeBackend(Backend):
    """Runs ``model.<precision>.onnx`` from the manifest with onnxruntime.

    Args:
        manifest: the artifact directory's manifest.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``tensorrt`` (EP).
        precision: which ONNX artifact to load (fp32, fp16, int8).
        optimization: onnxruntime graph optimisation level; ``extended`` by default (see module).
        threads: intra-op threads, 0 = onnxruntime's default.
    """

    name = "onnxruntime"

    def __init__(self, manifest: Manifest, *, device: str = "auto", precision: str = "fp32",
                 optimization: str = "extended", threads: int = 0) -> None:
        super().__init__(manifest)
        if optimization not in OPTIMIZATION_LEVELS:
            raise ConfigError(f"optimization must be one of {OPTIMIZATION_LEVELS}, "
                              f"got {optimization!r}")
        self.device, self.precision = device, precision
        self.optimization, self.threads = optimization, threads
        self.session = None
        self.providers: list[str] = []

    def activate_impl(self) -> None:
        self.session = open_session(self.manifest, self.manifest.artifact("onnx", self.precision),
                                    device=self.device, optimization=self.optimization,
                                    threads=self.threads)
        self.providers = self.session.get_providers()
        check_session_io(self.manifest, self.session, self.session)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(list(OUTPUT_NAMES), engine_feeds(self.input_names, frames, content_hw))
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    def deactivate_impl(self) -> None:
        self.session = None
