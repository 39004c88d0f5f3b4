"""Overlays a browser plays: H.264 through PyAV when installed, mp4v with a notice otherwise."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import rt_fixtures as F

from runtime.errors import ConfigError, SinkError
from runtime.sinks import OverlayVideoSink, h264
from runtime.sinks.video import choose_codec
from runtime.stream import main

HAS_AV = importlib.util.find_spec("av") is not None


def _codec_of(path) -> str:
    import av

    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def _frames(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    frames, _ = F.make_clip(12)
    return F.write_mp4(tmp_path_factory.mktemp("h264") / "clip.mp4", frames)


@pytest.mark.skipif(not HAS_AV, reason="PyAV missing: pip install -e '.[video]' (in make setup)")
def test_overlay_is_h264_with_every_frame_and_the_overlay(clip_mp4, contract_artifacts,
                                                          tmp_path):
    out = tmp_path / "o.mp4"
    assert main([str(clip_mp4), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--quiet", "--out", str(out), "--fps", "10"]) == 0
    assert _codec_of(out) == "h264"
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: playable while loading
    written = _frames(out)
    assert len(written) == 12 and written[0].shape == (90, 160, 3)
    originals, _ = F.make_clip(12)
    # the red square (track 1) is blended with its track colour, not the raw red
    assert np.abs(written[5].astype(int) - originals[5][..., ::-1]).max() > 40


@pytest.mark.skipif(not HAS_AV, reason="PyAV missing: pip install -e '.[video]' (in make setup)")
def test_odd_sizes_are_padded_to_even(tmp_path):
    writer = h264.H264Writer(tmp_path / "odd.mkv", 25.0, (95, 63))
    for i in range(5):
        writer.write(np.full((63, 95, 3), 40 * i, np.uint8))
    writer.release()
    frames = _frames(tmp_path / "odd.mkv")
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    assert abs(int(frames[4][62, 94, 0]) - 160) < 8


def test_without_pyav_auto_falls_back_to_mp4v_with_one_notice(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(h264.importlib.util, "find_spec",
                        lambda name: None if name == "av" else importlib.util.find_spec(name))
    assert "pip install 'visdeploy[video]'" in h264.h264_unavailable(tmp_path / "o.mp4")
    sink = OverlayVideoSink(tmp_path / "o.mp4", fps=10)
    assert sink.codec == "mp4v"
    notices = [r for r in caplog.records if "browsers do not play" in r.message]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    with pytest.raises(SinkError, match="--codec h264.*PyAV"):
        OverlayVideoSink(tmp_path / "p.mp4", fps=10, codec="h264")


def test_codec_choices(tmp_path, caplog):
    assert choose_codec(tmp_path / "o.avi", "auto", "MJPG") == "MJPG"
    assert choose_codec(tmp_path / "o.mp4", "fourcc") == "mp4v"
    assert not caplog.records  # asking for OpenCV's writer is not worth a notice
    assert choose_codec(tmp_path / "o.avi") == "mp4v"  # H.264 only in .mp4/.mkv/.mov
    assert "H.264 goes into" in caplog.text
    if HAS_AV:
        assert choose_codec(tmp_path / "o.mp4") == "h264"
    with pytest.raises(SinkError, match="give one of them"):
        choose_codec(tmp_path / "o.mp4", "h264", "mp4v")
    with pytest.raises(ConfigError, match="4 characters"):
        choose_codec(tmp_path / "o.mp4", "auto", "XY")


def test_cli_refuses_h264_with_fourcc(clip_mp4, contract_artifacts, tmp_path, capsys):
    assert main([str(clip_mp4), "--artifacts", str(contract_artifacts), "--out",
                 str(tmp_path / "o.mp4"), "--codec", "h264", "--fourcc", "mp4v"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
