"""OpenVINO backend: the artifact's ONNX graphs (fp32, fp16 or int8) compiled for the CPU.

OpenVINO reads the ONNX export directly (no conversion step, no extra artifact). Compiled models
are cached in the artifact directory (``runtime.backends.openvino_cache``). ``openvino`` is
imported only when this backend is chosen; install it with ``pip install -e ".[openvino]"``.

Compile properties (``compile_config``):

- ``INFERENCE_PRECISION_HINT = f32`` for every artifact. On CPUs with AVX512-BF16 or AMX
  OpenVINO's default inference precision is bf16: it silently runs an FP32 graph in bf16. On
  the tiny TeViT export that moved scores by 7e-3 and boxes by 258 px against onnxruntime (with
  f32: 1.6e-6 and 9e-4 px). The artifact's precision must be the one its graph and its parity
  / calibration records state, so the graph's float ops run in f32: an fp16 artifact keeps its
  fp16-rounded weights and the layers calibration kept in fp32 stay fp32; an int8 artifact's
  Q/DQ pairs still run as INT8 kernels (OpenVINO's low-precision transformations follow them).
- ``PERFORMANCE_HINT = LATENCY``: one window at a time, as the pipeline calls it.
- ``INFERENCE_NUM_THREADS`` from ``threads`` (``--threads``; 0 = OpenVINO's default).

Static shapes, per artifact. A graph keeps its dynamic batch and frame axes unless its manifest
entry records ``openvino_static``: the input shapes of one window (``{"inputs": {"frames":
[1, T, H, W, 3], "content_hw": [1, 2]}, ...}``) for which calibration (``--check-backend
openvino``) compiled the written graph statically and measured it within the same budget
(``calibration.openvino_static``). Then that shape is compiled at activation and every window of
exactly that shape runs on it, as does each row of a batch of several streams' windows of that
shape; a window of any other shape (another ``--window``, the one short window of a stream
shorter than T) runs on the dynamic compile, made the first time one arrives. Why per
artifact: compiled for one static window shape, openvino 2026.4.1 ran FP32 graphs with equal
outputs and 6-13 % faster (VisTR tiny, msgshift) and msgshift's NNCF INT8 graph 23-29 % faster
within its parity budget, but VisTR tiny's NNCF INT8 graph into wrong outputs (parity loss 16.9
against 0.80 dynamic; docs/notes/lab-notebook.md, "Static-shape OpenVINO compiles, per
artifact"). ``static_shapes=False`` ignores the record.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np

from runtime.backends.base import OUTPUT_NAMES, Backend, engine_feeds
from runtime.backends.cpu_forms import log_cpu_export_form_advice
from runtime.backends.cpu_isa import int8_check_warning, int8_kernel_family
from runtime.backends.onnxrt import check_session_io
from runtime.backends.openvino_cache import compile_entry
from runtime.backends.two_stage import StagedFeatures
from runtime.errors import BackendUnavailableError, ConfigError
from runtime.manifest import CONTRACT_INPUTS, FRAMES, Manifest

log = logging.getLogger("runtime.backends")

INSTALL_HINT = ("pip install -e \".[openvino]\" (or pip install openvino); without it use "
                "--backend onnxruntime")
CPU_DEVICES = ("auto", "cpu")
ONNX_TYPE_NAMES = {"float32": "float", "float64": "double"}  # numpy name -> ONNX type name


def openvino_installed() -> bool:
    """Whether ``openvino`` is importable (nothing is imported)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def import_openvino():
    """The ``openvino`` module, or ``BackendUnavailableError`` saying how to install it."""
    try:
        import openvino
    except ImportError as err:
        raise BackendUnavailableError(
            f"the OpenVINO backend needs the openvino package, which is not installed "
            f"({err}): {INSTALL_HINT}") from err
    return openvino


def compile_config(threads: int = 0) -> dict:
    """CPU compile properties (module docstring says why each)."""
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def check_device(device: str) -> None:
    if device not in CPU_DEVICES:
        raise ConfigError(f"the OpenVINO backend runs on the CPU; device {device!r} is not one "
                          "(use --device cpu or auto, or --backend onnxruntime/tensorrt for a GPU)")


class _Port:
    """An OpenVINO model port seen like onnxruntime's ``NodeArg`` (``name``, ``type`` such as
    ``tensor(uint8)``, ``shape`` with ints for static and strings for dynamic dimensions), so
    ``check_session_io`` checks both runtimes' graphs against the manifest.

    A port can carry several tensor names (a graph output that is also an inner node's output,
    e.g. ``query_index`` and ``div_55``); the one in ``known`` is its graph name."""

    def __init__(self, port, known: frozenset[str]) -> None:
        names = port.get_names()
        self.name = next((n for n in sorted(names) if n in known), port.get_any_name())
        dtype = np.dtype(port.get_element_type().to_dtype()).name
        self.type = f"tensor({ONNX_TYPE_NAMES.get(dtype, dtype)})"
        self.shape = [d.get_length() if d.is_static else str(d) for d in port.get_partial_shape()]


class CompiledIO:
    """``get_inputs()`` / ``get_outputs()`` of a ``CompiledModel``, onnxruntime style; port
    names are resolved against the contract's names and those the manifest ``entries`` list."""

    def __init__(self, compiled, *entries: dict) -> None:
        self.compiled = compiled
        listed = {n for e in entries for key in ("inputs", "outputs") for n in e.get(key, ())}
        self.known = frozenset({*OUTPUT_NAMES, *CONTRACT_INPUTS, *listed})

    def get_inputs(self) -> list[_Port]:
        return [_Port(p, self.known) for p in self.compiled.inputs]

    def get_outputs(self) -> list[_Port]:
        return [_Port(p, self.known) for p in self.compiled.outputs]


def run_compiled(request, compiled, names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Synchronous inference: the outputs ``names`` as numpy arrays owned by the caller."""
    result = request.infer(feeds, share_inputs=True, share_outputs=False)
    return [np.asarray(result[compiled.output(name)]) for name in names]


class OpenVINOBackend(Backend):
    """Runs ``model.<precision>.onnx`` from the manifest with OpenVINO on the CPU.

    Args:
        manifest: the artifact directory's manifest.
        device: ``auto`` or ``cpu`` (OpenVINO's CPU plugin).
        precision: which ONNX artifact to load (fp32, fp16, int8).
        threads: inference threads, 0 = OpenVINO's default (all cores).
        cache: keep compiled models in ``<artifacts>/openvino_cache`` (module docstring).
        static_shapes: compile the window shape the artifact's manifest entry records as
            checked (``openvino_static``, module docstring) statically; False: always dynamic.
    """

    name = "openvino"

    def __init__(self, manifest: Manifest, *, device: str = "auto", precision: str = "fp32",
                 threads: int = 0, cache: bool = True, static_shapes: bool = True) -> None:
        super().__init__(manifest)
        check_device(device)
        self.device, self.precision, self.threads, self.use_cache = device, precision, threads, cache
        self.use_static = static_shapes
        self.config = compile_config(threads)
        self.compiled = self.request = self.core = None
        self.entry: dict = {}  # the manifest entry of the activated graph
        self.dynamic = None  # (compiled, request) for windows of other shapes, made on first need
        self.static_shapes: dict[str, tuple[int, ...]] = {}  # input -> shape self.compiled is for
        self.cache_status: list[str] = []  # per compiled graph: "cache", "compiled", ...
        self.input_names: list[str] = []

    def _compile(self, entry: dict, shapes: dict | None = None):
        if self.core is None:
            self.core = import_openvino().Core()
        compiled, status = compile_entry(self.core, self.manifest, entry, self.config,
                                         use_cache=self.use_cache, shapes=shapes)
        self.cache_status.append(status)
        return compiled

    def activate_impl(self) -> None:
        self.cache_status, self.dynamic = [], None
        self.entry = entry = self.manifest.artifact("onnx", self.precision)
        shapes = static_shapes(entry) if self.use_static else {}
        self.compiled = self._compile(entry, shapes or None)
        self.static_shapes = shapes
        io = CompiledIO(self.compiled, entry)
        check_session_io(self.manifest, [(entry, io)])
        self.input_names = [p.name for p in io.get_inputs()]
        self.request = self.compiled.create_infer_request()
        log_cpu_export_form_advice(self.manifest)
        warn_about_int8_check(self.precision, entry)
        if shapes:
            log.info("OpenVINO runs %s compiled for %s (checked by its calibration); windows of "
                     "other shapes run a dynamic compile", entry["file"], shapes)

    def _rows_fit_static(self, feeds: dict[str, np.ndarray]) -> bool:
        """Whether every row of a batch of B > 1 windows has the static (batch-1) shape: then
        each row runs on the static compile, the shape calibration checked. msgshift INT8 at
        384x640, B=2: 1071 ms as two static rows, 1389 ms on the dynamic compile."""
        return bool(self.static_shapes) and all(
            shape[0] == 1 and feeds[name].shape[0] > 1 and feeds[name].shape[1:] == shape[1:]
            for name, shape in self.static_shapes.items())

    def _for(self, feeds: dict[str, np.ndarray]):
        """(compiled, request) that runs ``feeds``: the static compile when they have its
        shapes, else the dynamic one (compiled the first time it is needed)."""
        if not self.static_shapes or all(
                feeds[name].shape == shape for name, shape in self.static_shapes.items()):
            return self.compiled, self.request
        if self.dynamic is None:
            log.info("a window of shape %s is not the static shape %s: compiling %s with "
                     "dynamic shapes for it", {k: v.shape for k, v in feeds.items()},
                     self.static_shapes, self.entry["file"])
            compiled = self._compile(self.entry)
            self.dynamic = compiled, compiled.create_infer_request()
        return self.dynamic

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        feeds = engine_feeds(self.input_names, frames, content_hw)
        if self._rows_fit_static(feeds):  # every contract output is batch-first
            rows = [run_compiled(self.request, self.compiled, OUTPUT_NAMES,
                                 {name: value[i:i + 1] for name, value in feeds.items()})
                    for i in range(len(frames))]
            values = [np.concatenate(parts) for parts in zip(*rows, strict=True)]
        else:
            compiled, request = self._for(feeds)
            values = run_compiled(request, compiled, OUTPUT_NAMES, feeds)
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    def deactivate_impl(self) -> None:
        self.request = self.compiled = self.core = self.dynamic = None


def warn_about_int8_check(precision: str, *entries: dict) -> None:
    """Warn once when an INT8 graph's recorded budget was measured on another runtime or with
    another INT8 kernel family than this CPU's (``runtime.backends.cpu_isa``)."""
    if precision != "int8":
        return
    family = int8_kernel_family()
    for entry in entries:
        warning = int8_check_warning(entry.get("calibration") or {}, family)
        if warning:
            log.warning("%s: %s", entry["file"], warning)
            return


def static_shapes(entry: dict) -> dict[str, tuple[int, ...]]:
    """Input name -> static shape the manifest ``entry`` was checked for with OpenVINO (its
    ``openvino_static`` record, written by calibration only when the static compile held the
    budget); {} when there is none."""
    record = entry.get("openvino_static") or {}
    return {name: tuple(int(d) for d in shape) for name, shape in record.get("inputs", {}).items()}


class TwoStageOpenVINOBackend(StagedFeatures, OpenVINOBackend):
    """The frame and clip stages with OpenVINO, each frame's features computed once
    (``runtime.backends.two_stage.StagedFeatures``). Arguments of ``OpenVINOBackend`` plus
    ``cache_frames``. Both stages compile dynamic (stage entries carry no ``openvino_static``):
    compiled static, IFC's clip stage saved about 0.6 ms of a tiny window's 8.2 ms and nothing
    at r50, its frame stage 3-8 % (openvino 2026.4.1; docs/notes/lab-notebook.md, "Static
    compiles under the AP budget; IFC's static compile was wrong")."""

    name = "openvino-two-stage"

    def __init__(self, manifest: Manifest, *, cache_frames: int | None = None, **options) -> None:
        super().__init__(manifest, **options)
        self.init_stages(manifest, cache_frames)
        self.frame_model = self.clip_model = self.frame_request = self.clip_request = None

    def activate_impl(self) -> None:
        self.cache_status = []
        frame_entry = self.manifest.artifact("onnx", self.precision, stage="frame")
        clip_entry = self.manifest.artifact("onnx", self.precision, stage="clip")
        self.frame_model, self.clip_model = self._compile(frame_entry), self._compile(clip_entry)
        frame_io = CompiledIO(self.frame_model, frame_entry, clip_entry)
        clip_io = CompiledIO(self.clip_model, frame_entry, clip_entry)
        check_session_io(self.manifest, [(frame_entry, frame_io), (clip_entry, clip_io)])
        self.link_stages([p.name for p in clip_io.get_inputs()])
        self.frame_request = self.frame_model.create_infer_request()
        self.clip_request = self.clip_model.create_infer_request()
        warn_about_int8_check(self.precision, frame_entry, clip_entry)

    def run_frame_stage(self, frames: np.ndarray) -> list[np.ndarray]:
        return run_compiled(self.frame_request, self.frame_model, self.feature_names,
                            {FRAMES: frames})

    def run_clip_stage(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = run_compiled(self.clip_request, self.clip_model, OUTPUT_NAMES, feeds)
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    def deactivate_impl(self) -> None:
        self.frame_model = self.clip_model = self.frame_request = self.clip_request = None
        self.core = None
        self.cache.clear()


MATMUL_KERNELS = ("Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul")


def kernel_precisions(compiled) -> dict[tuple[str, str], int]:
    """{(layer type, runtime precision): count} of the convolution and matrix-product layers
    OpenVINO actually runs (its runtime model), e.g. ``("Convolution", "i8")`` for INT8 kernels."""
    counts: dict[tuple[str, str], int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        if kind in MATMUL_KERNELS:
            precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
            counts[(kind, precision)] = counts.get((kind, precision), 0) + 1
    return counts
