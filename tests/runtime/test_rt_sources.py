"""Sources: file, folder, glob, URL, truncated/corrupt input, unplugged camera, bad SOURCE."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
import time

import cv2
import numpy as np
import pytest
import rt_fixtures as F

from runtime.errors import ConfigError, SourceError
from runtime.sources import (
    ImageSequenceSource,
    LiveSource,
    ReconnectPolicy,
    VideoFileSource,
    open_source,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, _ = F.make_clip(24, objects={0: ((10, 5), (0.0, 2.0))})
    path = F.write_mp4(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, fps=12)
    return path, frames


def test_video_file_frames_are_rgb_with_media_timestamps(clip):
    path, truth = clip
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource) and source.total_frames == 24
        frames = list(source)
    assert [f.index for f in frames] == list(range(24))
    assert frames[3].timestamp_s == pytest.approx(3 / 12)
    y, x = 20, 15 + 2 * 5
    assert np.abs(frames[5].image[y, x].astype(int) - truth[5, y, x]).max() < 40  # red, RGB
    assert not source.truncated


def test_folder_is_naturally_sorted_and_glob_works(tmp_path):
    frames = np.zeros((12, 8, 8, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(12) * 20
    F.write_folder(tmp_path / "imgs", frames)
    (tmp_path / "imgs" / "notes.txt").write_text("ignored")
    for spec in (tmp_path / "imgs", str(tmp_path / "imgs" / "*.png")):
        source = open_source(spec)
        assert isinstance(source, ImageSequenceSource) and source.total_frames == 12
        assert [int(f.image[0, 0, 0]) for f in source] == list(range(0, 240, 20))


def test_missing_and_unreadable_sources(tmp_path):
    with pytest.raises(SourceError, match="does not exist.*camera index"):
        open_source(tmp_path / "nope.mp4")
    (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(tmp_path / "fake.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no image files"):
        open_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="glob"):
        open_source(str(tmp_path / "*.jpg"))
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        open_source("ftp://example.com/a.mp4")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SourceError, match="not a readable image"):
        list(open_source(tmp_path / "bad.png"))


def test_missing_camera_is_a_clear_error():
    quick = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.01, max_attempts=1)
    with pytest.raises(SourceError, match="cannot open camera 57.*after 1 retry.*--reconnect"):
        open_source("camera57", reconnect=quick)


def test_truncated_mp4_without_index_cannot_open(clip, tmp_path):
    data = clip[0].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="moov atom not found"):
        open_source(tmp_path / "cut.mp4")


def test_truncated_mp4_stops_at_last_good_frame(clip, tmp_path, caplog):
    fast = F.make_faststart(clip[0], tmp_path / "fast.mp4")
    data = fast.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level(logging.WARNING, logger="runtime.sources"):
        source = open_source(tmp_path / "cut.mp4")
        frames = list(source)
    assert 0 < len(frames) < 24 and source.truncated
    assert "truncated or corrupt" in caplog.text
    assert [f.index for f in frames] == list(range(len(frames)))


def test_truncated_mjpg_avi_stops_at_last_good_frame(tmp_path):
    frames, _ = F.make_clip(30)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 90))
    for frame in frames:
        writer.write(frame)
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    source = open_source(path)
    got = list(source)
    assert 0 < len(got) < 30 and source.truncated


class _Factory:
    """Real captures in order: the first paths play, then every later call opens a missing
    device (an unplugged camera)."""

    def __init__(self, *paths):
        self.paths, self.calls = list(paths), 0

    def __call__(self, target):
        self.calls += 1
        path = self.paths.pop(0) if self.paths else "/dev/null/unplugged.mp4"
        return cv2.VideoCapture(str(path))


def test_unplugged_camera_backs_off_then_stops_cleanly(clip):
    delays = []
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.03, max_attempts=4)
    source = LiveSource(0, reconnect=policy, capture_factory=_Factory(clip[0]),
                        sleep=delays.append)
    frames = list(source)
    assert len(frames) == 24 and source.disconnected
    assert delays == [0.01, 0.02, 0.03, 0.03]


def test_camera_reconnects_and_indices_continue(clip):
    policy = ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0, max_attempts=2)
    factory = _Factory(clip[0], "/dev/null/still-unplugged.mp4", clip[0])
    source = LiveSource(0, reconnect=policy, capture_factory=factory, sleep=lambda s: None)
    frames = list(source)
    assert [f.index for f in frames] == list(range(48))
    assert source.reconnects == 1 and source.disconnected
    assert all(b.timestamp_s >= a.timestamp_s for a, b in zip(frames, frames[1:], strict=False))


def test_request_stop_wakes_a_source_waiting_to_reconnect(clip):
    """Ctrl-C during a long backoff must not wait for it: the default wait is interruptible."""
    policy = ReconnectPolicy(initial_delay_s=30.0, max_delay_s=30.0, max_attempts=5)
    source = LiveSource(0, reconnect=policy, capture_factory=_Factory(clip[0]))
    threading.Timer(0.3, source.request_stop).start()
    start = time.monotonic()
    frames = list(source)
    assert len(frames) == 24 and time.monotonic() - start < 10
    assert not source.disconnected


def test_request_stop_ends_a_file_source(clip):
    source = open_source(clip[0])
    frames = []
    for frame in source:
        frames.append(frame)
        if frame.index == 4:
            source.request_stop()
    assert len(frames) == 5 and not source.truncated


def test_reconnect_policy_is_validated():
    with pytest.raises(ConfigError):
        ReconnectPolicy(initial_delay_s=2, max_delay_s=1)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_http_url_of_a_finite_file_ends_without_reconnecting(clip):
    handler = functools.partial(_QuietHandler, directory=str(clip[0].parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4")
        assert isinstance(source, LiveSource) and source.finite
        assert len(list(source)) == 24 and not source.disconnected
    finally:
        server.shutdown()


# -- issue 20 item 7: container timestamps, implausible rates, retry at start ----------------
VFR_RUNS = [(8, 1 / 24), (8, 1 / 8), (8, 1 / 12)]  # 2 s in all, like the 12 fps source


def test_variable_frame_rate_file_gets_container_timestamps(clip, tmp_path):
    vfr = F.make_vfr(clip[0], tmp_path / "vfr.mp4", VFR_RUNS)
    truth, t = [], 0.0
    for count, step in VFR_RUNS:
        for _ in range(count):
            truth.append(t)
            t += step
    with open_source(vfr) as source:
        got = [f.timestamp_s for f in source]
    assert source.fps == 12 and len(got) == 24
    assert got == pytest.approx(truth, abs=1e-3)  # index / fps would put frame 18 at 1.5 s
    assert got[18] == pytest.approx(1 / 3 + 1 + 2 / 12, abs=1e-3)
    with open_source(vfr, fps=10) as source:  # an explicit --fps still overrides the file
        assert [f.timestamp_s for f in source][18] == pytest.approx(1.8)


def test_constant_rate_file_timestamps_are_unchanged(clip):
    with open_source(clip[0]) as source:
        got = [f.timestamp_s for f in source]
    assert got == pytest.approx([i / 12 for i in range(24)], abs=1e-3)


@pytest.mark.parametrize("fps", [0.83, 5000.0])
def test_implausible_metadata_rate_is_warned_about(tmp_path, caplog, fps):
    frames, _ = F.make_clip(4)
    path = F.write_mp4(tmp_path / "odd.mp4", frames, fps=fps)
    with caplog.at_level(logging.WARNING, logger="runtime.sources"):
        source = open_source(path)
        got = [f.timestamp_s for f in source]
    assert f"{fps:g} fps" in caplog.text and "implausible" in caplog.text and "--fps" in caplog.text
    assert got == pytest.approx([i / fps for i in range(4)], abs=2e-3)


def test_plausible_rate_is_not_warned_about(clip, caplog):
    with caplog.at_level(logging.WARNING, logger="runtime.sources"):
        list(open_source(clip[0]))
    assert "implausible" not in caplog.text


def test_live_source_retries_its_first_open(clip):
    delays = []
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.02, max_attempts=3)
    factory = _Factory("/dev/null/not-yet.mp4", "/dev/null/not-yet.mp4", clip[0])
    source = LiveSource(0, reconnect=policy, capture_factory=factory, sleep=delays.append)
    assert delays == [0.01, 0.02] and factory.calls == 3
    assert len(list(source)) == 24


def test_live_source_gives_up_at_start_after_the_retries(clip):
    delays = []
    policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.02, max_attempts=2)
    factory = _Factory("/dev/null/a.mp4", "/dev/null/b.mp4", "/dev/null/c.mp4", clip[0])
    with pytest.raises(SourceError, match="cannot open camera 0 .*after 2 retries"):
        LiveSource(0, reconnect=policy, capture_factory=factory, sleep=delays.append)
    assert delays == [0.01, 0.02] and factory.calls == 3


def test_a_source_whose_first_frame_does_not_decode_fails_at_open(tmp_path):
    frames, _ = F.make_clip(3)
    folder = F.write_folder(tmp_path / "imgs", frames)
    (folder / "0.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SourceError, match="0.png is not a readable image"):
        open_source(folder)


def test_outputs_that_grow_without_end_are_named_for_endless_live_streams(clip):
    """A camera without --max-frames: --json and an MP4 overlay hold per-frame data until the
    end (bench/soak.py), so the command warns and names the alternative; a file source, a
    bounded run and the constant-memory outputs get no warning."""
    from runtime.stream_cli import build_parser, unbounded_output_warnings

    camera = LiveSource(0, capture_factory=_Factory(clip[0]))
    assert not camera.finite
    args = build_parser().parse_args(["camera0", "--json", "r.json", "--out", "o.mp4",
                                      "--events", "e.jsonl"])
    json_warning, mp4_warning = unbounded_output_warnings(args, camera)
    assert "--json r.json" in json_warning and "--events" in json_warning
    assert "--out o.mp4" in mp4_warning and ".mkv" in mp4_warning
    for quiet in (["camera0", "--events", "e.jsonl", "--out", "o.mkv"],
                  ["camera0", "--json", "r.json", "--max-frames", "100"]):
        assert unbounded_output_warnings(build_parser().parse_args(quiet), camera) == []
    camera.close()
    with open_source(clip[0]) as video:
        assert unbounded_output_warnings(args, video) == []
