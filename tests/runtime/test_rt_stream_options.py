"""``python -m runtime.stream camera0`` as documented: default artifacts, ``--list-cameras``,
``--show`` refused before anything is opened, GStreamer pipeline sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import rt_fixtures as F

from runtime.errors import SourceError
from runtime.sinks.video import gui_unavailable
from runtime.sources import GStreamerSource, open_source
from runtime.sources.cameras import format_cameras, list_cameras
from runtime.sources.gstreamer import (
    is_gstreamer_pipeline,
    opencv_has_gstreamer,
    pipeline_elements,
)
from runtime.stream import main

REPO = Path(__file__).resolve().parents[2]
JETSON = ("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,"
          "framerate=30/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
          "video/x-raw,format=BGR ! appsink drop=1 max-buffers=1")


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    frames, _ = F.make_clip(6)
    return F.write_mp4(tmp_path_factory.mktemp("opts") / "clip.mp4", frames)


def test_camera0_without_artifacts_names_the_export_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["camera0"]) == 2
    err = capsys.readouterr().err
    assert "artifacts/tevit" in err and "make export MODEL=tevit" in err
    (tmp_path / "artifacts" / "tevit").mkdir(parents=True)
    assert main(["camera0"]) == 2
    assert "has no manifest.json" in capsys.readouterr().err


def test_default_artifacts_are_used_when_present(contract_artifacts, tmp_path, monkeypatch,
                                                 capsys):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "tevit").symlink_to(contract_artifacts, target_is_directory=True)
    frames, _ = F.make_clip(5)
    F.write_folder(tmp_path / "clip", frames)
    monkeypatch.chdir(tmp_path)
    assert main(["clip", "--device", "cpu", "--quiet", "--events", "e.jsonl"]) == 0
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 5


def test_show_is_refused_before_the_source_or_model(tmp_path, capsys, monkeypatch):
    reason = gui_unavailable()
    if reason is None:
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        reason = gui_unavailable()
        if reason is None:
            pytest.skip("this OpenCV has a GUI and the platform needs no DISPLAY")
    # neither the camera nor the artifact directory exists: the --show check comes first
    assert main(["camera7", "--artifacts", str(tmp_path / "none"), "--show"]) == 2
    err = capsys.readouterr().err
    assert "--show needs" in err and "--view 8080" in err
    assert "camera 7" not in err and "manifest" not in err


def test_list_cameras_reports_the_ones_that_deliver_frames(clip_mp4):
    def factory(index):  # index 2 is a working camera; the rest are missing devices
        return cv2.VideoCapture(str(clip_mp4) if index == 2 else "/dev/null/missing.mp4")

    cameras = list_cameras([0, 1, 2, 3], capture_factory=factory)
    assert [(c.index, c.width, c.height) for c in cameras] == [(2, 160, 90)]
    assert "camera2: 160x90" in format_cameras(cameras, [0, 1, 2, 3])
    assert "python -m runtime.stream camera2" in format_cameras(cameras, [0, 1, 2, 3])
    assert "/dev/video{0,1}" in format_cameras([], [0, 1])


def test_list_cameras_option_needs_no_source():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "runtime.stream", "--list-cameras"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert "camera" in proc.stdout and "usage" not in proc.stderr
    assert (proc.returncode == 0) == ("python -m runtime.stream camera" in proc.stdout)


@pytest.mark.parametrize("text,is_pipeline", [
    (JETSON, True),
    ("rtspsrc location=rtsp://cam/stream latency=0 ! rtph264depay ! h264parse ! "
     "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! appsink", True),
    ("rtsp://user:pw@cam/stream!1", False),
    ("clip.mp4", False),
    ("camera0", False),
])
def test_gstreamer_pipelines_are_told_from_urls_and_paths(text, is_pipeline):
    assert is_gstreamer_pipeline(text) == is_pipeline


def test_gstreamer_pipeline_parse():
    assert pipeline_elements(JETSON) == ["nvarguscamerasrc", "video/x-raw(memory:NVMM)",
                                         "nvvidconv", "video/x-raw", "videoconvert",
                                         "video/x-raw", "appsink"]
    with pytest.raises(SourceError, match="ends in 'nvvidconv'.*appsink"):
        pipeline_elements("nvarguscamerasrc ! nvvidconv")
    with pytest.raises(SourceError, match="empty element"):
        pipeline_elements("videotestsrc ! ! appsink")


def test_gstreamer_source_opens_through_cap_gstreamer_or_says_why_not(clip_mp4):
    if opencv_has_gstreamer():
        source = open_source("videotestsrc num-buffers=3 ! videoconvert ! "
                             "video/x-raw,format=BGR ! appsink")
        assert isinstance(source, GStreamerSource) and len(list(source)) == 3
        source.close()
        return
    with pytest.raises(SourceError, match="without GStreamer.*pip wheels.*JetPack"):
        open_source(JETSON)
    # the source itself is the ordinary live source once a capture opens (reconnect, timing)
    source = GStreamerSource(JETSON, capture_factory=lambda _: cv2.VideoCapture(str(clip_mp4)))
    assert [f.index for f in source] == list(range(6))
    source.close()
