"""Named exceptions of the evaluation package.

Every message says which entry was wrong and what to do next.
"""

from __future__ import annotations


class EvaluationError(Exception):
    """Base class of every error raised by ``evaluation``."""


class GroundTruthFormatError(EvaluationError, ValueError):
    """The ground-truth JSON is not valid YouTube-VIS ground truth."""


class ResultsFormatError(EvaluationError, ValueError):
    """A results entry breaks the YouTube-VIS results format (strict mode).

    Pass ``lenient=True`` (CLI ``--lenient``) to score it the way the official server does,
    which silently truncates or zeroes the faulty frames; a warning names each entry.
    """


class TrackingInputError(EvaluationError, ValueError):
    """Per-frame tracks or chunk tracks given to the tracking metrics are malformed."""


class SyntheticConfigError(EvaluationError, ValueError):
    """Impossible settings for the synthetic video generator (sizes, counts, preset)."""


class DatasetReadError(EvaluationError, OSError):
    """A generated dataset (annotations, MP4 or PNG frames) is missing or unreadable."""


class LenientWarning(UserWarning):
    """A results problem that lenient mode scored the official way instead of refusing."""


class DatasetWriteError(EvaluationError, OSError):
    """The generator could not write a file (output folder, MP4 codec, PNG)."""
