"""Many sources, one model (issue 22): ``MultiStreamPipeline`` and the pipelined runtime.

Real ONNX execution: the contract graph (batch up to 4) and, once, the tiny TeViT export (whose
graph takes ``content_hw``). Every stream's results must equal a single-stream run of the same
source: same frames, same track IDs, scores within 1e-5, equal masks.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rt_fixtures as F

from runtime import MultiStreamPipeline, Pipeline
from runtime.batching import WindowExchange
from runtime.errors import ConfigError
from runtime.manifest import load_manifest
from runtime.sources import VideoFileSource
from runtime.stream_state import StreamSettings, StreamState, make_tracker
from runtime.tracking import Tracker
from runtime.types import Frame

# (frames, (height, width)): different lengths and sizes; the last is shorter than a window
CLIPS = [(26, (90, 160)), (17, (120, 120)), (9, (60, 200)), (3, (90, 160))]
STALL_LIMIT_S = 60.0  # a stalled test source gives up by itself after this


@pytest.fixture(scope="module")
def batch4_artifacts(tmp_path_factory) -> Path:
    """The contract graph with engine batches of up to 4 windows."""
    return F.build_contract_artifacts(tmp_path_factory.mktemp("batch4"), batch_max=4)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("multi")
    paths = []
    for i, (n, size) in enumerate(CLIPS):
        frames, _ = F.make_clip(n, size=size, side=max(12, size[0] // 5))
        if i == 1:  # one image folder among the videos
            paths.append(F.write_folder(folder / f"folder{i}", frames))
        else:
            paths.append(F.write_mp4(folder / f"clip{i}.mp4", frames))
    return paths


def _single(artifacts, source, **options) -> list:
    with Pipeline(artifacts, device="cpu", **options) as pipeline:
        return list(pipeline.run(source, pipelined=False))


def _by_stream(pairs) -> dict[str, list]:
    out: dict[str, list] = {}
    for name, result in pairs:
        out.setdefault(name, []).append(result)
    return out


def _assert_same(got: list, reference: list, name: str) -> None:
    assert [r.index for r in got] == [r.index for r in reference], name
    for a, b in zip(got, reference, strict=True):
        assert a.track_ids.tolist() == b.track_ids.tolist(), (name, a.index)
        assert a.labels.tolist() == b.labels.tolist(), (name, a.index)
        np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.boxes, b.boxes, rtol=0, atol=1e-3)
        assert a.masks.shape == b.masks.shape and (a.masks == b.masks).all(), (name, a.index)


def test_streams_batched_together_equal_single_stream_runs(batch4_artifacts, clip_files):
    with MultiStreamPipeline(batch4_artifacts, clip_files, device="cpu",
                             max_batch_wait_ms=5000) as multi:
        calls = _record_engine_calls(multi.backend)
        got = _by_stream(multi.run())
        summary = multi.summary()
    assert max(len({tuple(row) for row in hw}) for hw in calls) >= 2  # streams met in a batch
    assert multi.names == ["clip0", "folder1", "clip2", "clip3"]
    for name, path in zip(multi.names, clip_files, strict=True):
        reference = _single(batch4_artifacts, path)
        assert reference and any(len(r) for r in reference)  # tracks to compare
        _assert_same(got[name], reference, name)
        assert summary["streams"][name]["status"] == "ended"
    batches = summary["batches"]
    assert max(batches) > 1 and max(batches) <= 4, batches  # rows from several streams met
    windows = sum(size * count for size, count in batches.items())
    assert windows == sum(_window_count(n) for n, _ in CLIPS)  # each window ran exactly once


def _record_engine_calls(backend) -> list[list[list[int]]]:
    """Keep the ``content_hw`` of every engine call (the real backend still runs)."""
    calls, infer = [], backend.infer

    def recording(frames, content_hw=None):
        calls.append(np.asarray(content_hw).tolist())
        return infer(frames, content_hw)

    backend.infer = recording
    return calls


def _window_count(frames: int, length: int = 5, stride: int = 3) -> int:
    """Windows the sequential windower cuts from a stream of ``frames`` frames."""
    from runtime.windows import Windower

    windower, count = Windower(length, stride), 0
    for i in range(frames):
        count += windower.push(_prepared(i)) is not None
    return count + (windower.flush() is not None)


def _prepared(index: int):
    from runtime.windows import Letterbox, PreparedFrame

    image = np.zeros((8, 8, 3), np.uint8)
    return PreparedFrame(Frame(index, 0.0, image), image, Letterbox.fit((8, 8), (8, 8)))


def test_tiny_tevit_rows_with_their_own_content_hw_equal_single_runs(tiny_tevit_artifacts,
                                                                     tmp_path):
    """TeViT's graph reads ``content_hw``: two streams of different aspect ratios share
    engine batches, each row with its own real image size."""
    sources = {}
    for name, (n, size) in {"wide": (8, (120, 200)), "square": (6, (96, 96))}.items():
        frames, _ = F.make_clip(n, size=size, side=30)
        sources[name] = F.write_mp4(tmp_path / f"{name}.mp4", frames)
    options = {"mode": "benchmark", "keep_images": False, "window": 5, "stride": 3,
               "tracker": Tracker(continue_score=0.0, birth_score=0.0)}
    with MultiStreamPipeline(tiny_tevit_artifacts, sources, device="cpu",
                             max_batch_wait_ms=60_000, **options) as multi:
        calls = _record_engine_calls(multi.backend)
        got = _by_stream(multi.run())
    assert any(len({tuple(row) for row in hw}) == 2 for hw in calls), calls  # both streams met
    for name, path in sources.items():
        reference = _single(tiny_tevit_artifacts, path, **options)
        assert sum(len(r) for r in reference) > 0
        _assert_same(got[name], reference, name)


class StallingVideo(VideoFileSource):
    """A real video whose frames stop coming after ``after`` frames until ``resume`` is set (a
    network camera that stalls), or a stop is requested."""

    def __init__(self, path, *, after: int, resume: threading.Event) -> None:
        super().__init__(path)
        self.after, self.resume, self.stalled = after, resume, threading.Event()

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == self.after:
                self.stalled.set()
                deadline = time.monotonic() + STALL_LIMIT_S
                while not self.resume.is_set() and not self.stop_requested \
                        and time.monotonic() < deadline:
                    self.resume.wait(0.05)
            yield frame


class DyingVideo(VideoFileSource):
    """A real video whose decoder fails after ``after`` frames."""

    def __init__(self, path, *, after: int) -> None:
        super().__init__(path)
        self.after = after

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == self.after:
                raise OSError("decoder crashed (injected)")
            yield frame


def test_a_stalled_and_a_dead_source_do_not_block_the_others(batch4_artifacts, clip_files):
    resume = threading.Event()
    stalled = StallingVideo(clip_files[0], after=4, resume=resume)
    sources = {"stalled": stalled, "dead": DyingVideo(clip_files[0], after=3),
               "a": clip_files[1], "b": clip_files[2]}
    expected = {"a": CLIPS[1][0], "b": CLIPS[2][0]}
    with MultiStreamPipeline(batch4_artifacts, sources, device="cpu", close_sources=True,
                             max_batch_wait_ms=50) as multi:
        got: dict[str, list] = {}
        others_done_while_stalled = False
        for name, result in multi.run():
            got.setdefault(name, []).append(result)
            if all(len(got.get(k, [])) == n for k, n in expected.items()) and not resume.is_set():
                others_done_while_stalled = stalled.stalled.is_set()
                resume.set()  # the camera comes back
        reports = multi.reports
    assert others_done_while_stalled
    for name in ("a", "b"):
        _assert_same(got[name], _single(batch4_artifacts, sources[name]), name)
    assert reports["dead"].status == "failed" and "decoder crashed" in str(reports["dead"].error)
    assert [r.index for r in got["dead"]] == [0, 1, 2]  # its frames before the failure
    assert [r.index for r in got["stalled"]] == list(range(CLIPS[0][0]))
    assert reports["stalled"].status == "ended"


def _long_clip(tmp_path: Path, copies: int) -> Path:
    frames, _ = F.make_clip(40)
    return F.write_mp4(tmp_path / f"long{copies}.mp4", np.concatenate([frames] * copies))


def test_stop_drains_every_stream(batch4_artifacts, tmp_path):
    """``stop()`` (what Ctrl-C calls) mid-run: iterating on delivers every frame read so far,
    each stream's frames complete and in order."""
    sources = [_long_clip(tmp_path, 15), _long_clip(tmp_path, 16)]
    with MultiStreamPipeline(batch4_artifacts, sources, device="cpu") as multi:
        got: dict[str, list[int]] = {}
        for count, (name, result) in enumerate(multi.run(), start=1):
            got.setdefault(name, []).append(result.index)
            if count == 30:
                multi.stop()
        reports = multi.reports
    for name, report in reports.items():
        assert report.status == "stopped" and report.frames_read < 600
        assert got[name] == list(range(report.frames_read)), name


def test_closing_the_results_early_then_flush_loses_nothing(batch4_artifacts, tmp_path):
    sources = [_long_clip(tmp_path, 15), _long_clip(tmp_path, 16)]
    with MultiStreamPipeline(batch4_artifacts, sources, device="cpu") as multi:
        results = multi.run()
        delivered = [next(results) for _ in range(10)]
        results.close()
        delivered += multi.flush()
        reports = multi.reports
    got = _by_stream(delivered)
    for name, report in reports.items():
        assert [r.index for r in got.get(name, [])] == list(range(report.frames_read)), name


def test_an_engine_error_stops_every_stream_and_is_raised_after_the_results(
        batch4_artifacts, tmp_path):
    sources = [_long_clip(tmp_path, 15), _long_clip(tmp_path, 16)]
    with MultiStreamPipeline(batch4_artifacts, sources, device="cpu") as multi:
        infer, calls = multi.backend.infer, []

        def failing_third_call(frames, content_hw=None):
            calls.append(len(frames))
            if len(calls) == 3:
                raise RuntimeError("engine lost (injected)")
            return infer(frames, content_hw)

        multi.backend.infer = failing_third_call
        got: dict[str, list[int]] = {}
        with pytest.raises(RuntimeError, match="engine lost"):
            for name, result in multi.run():
                got.setdefault(name, []).append(result.index)
        reports = multi.reports
    for name, report in reports.items():  # frames only the failed batch covered are lost
        assert report.status == "stopped" and report.frames_read < 600
        indices = got[name]
        assert indices[:3] == [0, 1, 2] and indices == sorted(set(indices))
        assert indices[-1] < report.frames_read


def test_pipelined_single_stream_equals_sequential(batch4_artifacts, fixed_t_artifacts,
                                                   clip_files):
    for artifacts in (batch4_artifacts, fixed_t_artifacts):
        with Pipeline(artifacts, device="cpu") as pipeline:
            pipelined = list(pipeline.run(clip_files[0]))
            summary = pipeline.summary()
        _assert_same(pipelined, _single(artifacts, clip_files[0]), str(artifacts))
        assert {"decode", "letterbox", "inference", "tracking", "paste"} <= set(summary["stages"])


def _states(artifacts, names, **options) -> dict[str, StreamState]:
    settings = StreamSettings.checked(load_manifest(artifacts), **options)
    return {n: StreamState(settings, make_tracker(None, "deployment"), name=n) for n in names}


def _feed(exchange: WindowExchange, state: StreamState, count: int) -> None:
    name = state.name
    for i in range(count):
        image = np.full((30, 40, 3), 20, np.uint8)
        assert exchange.put_frame(name, state.prepare(Frame(i, i / 30, image)))
    exchange.end_stream(name)


@pytest.mark.parametrize("fixed", [False, True])
def test_batches_share_t_keep_stream_order_and_respect_the_batch_max(
        batch4_artifacts, fixed_t_artifacts, fixed):
    """Dynamic T: a short window (a 3-frame stream) never rides with T=5 windows; fixed T
    (VisTR): every window is padded to frames.max, so the short one batches too."""
    artifacts = fixed_t_artifacts if fixed else batch4_artifacts
    states = _states(artifacts, ["a", "b", "c"], window=5, stride=3)
    exchange = WindowExchange(states, max_batch=2, max_wait_s=0.0, frame_capacity=100,
                              job_capacity=100)
    for name, count in (("a", 14), ("b", 3), ("c", 8)):
        _feed(exchange, states[name], count)
    batches = []
    while (batch := exchange.next_batch()) is not None:
        batches.append(batch)
    rows = [[job for job in batch if job.window is not None] for batch in batches]
    assert all(1 <= len(r) <= 2 for r in rows if r)
    assert all(len({job.frames for job in r}) == 1 for r in rows if r)
    t_max = load_manifest(artifacts).frames_range[2]
    short = next(job for r in rows for job in r if job.stream.name == "b")
    assert short.frames == (t_max if fixed else 3)
    if not fixed:
        assert all(job.frames == 5 for r in rows for job in r if job.stream.name != "b")
    for name, expected_starts in (("a", [0, 3, 6, 9]), ("b", [0]), ("c", [0, 3])):
        starts = [job.window.start for b in batches for job in b
                  if job.stream.name == name and job.window is not None]
        assert starts == expected_starts, name  # each stream's windows in order, each once


def test_bad_settings_are_refused_before_loading(batch4_artifacts, clip_files, tmp_path):
    cases = [({"max_batch": 5}, "batch.max=4"), ({"max_batch_wait_ms": -1}, ">= 0"),
             ({"max_frames": 0}, "at least 1"), ({"mode": "fast"}, "mode must be")]
    for options, match in cases:
        with pytest.raises(ConfigError, match=match):
            MultiStreamPipeline(batch4_artifacts, clip_files[:2], device="cpu", **options)
    with pytest.raises(ConfigError, match="unique"):
        MultiStreamPipeline(batch4_artifacts, {"a": clip_files[0], "A": clip_files[1]})
    with pytest.raises(ConfigError, match="no sources"):
        MultiStreamPipeline(batch4_artifacts, [])
