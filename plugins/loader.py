"""Register TensorRT plugins before a parser or a runtime needs them; name those still missing.

TensorRT's own plugins (``libnvinfer_plugin``: ``ROIAlign_TRT``, ``ModulatedDeformConv2d``) are
registered by ``trt.init_libnvinfer_plugins(logger, "")``; a plan that uses one fails to
deserialise without that call (NVIDIA/TensorRT ``samples/python/detectron2/infer.py`` calls it
before ``deserialize_cuda_engine``; Polygraphy 0.53.6 calls it in ``NetworkFromOnnxPath`` and
``EngineFromBytes``). Custom plugin libraries are loaded with
``trt.get_plugin_registry().load_library(path)``. ``IPluginRegistry.get_creator(type, version,
plugin_namespace)`` finds a registered creator of either interface (V2 or V3), or None
(NVIDIA/TensorRT ``python/src/infer/pyPlugin.cpp``). All three names are in the 10.3, 10.16 and
11.4 binding lists (``export/trt_support/bindings_trt*.txt``).
"""

from __future__ import annotations

from pathlib import Path


class PluginLoadError(RuntimeError):
    """A plugin library cannot be loaded, or plugins a graph or plan needs are not registered."""


def register_plugins(trt, trt_logger, libraries=()) -> list[str]:
    """Register TensorRT's standard plugins and load each custom plugin library in ``libraries``
    (paths). Returns the libraries loaded; raises ``PluginLoadError`` naming a missing library."""
    if not trt.init_libnvinfer_plugins(trt_logger, ""):
        raise PluginLoadError("trt.init_libnvinfer_plugins failed: TensorRT's plugin library "
                              "(libnvinfer_plugin) did not load; reinstall TensorRT")
    loaded = []
    registry = trt.get_plugin_registry()
    for library in libraries:
        path = Path(library)
        if not path.is_file():
            raise PluginLoadError(f"plugin library {path} does not exist; build it or fix its "
                                  "entry in plugins/custom.json")
        if registry.load_library(str(path)) is None:
            raise PluginLoadError(f"TensorRT could not load the plugin library {path}")
        loaded.append(str(path))
    return loaded


def missing_plugins(trt, required: list[dict]) -> list[str]:
    """``name version (namespace)`` of each entry of ``required`` (``plugin``, ``version``,
    ``namespace``) that has no registered creator."""
    registry = trt.get_plugin_registry()
    missing = []
    for entry in required:
        version, namespace = str(entry.get("version", "1")), entry.get("namespace", "")
        if registry.get_creator(entry["plugin"], version, namespace) is None:
            where = f", namespace {namespace!r}" if namespace else ""
            missing.append(f"{entry['plugin']} version {version}{where}")
    return missing
