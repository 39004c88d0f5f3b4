"""Named calibration errors. Each message says what was wrong and what to do next."""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "CalibrationDataError",
    "CalibrationError",
    "KeepListError",
    "QuantizerUnavailableError",
]


class CalibrationError(RuntimeError):
    """Base class of every error raised by ``calibration``."""


class CalibrationDataError(CalibrationError):
    """No usable calibration windows: the source is missing, empty or unreadable.

    Calibration never falls back to random data: ranges from noise would be wrong for video.
    """


class KeepListError(CalibrationError):
    """The per-model precision keep-list (``models/<name>/precision.json``) is missing or malformed."""


class QuantizerUnavailableError(CalibrationError):
    """A conversion tool (ModelOpt, onnxruntime.quantization) is not installed or cannot run."""


class BudgetError(CalibrationError):
    """The accuracy budget cannot be met even with every candidate layer kept in high precision."""
