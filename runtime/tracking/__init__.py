"""Post-tracking: link chunk-local instances across overlapping windows into stable tracks."""

from runtime.tracking.state import Track, TrackState
from runtime.tracking.tracker import Tracker

__all__ = ["Track", "TrackState", "Tracker"]
