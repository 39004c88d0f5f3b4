"""Build a TensorRT plan from the artifact directory's ONNX, with Polygraphy's lazy loaders.

    register plugins -> NetworkFromOnnxPath (parse) -> CreateConfig(profile, timing cache,
    workspace, progress, DLA) -> EngineBytesFromNetwork -> EngineFromBytes -> SaveEngine ->
    layer precisions -> manifest entry

``build_engine`` runs the CPU preflight first (ONNX validity, sha256, TensorRT support lint, the
plugins the graph needs), so a machine without TensorRT stops with ``TensorRTUnavailableError``
saying what passed. Parser and builder failures become ``EngineParseError`` (with the parser's
node and reason) and ``EngineBuildError`` (``failures``).
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
from export.tensorrt.failures import (
    build_failure,
    parse_failure,
    reparse_for_errors,
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
from plugins import (
    PluginLoadError,
    libraries_of,
    missing_plugins,
    plugins_of_onnx,
    register_plugins,
    resolve_versions,
)
from runtime.manifest import load_manifest

log = logging.getLogger("visdeploy.export.tensorrt")
DEFAULT_WORKSPACE_MB = 4096


@dataclass(frozen=True)
class BuildOptions:
    """What to build: precision, workspace limit, timing cache, GPU short name, device, the
    profile's T and B ranges (None: the manifest's), DLA (Jetson AGX/NX: Polygraphy's
    ``use_dla`` on DLA core 0, ``allow_gpu_fallback`` for layers DLA cannot run)."""

    precision: str
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None  # default: <artifacts>/timing.<gpu>.trt<version>.cache
    gpu_name: str | None = None       # default: derived from the device name (h100, rtx4090)
    device: int = 0
    lint_gate: bool = True
    frames: tuple[int, int, int] | None = None
    batch: tuple[int, int, int] | None = None
    use_dla: bool = False
    allow_gpu_fallback: bool = False

    def dla(self) -> dict | None:
        """DLA settings for ``CreateConfig`` and the manifest (None: GPU only)."""
        if not self.use_dla:
            return None
        return {"use_dla": True, "allow_gpu_fallback": self.allow_gpu_fallback, "core": 0}


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
                  *, timing_cache: Path, config_options: dict, dla: dict | None = None):
    """The lazy loaders ``(network, finish)``: calling ``network()`` parses the ONNX file and
    returns Polygraphy's ``(builder, network, parser)``; ``finish(parsed)`` builds, saves and
    returns the engine. Parsing and building are separate calls so that a failure of each gets
    its own message (``failures``).

    ``config_options``: TensorRT-valued ``CreateConfig`` arguments (workspace limit, profiling
    verbosity, progress monitor) from ``trt_config_options``; ``dla``: ``BuildOptions.dla()``.
    Constructing the loaders needs no TensorRT; calling them does.
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
    dla_options = ({"use_dla": True, "allow_gpu_fallback": dla["allow_gpu_fallback"]}
                   if dla else {})
    config = CreateConfig(profiles=[profile], load_timing_cache=str(timing_cache),
                          **dla_options, **config_options)

    def finish(parsed):
        engine_bytes = EngineBytesFromNetwork(parsed, config=config,
                                              save_timing_cache=str(timing_cache))
        return SaveEngine(EngineFromBytes(engine_bytes), path=str(plan_path))()

    finish.config = config  # for inspection in tests
    return network, finish


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


def _register_plugins(trt, onnx_path: Path, flavor: TrtFlavor) -> list[dict]:
    """Register TensorRT's plugins (and declared custom libraries) for the parser; the plugins
    the graph needs, with the versions this TensorRT's parser asks for."""
    plugins = resolve_versions(plugins_of_onnx(onnx_path), flavor.version)
    register_plugins(trt, trt.Logger(trt.Logger.WARNING), libraries_of(plugins))
    missing = missing_plugins(trt, plugins)
    if missing:
        raise PluginLoadError(f"{onnx_path.name} needs TensorRT plugins {missing}, which are not "
                              f"registered in TensorRT {flavor.version}; declare their library "
                              "in plugins/custom.json or use a TensorRT that ships them")
    return plugins


def _parse_and_build(trt, network, finish, onnx_path: Path, plan_path: Path, flavor: TrtFlavor):
    """Parse, then build; Polygraphy's exceptions become ``EngineParseError``/``EngineBuildError``."""
    from polygraphy.exception import PolygraphyException

    with phase(f"Parsing {onnx_path.name} (TensorRT ONNX parser)"):
        try:
            parsed = network()
        except PolygraphyException as err:
            errors = reparse_for_errors(trt, onnx_path, flavor.major == 10)
            raise parse_failure(onnx_path, errors, err) from err
    try:
        return finish(parsed)
    except PolygraphyException as err:
        raise build_failure(plan_path.name, err) from err


def _read_layers(engine, trt, flavor: TrtFlavor, requested: str, plan_path: Path) -> LayerPrecisions:
    """Layer precisions of the built engine; a contradiction deletes the plan and raises."""
    with phase("Reading layer precisions back (engine inspector)"):
        layers = parse_layer_information(engine_layer_information(engine, trt),
                                         flavor.inspector_type_keys)
        if not layers.verified:
            log.warning("layer precisions NOT verified: %s. The plan is kept and its manifest "
                        "entry says so; check it with `polygraphy inspect model %s --show "
                        "layers`", layers.unverified, plan_path)
        try:
            check_precision(layers, requested)
        except PrecisionMismatchError:
            plan_path.unlink(missing_ok=True)  # never leave a contradicting plan behind
            raise
    return layers


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
        shapes = profile_shapes(pre.inputs, manifest, frames=options.frames, batch=options.batch)
        pre.checked.append(f"optimisation profile (min, opt, max): {shapes}")
        needed = [f"{p['plugin']} (for {p['op']})" for p in plugins_of_onnx(onnx_path)]
        pre.checked.append(f"TensorRT plugins the graph needs: {', '.join(needed) or 'none'}")
    if missing:
        raise TensorRTUnavailableError(
            f"cannot build the plan here: {missing}.\nChecked without TensorRT:\n"
            f"{pre.describe()}\nThen, on that machine: python -m export.tensorrt "
            f"{manifest.directory} --precision {options.precision}") from missing
    platform = _running_platform(trt, options.device)
    gpu = options.gpu_name or gpu_slug(platform.gpu)
    plan_path = manifest.directory / plan_file_name(options.precision, gpu)
    cache = options.timing_cache or manifest.directory / f"timing.{gpu}.trt{flavor.version}.cache"
    plugins = _register_plugins(trt, onnx_path, flavor)
    log.info("TensorRT %s on %s (compute capability %s); profile %s; plugins %s; DLA %s",
             flavor.version, platform.gpu, platform.compute_capability, shapes,
             [p["plugin"] for p in plugins] or "none", options.dla() or "off")
    network, finish = build_loaders(onnx_path, plan_path, shapes, flavor, timing_cache=cache,
                                    config_options=trt_config_options(trt, options.workspace_mb),
                                    dla=options.dla())
    with phase(f"Building engine {plan_path.name} (workspace {options.workspace_mb} MiB, "
               f"timing cache {cache})"):
        engine = _parse_and_build(trt, network, finish, onnx_path, plan_path, flavor)
    layers = _read_layers(engine, trt, flavor, options.precision, plan_path)
    entry = plan_entry(manifest.directory, plan_path.name, precision=options.precision,
                       tensorrt=flavor.version, compute_capability=platform.compute_capability,
                       gpu=platform.gpu, source=source, profiles=shapes,
                       workspace_mb=options.workspace_mb, layers=layers.as_manifest(),
                       plugins=plugins, dla=options.dla())
    record_plan(manifest.directory, entry)
    return BuildResult(plan_path, entry, layers, pre, time.perf_counter() - start)
