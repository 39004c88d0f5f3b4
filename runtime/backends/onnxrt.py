"""onnxruntime backend: CPU, CUDA or TensorRT execution provider, sha256-checked artifact.

The session uses ``ORT_ENABLE_EXTENDED`` by default: ``ORT_ENABLE_ALL`` segfaults while creating
sessions for FP16 graphs on CPU (onnxruntime 1.24 and 1.32, docs/architecture.md "Toolchain facts").
"""

from __future__ import annotations

import logging
import time

import numpy as np

from runtime.backends.base import OUTPUT_NAMES, Backend, contract_outputs, engine_feeds
from runtime.backends.cpu_forms import log_cpu_export_form_advice
from runtime.errors import ArtifactError, BackendUnavailableError, ConfigError
from runtime.manifest import CONTENT_HW, FRAMES, Manifest

log = logging.getLogger("runtime.backends")

# device name -> execution providers in priority order
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def session_options(optimization: str = "extended", threads: int = 0, spin_wait: bool = True):
    """``ort.SessionOptions`` at ``optimization`` (disable|basic|extended|all), quiet logging.

    One place for every onnxruntime session of the project (runtime, export parity, calibration).
    ``spin_wait=False`` stops idle intra-op workers from spinning after each run
    (``session.intra_op.allow_spinning`` = 0): slower to wake, but they leave the cores to
    other work of the process (benchmarks interleaving several runtimes; measured in
    docs/notes/lab-notebook.md: spinning onnxruntime workers slowed the next PyTorch run of the
    VisTR tiny speed table 3x).
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
    if not spin_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
                 optimization: str = "extended", threads: int = 0, spin_wait: bool = True):
    """An ``ort.InferenceSession`` for the manifest ``entry`` (sha256 checked first)."""
    ort = _import_ort()
    providers = select_providers(device, ort.get_available_providers())
    path = manifest.verified_path(entry)
    log.info("Loading %s (%.1f MB) with %s ...", path.name, path.stat().st_size / 1e6, providers[0])
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(str(path), session_options(optimization, threads, spin_wait),
                                       providers=providers)
    except Exception as err:  # onnxruntime raises its own untyped pybind errors
        raise ArtifactError(f"onnxruntime cannot load {path}: {err}; the file is corrupt or "
                            "was written by an incompatible exporter: re-export it") from err
    log.info("Session ready in %.2f s on %s", time.perf_counter() - start, session.get_providers()[0])
    if session.get_providers()[0] == "CPUExecutionProvider":
        log_cpu_export_form_advice(manifest)
    return session


ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
             "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(uint8)": "uint8"}


def _dims(shape) -> tuple:
    """onnxruntime shape (ints, symbolic names, None) -> ints, None where not fixed."""
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in shape)


def _shown(node) -> str:
    dims = ", ".join("?" if d is None else str(d) for d in node.shape)
    return f"{node.type} [{dims}]"


def check_session_io(manifest: Manifest, stages: list[tuple[dict, object]]) -> None:
    """Compare onnxruntime sessions with the manifest on activation, before any frame.

    ``stages``: ``[(entry, session)]`` in data-flow order, the one-graph model or the frame and
    clip stages. Checks each session's inputs against its entry's declared ``inputs`` (so a
    declared ``content_hw`` and the graph agree), the first session's uint8 ``frames`` at the
    manifest's H and W, a stage's outputs against the next stage's inputs, and the last
    session's outputs against the contract: names, dtypes, K, D and the mask size.
    """
    for entry, session in stages:
        _check_declared_inputs(manifest, entry, session)
    _check_frames_input(manifest, stages[0][1])
    for (entry, session), (next_entry, _) in zip(stages, stages[1:]):
        produced = [o.name for o in session.get_outputs()]
        features = [n for n in manifest.entry_inputs(next_entry) if n != CONTENT_HW]
        if produced != list(entry.get("outputs", produced)) or produced != features:
            raise ArtifactError(
                f"{manifest.directory}: the frame stage {entry['file']} gives {produced}, the "
                f"manifest says {entry.get('outputs')} and the clip stage takes {features}; "
                "re-export both stages together (make export)")
    _check_outputs(manifest, stages[-1][1])


def _check_declared_inputs(manifest: Manifest, entry: dict, session) -> None:
    declared = manifest.entry_inputs(entry)
    inputs = {i.name: i for i in session.get_inputs()}
    if list(inputs) != declared:
        raise ArtifactError(
            f"{manifest.directory}: manifest declares inputs {declared} for {entry['file']} but "
            f"the engine takes {list(inputs)}; artifact and manifest.json disagree: re-export "
            "(make export) so that both come from one export")
    if CONTENT_HW in inputs:
        node = inputs[CONTENT_HW]
        dims = _dims(node.shape)
        if node.type != "tensor(int32)" or len(dims) != 2 or dims[1] not in (None, 2):
            raise ArtifactError(f"{entry['file']}: input content_hw is {_shown(node)}, the "
                                "contract says int32 [B, 2]; re-export with the current exporter")


def _check_frames_input(manifest: Manifest, session) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    if FRAMES not in inputs:
        raise ArtifactError(f"engine input is {sorted(inputs)}, manifest contract needs "
                            "'frames'; re-export with the current exporter")
    frames = inputs[FRAMES]
    h, w = manifest.input_hw
    dims = _dims(frames.shape)
    fixed_hw_ok = len(dims) == 5 and all(d is None or d == want
                                         for d, want in zip(dims[2:], (h, w, 3), strict=True))
    if frames.type != "tensor(uint8)" or not fixed_hw_ok:
        raise ArtifactError(f"engine input frames is {frames.type} {frames.shape}, manifest "
                            f"says uint8 [B, T, {h}, {w}, 3]; artifact and manifest disagree")


def _check_outputs(manifest: Manifest, session) -> None:
    outputs = {o.name: o for o in session.get_outputs()}
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        raise ArtifactError(f"engine outputs lack {missing} (has {sorted(outputs)}); "
                            "re-export with the current exporter")
    k, d = manifest.data["outputs"]["K"], manifest.data["outputs"]["embedding_dim"]
    for name, (dtype, want, text) in contract_outputs(manifest).items():
        node = outputs[name]
        dims = _dims(node.shape)
        shape_ok = len(dims) == len(want) and all(
            a is None or b is None or a == b for a, b in zip(dims, want, strict=True))
        if ORT_TYPES.get(node.type) != dtype.name or not shape_ok:
            raise ArtifactError(
                f"engine output {name} is {_shown(node)}; manifest.json says {text} with K={k}, "
                f"D={d} (input {manifest.input_hw[0]}x{manifest.input_hw[1]}): artifact and "
                "manifest disagree; re-export the model (make export) or correct manifest.json")


class OnnxRuntimeBackend(Backend):
    """Runs ``model.<precision>.onnx`` from the manifest with onnxruntime.

    Args:
        manifest: the artifact directory's manifest.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``tensorrt`` (EP).
        precision: which ONNX artifact to load (fp32, fp16, int8).
        optimization: onnxruntime graph optimisation level; ``extended`` by default (see module).
        threads: intra-op threads, 0 = onnxruntime's default.
        spin_wait: let idle intra-op workers spin between runs (onnxruntime's default); False
            when other work in the process needs the cores (see ``session_options``).
    """

    name = "onnxruntime"

    def __init__(self, manifest: Manifest, *, device: str = "auto", precision: str = "fp32",
                 optimization: str = "extended", threads: int = 0,
                 spin_wait: bool = True) -> None:
        super().__init__(manifest)
        if optimization not in OPTIMIZATION_LEVELS:
            raise ConfigError(f"optimization must be one of {OPTIMIZATION_LEVELS}, "
                              f"got {optimization!r}")
        self.device, self.precision = device, precision
        self.optimization, self.threads, self.spin_wait = optimization, threads, spin_wait
        self.session = None
        self.providers: list[str] = []

    def activate_impl(self) -> None:
        self.session = open_session(self.manifest, self.manifest.artifact("onnx", self.precision),
                                    device=self.device, optimization=self.optimization,
                                    threads=self.threads, spin_wait=self.spin_wait)
        self.providers = self.session.get_providers()
        entry = self.manifest.artifact("onnx", self.precision)
        check_session_io(self.manifest, [(entry, self.session)])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(list(OUTPUT_NAMES), engine_feeds(self.input_names, frames, content_hw))
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    def deactivate_impl(self) -> None:
        self.session = None
