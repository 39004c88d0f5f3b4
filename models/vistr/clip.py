"""VisTR's clip rule: one clip of exactly T frames; short videos repeated cyclically (A.4).

The official ``inference.py`` builds the clip from the video's frame list::

    if length < num_frames:
        clip_names = file_names * math.ceil(num_frames / length)
        clip_names = clip_names[:num_frames]
    else:
        clip_names = file_names[:num_frames]

and keeps the first ``min(length, num_frames)`` frames of the result. The exported VisTR graph has
a static T, so this padding is the runtime's job (the manifest says ``short_clip_padding:
cyclic``); these pure functions document the rule and are what the tests check it against. No
torch here, so the torch-free runtime may mirror it line by line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

Item = TypeVar("Item")


class ClipLengthError(ValueError):
    """A clip whose frame count VisTR cannot take (the count is fixed by its queries)."""


def cyclic_clip_indices(length: int, num_frames: int) -> list[int]:
    """Indices into a video of ``length`` frames that form VisTR's ``num_frames``-frame clip.

    ``length < num_frames``: 0…length-1 repeated and truncated (20 of 36 -> 0…19, 0…15);
    otherwise the first ``num_frames`` frames (the official code drops the rest).
    """
    if length < 1 or num_frames < 1:
        raise ClipLengthError(
            f"need length >= 1 and num_frames >= 1, got {length} and {num_frames}"
        )
    if length < num_frames:
        return (list(range(length)) * math.ceil(num_frames / length))[:num_frames]
    return list(range(num_frames))


def cyclic_pad(items: Sequence[Item], num_frames: int) -> list[Item]:
    """``items`` (frames of one window) padded cyclically / truncated to ``num_frames``."""
    return [items[i] for i in cyclic_clip_indices(len(items), num_frames)]


def kept_frames(length: int, num_frames: int) -> int:
    """How many leading frames of the padded clip are real (the official ``[:length]`` cut)."""
    return min(length, num_frames)
