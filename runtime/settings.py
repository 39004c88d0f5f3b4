"""Range checks for settings (CLI flags and API arguments), shared so every entry point refuses
the same values with the same words: ``ConfigError`` naming the setting, its range and the value.
"""

from __future__ import annotations

import math

from runtime.errors import ConfigError


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_fraction(name: str, value: float) -> float:
    """A finite number in [0, 1] (score thresholds)."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:  # nan fails both comparisons
        raise ConfigError(f"{name} must be a number in [0, 1]; got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """A finite number above 0 (frame rates)."""
    if not _is_number(value) or not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a positive, finite number; got {value!r}")
    return float(value)


def check_at_least(name: str, value: int, minimum: int, *, hint: str = "") -> int:
    """An integer >= ``minimum`` (frame counts, attempts, threads)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        words = "at least 1" if minimum == 1 else f"{minimum} or more"
        raise ConfigError(f"{name} must be {words}{hint}; got {value!r}")
    return value


def check_fourcc(fourcc: str) -> str:
    """A four-character video codec code such as ``mp4v`` or ``MJPG``."""
    if not isinstance(fourcc, str) or len(fourcc) != 4 or not fourcc.isprintable():
        raise ConfigError(f"--fourcc must be 4 characters (mp4v, MJPG, avc1, ...); got {fourcc!r}")
    return fourcc


def check_port(name: str, port: int) -> int:
    """A TCP port number (0: any free port)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be a TCP port in [0, 65535] (0: any free port); "
                          f"got {port!r}")
    return port


def check_non_negative(name: str, value: float) -> float:
    """A finite number >= 0 (waiting times)."""
    if not _is_number(value) or not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)
