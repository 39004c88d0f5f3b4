"""Named runtime errors (docs/contract.md §4). Each message says what was wrong and what to do next."""

from __future__ import annotations

from runtime.manifest import ArtifactError, ManifestError

__all__ = [
    "ArtifactError",
    "BackendInputError",
    "BackendUnavailableError",
    "ConfigError",
    "FrameSizeError",
    "ManifestError",
    "SinkError",
    "SourceError",
]


class SourceError(RuntimeError):
    """The source is missing, cannot be opened or is not a kind the runtime can read."""


class FrameSizeError(RuntimeError):
    """A frame of a new size arrived mid-stream while the policy (or a sink) forbids it."""


class ConfigError(ValueError):
    """A setting is out of range (window/stride, thresholds, output policy, ...)."""


class BackendUnavailableError(RuntimeError):
    """The requested backend or execution provider cannot run here (package or GPU missing)."""


class BackendInputError(ValueError):
    """Frames passed to ``Backend.infer`` do not match the manifest's input contract."""


class SinkError(RuntimeError):
    """An output cannot be written (path not writable, no GUI for --show, writer failed)."""


class EngineError(RuntimeError):
    """The inference engine failed on a window (onnxruntime, OpenVINO and TensorRT raise their
    own exception types; the runtime reports them as this one, so finished frames are still
    written and the run exits 1)."""
