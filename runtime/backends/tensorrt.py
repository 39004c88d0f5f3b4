"""TensorRT plan runner: tensorrt + cuda-python only (no torch, no pycuda).

``activate`` checks, in this order, before anything is deserialised: the packages, the running
platform (TensorRT version, GPU compute capability), a manifest plan entry built for exactly that
platform (else a refusal naming the rebuild command), the plan's sha256, and the TensorRT plugins
the plan needs (``plugins``: TensorRT's own registered with ``init_libnvinfer_plugins``, declared
custom libraries loaded; a plan whose plugins are still missing is refused, naming them). Then the
engine's I/O is compared with the manifest and its optimisation profile
(``get_tensor_profile_shape``) with the windows the runtime will feed. ``infer`` keeps pinned
host and device buffers per window shape (allocated once), sets the input shapes per window
(checking ``set_input_shape``'s result) and copies asynchronously on one stream.

The checks (``missing_packages``, ``plan_mismatch``, ``select_plan``, ``check_engine_io``,
``check_profile``, ``ensure_plugins``) need no GPU and are unit-tested on CPU (with a stand-in
``tensorrt`` module where they call it). tensorrt and cuda-python are imported only inside
functions, so the runtime imports without them.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from plugins import PluginLoadError, libraries_of, missing_plugins, register_plugins
from runtime.backends.base import OUTPUT_NAMES, Backend, engine_feeds
from runtime.errors import ArtifactError, BackendInputError, BackendUnavailableError, ConfigError
from runtime.manifest import CONTENT_HW, FRAMES, Manifest

log = logging.getLogger("runtime.backends")

# pip name -> importable module names (any one is enough); cuda-python < 12.6 has cuda.cudart
REQUIRED_PACKAGES = {"tensorrt": ("tensorrt",), "cuda-python": ("cuda.bindings", "cuda.cudart")}
INSTALL_HINT = ("pip install -e \".[trt]\" --extra-index-url https://pypi.nvidia.com on a machine "
                "with an NVIDIA GPU (Jetson: sudo apt-get install python3-libnvinfer and pip "
                "install cuda-python)")


class PlanMismatchError(ArtifactError):
    """The manifest's plans were built for another TensorRT version or GPU architecture."""


@dataclass(frozen=True)
class RunningPlatform:
    """What a plan must have been built for: TensorRT version and GPU compute capability."""

    tensorrt: str
    compute_capability: str
    gpu: str = ""


# -- pure checks (no tensorrt, no GPU) -------------------------------------------------------
def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def missing_packages(required: dict[str, tuple[str, ...]] = REQUIRED_PACKAGES) -> list[str]:
    """pip names of the ``required`` packages that are not importable here (nothing imported)."""
    return [pip for pip, modules in required.items() if not any(map(_importable, modules))]


def require_packages(required: dict[str, tuple[str, ...]] = REQUIRED_PACKAGES) -> None:
    """Raise ``BackendUnavailableError`` naming the missing packages and how to install them."""
    missing = missing_packages(required)
    if missing:
        raise BackendUnavailableError(
            f"the TensorRT backend needs {' and '.join(missing)}, which are not installed: "
            f"{INSTALL_HINT}. Without them use --backend onnxruntime (--device cuda or "
            "--device tensorrt use onnxruntime's CUDA / TensorRT execution providers)")


def rebuild_command(manifest: Manifest, precision: str) -> str:
    """The command that builds a plan for this machine."""
    return f"python -m export.tensorrt {manifest.directory} --precision {precision}"


def plan_mismatch(entry: dict, running: RunningPlatform) -> list[str]:
    """Why the plan ``entry`` cannot load on ``running`` (empty when it can)."""
    reasons = []
    built_trt, built_cc = entry.get("tensorrt"), entry.get("compute_capability")
    if built_trt != running.tensorrt:
        reasons.append(f"built with TensorRT {built_trt}, this machine runs {running.tensorrt}")
    if built_cc != running.compute_capability:
        gpu = f" ({running.gpu})" if running.gpu else ""
        reasons.append(f"built for compute capability {built_cc}, this GPU{gpu} is "
                       f"{running.compute_capability}")
    return reasons


def select_plan(manifest: Manifest, precision: str, running: RunningPlatform) -> dict:
    """The ``tensorrt`` entry at ``precision`` built for ``running``; refuse clearly otherwise."""
    plans = [e for e in manifest.data["artifacts"] if e["kind"] == "tensorrt"]
    candidates = [e for e in plans if e["precision"] == precision]
    command = rebuild_command(manifest, precision)
    if not candidates:
        have = ", ".join(f"{e['file']} ({e['precision']})" for e in plans) or "none"
        raise ArtifactError(f"{manifest.directory}: no TensorRT plan at {precision} (plans: "
                            f"{have}); build one on this machine: {command}")
    for entry in candidates:
        if not plan_mismatch(entry, running):
            return entry
    why = "; ".join(f"{e['file']}: {', '.join(plan_mismatch(e, running))}" for e in candidates)
    raise PlanMismatchError(
        f"no plan in {manifest.directory} fits this machine ({why}). A TensorRT plan only loads "
        f"with the TensorRT version and GPU architecture it was built for: rebuild it here with "
        f"`{command}`")


def check_engine_io(io: dict[str, tuple[str, np.dtype, tuple[int, ...]]], manifest: Manifest) -> None:
    """Compare engine I/O ``{name: (mode, dtype, shape)}`` with the manifest's contract."""
    h, w = manifest.input_hw
    inputs = {n: v for n, v in io.items() if v[0] == "input"}
    outputs = {n for n, v in io.items() if v[0] == "output"}
    if FRAMES not in inputs or not set(inputs) <= {FRAMES, CONTENT_HW}:
        raise ArtifactError(f"engine inputs are {sorted(inputs)}, the contract takes 'frames' "
                            "and optionally 'content_hw'; rebuild the plan from the current ONNX "
                            "export")
    _, dtype, shape = inputs[FRAMES]
    if np.dtype(dtype) != np.uint8 or len(shape) != 5 or tuple(shape[2:]) != (h, w, 3):
        raise ArtifactError(f"engine input frames is {np.dtype(dtype)} {tuple(shape)}, manifest "
                            f"says uint8 [B, T, {h}, {w}, 3]; plan and manifest.json disagree")
    if CONTENT_HW in inputs:
        _, dtype, shape = inputs[CONTENT_HW]
        if np.dtype(dtype) != np.int32 or len(shape) != 2 or shape[1] != 2:
            raise ArtifactError(f"engine input content_hw is {np.dtype(dtype)} {tuple(shape)}, "
                                "the contract says int32 [B, 2]; rebuild the plan")
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        raise ArtifactError(f"engine outputs lack {missing} (has {sorted(outputs)}); rebuild "
                            "the plan from the current ONNX export")


Profile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


def runtime_shapes(manifest: Manifest, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Input shapes of the windows the runtime feeds by default: B=1, T = the manifest's window
    length (the fixed T of a fixed-T model)."""
    h, w = manifest.input_hw
    return {FRAMES: (batch, manifest.window_frames, h, w, 3), CONTENT_HW: (batch, 2)}


def outside_profile(profile: Profile, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """``name shape outside [min, max]`` for each input of ``shapes`` the ``profile`` lacks."""
    problems = []
    for name, shape in shapes.items():
        if name not in profile:
            continue
        low, _, high = profile[name]
        if len(shape) != len(low) or any(not lo <= v <= hi for v, lo, hi in zip(shape, low, high)):
            problems.append(f"{name} {tuple(shape)} is outside the plan's profile "
                            f"[{tuple(low)} .. {tuple(high)}]")
    return problems


def check_profile(profile: Profile, manifest: Manifest, precision: str) -> list[str]:
    """Refuse a plan whose profile cannot take the runtime's default window; return warnings
    (a short final window of a short stream may still be refused)."""
    shapes = {n: s for n, s in runtime_shapes(manifest).items() if n in profile}
    problems = outside_profile(profile, shapes)
    if problems:
        frames = shapes[FRAMES]
        raise ArtifactError(
            f"{'; '.join(problems)}: the runtime feeds windows of B={frames[0]}, T={frames[1]}. "
            f"Rebuild the plan with a profile that covers them: {rebuild_command(manifest, precision)}"
            f" --frames 1,{frames[1]},{frames[1]} --batch 1,1,{frames[0]}")
    warnings = []
    t_low = profile[FRAMES][0][1] if FRAMES in profile else 1
    if not manifest.fixed_frames and t_low > manifest.frames_range[0]:
        warnings.append(f"the plan's profile starts at T={t_low}: a stream shorter than "
                        f"{t_low} frames (its only, short window) will be refused")
    return warnings


def ensure_plugins(trt, trt_logger, entry: dict) -> list[dict]:
    """Register the plugins the plan ``entry`` needs (``tensorrt_plugins``); refuse, naming them,
    when some are still missing. Returns the entry's plugin list."""
    required = entry.get("tensorrt_plugins", [])
    try:
        register_plugins(trt, trt_logger, libraries_of(required))
    except PluginLoadError as err:
        raise BackendUnavailableError(f"{entry['file']}: {err}") from err
    missing = missing_plugins(trt, required)
    if missing:
        raise ArtifactError(
            f"{entry['file']} needs the TensorRT plugins {', '.join(missing)}, which are not "
            f"registered in TensorRT {trt.__version__} here (checked after init_libnvinfer_plugins "
            "and the libraries in plugins/custom.json); install the TensorRT that built the plan "
            "or its plugin library")
    return required


def parse_device(device: str | int) -> int:
    """GPU index from ``auto``/``cuda``/``cuda:N``/``N``; ``cpu`` is refused."""
    text = str(device)
    if text in ("auto", "cuda", "tensorrt"):
        return 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    if text.isdigit():
        return int(text)
    raise ConfigError(f"the TensorRT backend runs on an NVIDIA GPU; device {device!r} is not one "
                      "(use auto, cuda or cuda:N, or --backend onnxruntime --device cpu)")


# -- CUDA helpers (cuda-python) --------------------------------------------------------------
def import_cudart():
    """cuda-python's runtime API module (``cuda.bindings.runtime``; older: ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart
    return cudart


def cuda_call(cudart, result):
    """Unwrap cuda-python's ``(error, *values)``; raise ``RuntimeError`` on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(err)
        raise RuntimeError(f"CUDA call failed with {name}; check the NVIDIA driver and "
                           "that a GPU is visible (nvidia-smi)")
    return values[0] if len(values) == 1 else tuple(values) or None


def running_platform(trt, cudart, device: int) -> RunningPlatform:
    """TensorRT version, compute capability and name of GPU ``device``."""
    cuda_call(cudart, cudart.cudaSetDevice(device))
    props = cuda_call(cudart, cudart.cudaGetDeviceProperties(device))
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return RunningPlatform(tensorrt=trt.__version__,
                           compute_capability=f"{props.major}.{props.minor}",
                           gpu=name.rstrip("\0").strip())


def engine_profile(engine, names) -> Profile:
    """``{input: (min, opt, max)}`` of optimisation profile 0 (``get_tensor_profile_shape``)."""
    return {name: tuple(tuple(int(d) for d in dims)
                        for dims in engine.get_tensor_profile_shape(name, 0))
            for name in names}


def engine_io(engine, trt) -> dict[str, tuple[str, np.dtype, tuple[int, ...]]]:
    """``{name: (mode, dtype, shape)}`` of the engine's I/O tensors (-1 marks dynamic dims)."""
    io = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        io[name] = (mode, np.dtype(trt.nptype(engine.get_tensor_dtype(name))),
                    tuple(engine.get_tensor_shape(name)))
    return io


@dataclass
class _ShapeBuffers:
    """Pinned host arrays and device pointers for one (B, T) window shape."""

    host: dict[str, np.ndarray] = field(default_factory=dict)
    host_ptr: dict[str, int] = field(default_factory=dict)
    device_ptr: dict[str, int] = field(default_factory=dict)

    def free(self, cudart) -> None:
        for ptr in self.device_ptr.values():
            cudart.cudaFree(ptr)
        for ptr in self.host_ptr.values():
            cudart.cudaFreeHost(ptr)
        self.host.clear()
        self.host_ptr.clear()
        self.device_ptr.clear()


class TensorRTBackend(Backend):
    """Runs the manifest's TensorRT plan for ``precision`` on GPU ``device``.

    Args:
        manifest: the artifact directory's manifest (lists the plans and their platforms).
        precision: which plan to load (fp32, fp16, int8).
        device: ``auto``/``cuda`` (GPU 0) or ``cuda:N``.
    """

    name = "tensorrt"

    def __init__(self, manifest: Manifest, *, precision: str = "fp32", device: str = "auto",
                 threads: int = 0) -> None:
        super().__init__(manifest)
        self.precision, self.device = precision, parse_device(device)
        self.entry: dict | None = None
        self.platform: RunningPlatform | None = None
        self._buffers: dict[tuple[int, ...], _ShapeBuffers] = {}
        self.profile: Profile = {}
        self.engine = self.context = self.stream = None

    def activate_impl(self) -> None:
        require_packages()
        try:
            import tensorrt as trt

            self.cudart = import_cudart()
        except ImportError as err:  # installed but its libraries (libnvinfer, libcudart) fail
            raise BackendUnavailableError(f"TensorRT or cuda-python is installed but does not "
                                          f"load ({err}); {INSTALL_HINT}") from err
        self.platform = running_platform(trt, self.cudart, self.device)
        self.entry = select_plan(self.manifest, self.precision, self.platform)
        path = self.manifest.verified_path(self.entry)  # sha256 before deserialising
        self.trt_logger = trt.Logger(trt.Logger.WARNING)
        ensure_plugins(trt, self.trt_logger, self.entry)  # before deserialising: plans need them
        log.info("Loading %s (%.1f MB) on %s ...", path.name, path.stat().st_size / 1e6,
                 self.platform.gpu)
        start = time.perf_counter()
        self.trt_runtime = trt.Runtime(self.trt_logger)
        self.engine = self.trt_runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ArtifactError(f"TensorRT could not deserialise {path}; rebuild it with "
                                f"`{rebuild_command(self.manifest, self.precision)}`")
        self.io = engine_io(self.engine, trt)
        check_engine_io(self.io, self.manifest)
        self.profile = engine_profile(self.engine, [n for n, v in self.io.items()
                                                    if v[0] == "input"])
        for warning in check_profile(self.profile, self.manifest, self.precision):
            log.warning("%s: %s", path.name, warning)
        self.context = self.engine.create_execution_context()
        self.stream = cuda_call(self.cudart, self.cudart.cudaStreamCreate())
        log.info("Engine ready in %.2f s", time.perf_counter() - start)

    def _set_input_shapes(self, shape: tuple[int, ...]) -> None:
        """Set every input's shape for frames of ``shape`` (content_hw follows B); a shape the
        plan's profile refuses (``set_input_shape`` returns False) raises ``BackendInputError``."""
        shapes = {FRAMES: tuple(shape)}
        if CONTENT_HW in self.io:
            shapes[CONTENT_HW] = (shape[0], 2)
        for name, dims in shapes.items():
            if not self.context.set_input_shape(name, dims):
                why = outside_profile(self.profile, {name: dims}) or [f"{name} {dims} refused"]
                raise BackendInputError(
                    f"{'; '.join(why)}; feed windows inside it or rebuild the plan with a wider "
                    f"profile: {rebuild_command(self.manifest, self.precision)} --frames "
                    "MIN,OPT,MAX --batch MIN,OPT,MAX")

    def _allocate(self, shape: tuple[int, ...]) -> _ShapeBuffers:
        """Pinned host + device buffers for every I/O tensor at input shape ``shape``."""
        buffers = _ShapeBuffers()
        self._set_input_shapes(shape)
        for name, (_, dtype, _) in self.io.items():
            dims = tuple(self.context.get_tensor_shape(name))
            count = int(np.prod(dims))
            nbytes = max(count * dtype.itemsize, 1)
            buffers.device_ptr[name] = cuda_call(self.cudart, self.cudart.cudaMalloc(nbytes))
            host_ptr = cuda_call(self.cudart, self.cudart.cudaMallocHost(nbytes))
            buffers.host_ptr[name] = host_ptr
            raw = (ctypes.c_uint8 * nbytes).from_address(host_ptr)
            buffers.host[name] = np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)
        return buffers

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        cudart, stream = self.cudart, self.stream
        # the current device is per thread: the pipelined runtime (runtime.staged) calls infer
        # from its own inference thread, which starts on GPU 0
        cuda_call(cudart, cudart.cudaSetDevice(self.device))
        if frames.shape not in self._buffers:
            self._buffers[frames.shape] = self._allocate(frames.shape)
        buffers = self._buffers[frames.shape]
        self._set_input_shapes(frames.shape)  # shapes are set per window
        for name, ptr in buffers.device_ptr.items():
            self.context.set_tensor_address(name, ptr)
        feeds = engine_feeds([n for n, v in self.io.items() if v[0] == "input"], frames, content_hw)
        to_device, to_host = (cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                              cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        for name, value in feeds.items():
            np.copyto(buffers.host[name], value)
            cuda_call(cudart, cudart.cudaMemcpyAsync(buffers.device_ptr[name],
                                                     buffers.host_ptr[name], value.nbytes,
                                                     to_device, stream))
        if not self.context.execute_async_v3(stream_handle=int(stream)):
            raise RuntimeError(f"TensorRT execution failed for frames of shape {frames.shape}")
        for name in OUTPUT_NAMES:
            cuda_call(cudart, cudart.cudaMemcpyAsync(buffers.host_ptr[name],
                                                     buffers.device_ptr[name],
                                                     buffers.host[name].nbytes, to_host, stream))
        cuda_call(cudart, cudart.cudaStreamSynchronize(stream))
        return {name: buffers.host[name].copy() for name in OUTPUT_NAMES}

    def deactivate_impl(self) -> None:
        for buffers in self._buffers.values():
            buffers.free(self.cudart)
        self._buffers.clear()
        if self.stream is not None:
            self.cudart.cudaStreamDestroy(self.stream)
        self.context = self.engine = self.stream = None


def open_tensorrt_backend(manifest: Manifest, **options) -> TensorRTBackend:
    """Build (not activate) the TensorRT backend; missing packages fail here, before any frame."""
    require_packages()
    return TensorRTBackend(manifest, **options)
