"""Outputs for frame results: overlay video, display, live view, YTVIS JSON, JSONL events,
callback."""

from runtime.sinks.annotate import annotate, track_colour
from runtime.sinks.base import CallbackSink, Sink, ensure_writable, temp_path
from runtime.sinks.events import JsonlEventSink
from runtime.sinks.group import SinkFailure, SinkGroup
from runtime.sinks.paths import check_output_paths, same_file
from runtime.sinks.video import DisplaySink, OverlayVideoSink
from runtime.sinks.view import ViewSink
from runtime.sinks.ytvis import YtvisJsonSink

__all__ = ["CallbackSink", "DisplaySink", "JsonlEventSink", "OverlayVideoSink", "Sink",
           "SinkFailure", "SinkGroup", "ViewSink", "YtvisJsonSink", "annotate",
           "check_output_paths", "ensure_writable", "same_file", "temp_path", "track_colour"]
