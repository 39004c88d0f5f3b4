"""Build a TensorRT plan from the artifact directory's ONNX, with Polygraphy's lazy loaders.

    NetworkFromOnnxPath -> CreateConfig(profile, timing cache, workspace, progress) ->
    EngineBytesFromNetwork -> EngineFromBytes -> SaveEngine -> layer precisions -> manifest entry

``build_engine`` runs the CPU preflight first (ONNX validity, sha256, TensorRT support lint), so
a machine without TensorRT stops with ``TensorRTUnavailableError`` saying what passed.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from export.tensorrt.compat import (
    TensorRTUnavailableError,
    TrtFlavor,
    flavor_for,
    import_tensorrt,
)
from export.tensorrt.layers import (
    LayerPrecisions,
    PrecisionMismatchError,
    check_precision,
    engine_layer_information,
    parse_layer_information,
)
from export.tensorrt.plan import (
    gpu_slug,
    onnx_entry,
    plan_entry,
    plan_file_name,
    profile_shapes,
    record_plan,
)
from export.tensorrt.preflight import Preflight, run_preflight
from export.trt_support import DEFAULT_TARGETS
from runtime.manifest import load_manifest

log = logging.getLogger("visdeploy.export.tensorrt")
DEFAULT_WORKSPACE_MB = 4096


@dataclass(frozen=True)
class BuildOptions:
    """What to build: precision, workspace limit, timing cache, GPU short name, device."""

    precision: str
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None  # default: <artifacts>/timing.<gpu>.trt<version>.cache
    gpu_name: str | None = None       # default: derived from the device name (h100, rtx4090)
    device: int = 0
    lint_gate: bool = True


@dataclass
class BuildResult:
    """The saved plan, its manifest entry, the layer precisions and the preflight."""

    plan_path: Path
    entry: dict
    layers: LayerPrecisions
    preflight: Preflight
    seconds: float


@contextmanager
def phase(what: str):
    """Log ``<what>…`` then ``<what> finished in X s``."""
    log.info("%s…", what)
    start = time.perf_counter()
    yield
    log.info("%s finished in %.1f s", what, time.perf_counter() - start)


def make_progress_monitor(trt):
    """A ``trt.IProgressMonitor`` that logs the builder's top-level phases."""

    class BuildProgress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.depth: dict[str, int] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            depth = 0 if parent_phase is None else self.depth.get(parent_phase, 0) + 1
            self.depth[phase_name] = depth
            if depth <= 1:
                log.info("%s%s (%d steps)", "  " * (depth + 1), phase_name, num_steps)

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            self.depth.pop(phase_name, None)

    return BuildProgress()


def build_loaders(onnx_path: Path, plan_path: Path, shapes: dict[str, tuple], flavor: TrtFlavor,
                  *, timing_cache: Path, config_options: dict):
    """The lazy loader chain; calling the result builds, saves and returns the engine.

    ``config_options``: TensorRT-valued ``CreateConfig`` arguments (workspace limit, profiling
    verbosity, progress monitor) from ``trt_config_options``. Constructing the chain needs no
    TensorRT; calling it does.
    """
    from polygraphy.backend.trt import (
        CreateConfig,
        EngineBytesFromNetwork,
        EngineFromBytes,
        NetworkFromOnnxPath,
        Profile,
        SaveEngine,
    )

    profile = Profile()
    for name, (low, opt, high) in shapes.items():
        profile.add(name, min=low, opt=opt, max=high)
    network = NetworkFromOnnxPath(str(onnx_path), **flavor.network_options())
    config = CreateConfig(profiles=[profile], load_timing_cache=str(timing_cache), **config_options)
    engine_bytes = EngineBytesFromNetwork(network, config=config, save_timing_cache=str(timing_cache))
    return SaveEngine(EngineFromBytes(engine_bytes), path=str(plan_path))


def trt_config_options(trt, workspace_mb: int) -> dict:
    """``CreateConfig`` arguments that need TensorRT enums: workspace, DETAILED info, progress."""
    return {"memory_pool_limits": {trt.MemoryPoolType.WORKSPACE: workspace_mb << 20},
            "profiling_verbosity": trt.ProfilingVerbosity.DETAILED,
            "progress_monitor": make_progress_monitor(trt)}


def _running_platform(trt, device: int):
    """TensorRT version and GPU facts via cuda-python (the runtime backend's helper)."""
    from runtime.backends.tensorrt import import_cudart, running_platform

    try:
        cudart = import_cudart()
    except ImportError as err:
        raise TensorRTUnavailableError("cuda-python is needed to read the GPU's compute "
                                       "capability: pip install cuda-python") from err
    return running_platform(trt, cudart, device)


def _try_import_tensorrt():
    """``(tensorrt module, None)`` or ``(None, TensorRTUnavailableError)``."""
    try:
        return import_tensorrt(), None
    except TensorRTUnavailableError as err:
        return None, err


def build_engine(artifacts: str | Path, options: BuildOptions) -> BuildResult:
    """Preflight, build, verify layer precisions and record the plan in ``manifest.json``."""
    start = time.perf_counter()
    manifest = load_manifest(artifacts)
    source = onnx_entry(manifest, options.precision)
    onnx_path = manifest.verified_path(source)
    trt, missing = _try_import_tensorrt()
    flavor = flavor_for(trt.__version__) if trt else None
    targets = ([(flavor.major, flavor.version)] if flavor
               else [(major, None) for major in sorted(DEFAULT_TARGETS)])
    with phase(f"Checking {onnx_path.name} for TensorRT (ONNX validity, operator support)"):
        pre = run_preflight(onnx_path, targets, gate=options.lint_gate)
    if missing:
        raise TensorRTUnavailableError(
            f"cannot build the plan here: {missing}.\nChecked without TensorRT:\n"
            f"{pre.describe()}\nThen, on that machine: python -m export.tensorrt "
            f"{manifest.directory} --precision {options.precision}") from missing
    platform = _running_platform(trt, options.device)
    gpu = options.gpu_name or gpu_slug(platform.gpu)
    plan_path = manifest.directory / plan_file_name(options.precision, gpu)
    cache = options.timing_cache or manifest.directory / f"timing.{gpu}.trt{flavor.version}.cache"
    shapes = profile_shapes(pre.inputs, manifest)
    log.info("TensorRT %s on %s (compute capability %s); profile %s", flavor.version,
             platform.gpu, platform.compute_capability, shapes)
    save = build_loaders(onnx_path, plan_path, shapes, flavor, timing_cache=cache,
                         config_options=trt_config_options(trt, options.workspace_mb))
    with phase(f"Building engine {plan_path.name} (workspace {options.workspace_mb} MiB, "
               f"timing cache {cache})"):
        engine = save()
    with phase("Reading layer precisions back (engine inspector)"):
        layers = parse_layer_information(engine_layer_information(engine, trt),
                                         flavor.inspector_type_keys)
        try:
            check_precision(layers, options.precision)
        except PrecisionMismatchError:
            plan_path.unlink(missing_ok=True)  # never leave an unverified plan behind
            raise
    entry = plan_entry(manifest.directory, plan_path.name, precision=options.precision,
                       tensorrt=flavor.version, compute_capability=platform.compute_capability,
                       gpu=platform.gpu, source=source, profiles=shapes,
                       workspace_mb=options.workspace_mb, layers=dict(layers.counts))
    record_plan(manifest.directory, entry)
    return BuildResult(plan_path, entry, layers, pre, time.perf_counter() - start)
