"""TensorRT plugins the exported graphs need: which ONNX ops become which plugin, and loading them.

- ``table``: the ONNX ops that TensorRT's ONNX parser turns into plugins (``RoiAlign`` ->
  ``ROIAlign_TRT``, ``DeformConv`` -> ``ModulatedDeformConv2d``), with plugin version per TensorRT
  version and the source each fact comes from; custom-domain ops declared in ``custom.json``
  (with the library that registers them); ``plugins_of_onnx`` lists what a graph needs.
- ``loader``: registers TensorRT's standard plugins (``trt.init_libnvinfer_plugins``) and custom
  libraries (``trt.get_plugin_registry().load_library``), and names the plugins a registry lacks.
  Used by the engine builder (``export.tensorrt``) and the plan runner
  (``runtime.backends.tensorrt``).

Nothing here imports TensorRT, torch or onnx at import time (the runtime imports this package).
"""

from plugins.loader import PluginLoadError, missing_plugins, register_plugins
from plugins.table import (
    CUSTOM_DECLARATIONS,
    STANDARD_PLUGINS,
    CustomPlugin,
    PluginDeclarationError,
    StandardPlugin,
    libraries_of,
    load_custom_plugins,
    plugins_for_ops,
    plugins_of_onnx,
    resolve_versions,
)

__all__ = [
    "CUSTOM_DECLARATIONS", "STANDARD_PLUGINS", "CustomPlugin", "PluginDeclarationError",
    "PluginLoadError", "StandardPlugin", "libraries_of", "load_custom_plugins", "missing_plugins",
    "plugins_for_ops", "plugins_of_onnx", "register_plugins", "resolve_versions",
]
