"""visdeploy's torch-free streaming runtime: sources, windows, backends, tracking, sinks.

``from runtime import Pipeline`` is resolved lazily, so ``import runtime.manifest`` (used by the
exporter) does not load OpenCV, SciPy or onnxruntime.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Pipeline": "runtime.pipeline",
    "MultiStreamPipeline": "runtime.multistream",
    "FrameResult": "runtime.results",
    "TrackRecord": "runtime.results",
    "Tracker": "runtime.tracking",
    "open_source": "runtime.sources",
    "open_backend": "runtime.backends",
    "load_manifest": "runtime.manifest",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
