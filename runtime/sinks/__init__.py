"""Outputs for frame results: overlay video, display, YTVIS JSON, JSONL events, callback."""

from runtime.sinks.annotate import annotate, track_colour
from runtime.sinks.base import CallbackSink, Sink, ensure_writable
from runtime.sinks.events import JsonlEventSink
from runtime.sinks.video import DisplaySink, OverlayVideoSink
from runtime.sinks.ytvis import YtvisJsonSink

__all__ = ["CallbackSink", "DisplaySink", "JsonlEventSink", "OverlayVideoSink", "Sink",
           "YtvisJsonSink", "annotate", "ensure_writable", "track_colour"]
