"""Sinks: RLE codec, YTVIS JSON validity, JSONL events, overlay video, output-path checks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from runtime import rle
from runtime.errors import ConfigError, FrameSizeError, SinkError
from runtime.results import FrameResult
from runtime.sinks import (
    CallbackSink,
    DisplaySink,
    JsonlEventSink,
    OverlayVideoSink,
    Sink,
    SinkGroup,
    YtvisJsonSink,
    check_output_paths,
    ensure_writable,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CLASSES = ("cat", "dog", "bird")


@pytest.mark.parametrize("seed", range(6))
def test_numpy_rle_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 70, 2)
    mask = rng.random((h, w)) < [0.0, 0.02, 0.5, 0.98, 1.0, 0.3][seed]
    if seed == 5:
        mask[:] = False
        mask[h // 3:, : w // 2] = True
    ours = rle.encode_numpy(mask)
    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode() and ours["size"] == [h, w]
    assert (rle.decode(ours) == mask).all() and rle.area(ours) == mask.sum()
    assert rle.encode(mask)["counts"] == ours["counts"]


def _result(index, size=(30, 40), tracks=((1, 0, 0.9),), class_scores=None, rle_masks=False):
    masks = np.zeros((len(tracks), *size), bool)
    for i, (track_id, _, _) in enumerate(tracks):
        masks[i, 2 + track_id: 10 + track_id, 3 + index: 12 + index] = True
    scores = np.array([t[2] for t in tracks], np.float32)
    labels = np.array([t[1] for t in tracks], np.int64)
    if class_scores is None:
        class_scores = np.zeros((len(tracks), 3), np.float32)
        class_scores[np.arange(len(tracks)), labels] = scores
    return FrameResult(
        index=index, timestamp_s=index / 10, size=size, class_names=CLASSES,
        track_ids=np.array([t[0] for t in tracks], np.int64), labels=labels, scores=scores,
        boxes=np.tile(np.array([[3, 2, 12, 10]], np.float32), (len(tracks), 1)),
        class_scores=class_scores,
        masks=None if rle_masks else masks,
        rles=tuple(rle.encode(m) for m in masks) if rle_masks else None,
        image=np.full((*size, 3), 90, np.uint8))


def test_ytvis_json_is_valid_for_the_official_format(tmp_path):
    """Lengths equal the video length, RLE sizes the frame size, masks decode, null when absent,
    category ids start at 1; benchmark mode lists several classes of one track by score."""
    sink = YtvisJsonSink(tmp_path / "r.json", num_classes=3, video_id=7, top_k=3)
    both = np.array([[0.8, 0.3, 0.0], [0.0, 0.6, 0.0]], np.float32)
    for i in range(6):
        tracks = ((1, 0, 0.8), (2, 1, 0.6)) if i < 4 else ((1, 0, 0.8),)
        sink.write(_result(i, tracks=tracks, class_scores=both[: len(tracks)],
                           rle_masks=i % 2 == 1))
    sink.close()
    entries = json.loads((tmp_path / "r.json").read_text())
    assert [(e["category_id"], e["score"]) for e in entries] == [(1, 0.8), (2, 0.6), (2, 0.3)]
    for entry in entries:
        assert entry["video_id"] == 7 and len(entry["segmentations"]) == 6
        for i, seg in enumerate(entry["segmentations"]):
            if seg is None:
                continue
            assert seg["size"] == [30, 40] and isinstance(seg["counts"], str)
            decoded = coco_mask.decode({"size": seg["size"], "counts": seg["counts"].encode()})
            assert decoded.shape == (30, 40) and decoded.sum() == 72
            assert decoded[2 + 1, 3 + i] or entry["category_id"] == 2
    assert entries[1]["segmentations"][4] is None  # track 2 absent in frames 4-5


def test_ytvis_deployment_mode_one_entry_per_track(tmp_path):
    sink = YtvisJsonSink(tmp_path / "r.json", num_classes=3, mode="deployment")
    for i in range(3):
        sink.write(_result(i, tracks=((4, 2, 0.7), (9, 1, 0.5))))
    sink.close()
    entries = json.loads((tmp_path / "r.json").read_text())
    assert sorted((e["category_id"], e["score"]) for e in entries) == [(2, 0.5), (3, 0.7)]


def test_ytvis_refuses_size_change_and_gaps(tmp_path):
    sink = YtvisJsonSink(tmp_path / "r.json", num_classes=3)
    sink.write(_result(0))
    with pytest.raises(FrameSizeError, match="one size per video"):
        sink.write(_result(1, size=(40, 40)))
    with pytest.raises(ValueError, match="expects frame 1"):
        sink.write(_result(2))


def test_jsonl_events_one_line_per_frame_flushed(tmp_path):
    sink = JsonlEventSink(tmp_path / "e.jsonl")
    sink.write(_result(0, tracks=((1, 0, 0.9),)))
    sink.write(_result(1, tracks=((1, 0, 0.9), (2, 1, 0.5)), rle_masks=True))
    lines = (tmp_path / "e.jsonl").read_text().splitlines()  # readable before close
    sink.write(_result(2, tracks=((2, 1, 0.5),)))
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2]
    assert lines[1]["appeared"] == [2] and lines[2]["disappeared"] == [1]
    track = lines[1]["tracks"][1]
    assert rle.decode(track.pop("segmentation")).sum() == 72
    assert track == {"track_id": 2, "category_id": 2, "label": 1, "class": "dog", "score": 0.5,
                     "box": [3.0, 2.0, 12.0, 10.0], "area": 72}
    # the evaluation package reads this file as per-frame tracking input
    from evaluation.tracking_input import normalize_frames, read_jsonl

    frames = normalize_frames(read_jsonl(tmp_path / "e.jsonl", 3), 30, 40)
    assert [[i.track_id for i in f] for f in frames] == [[1], [1, 2], [2]]


def test_overlay_video_has_every_frame_and_coloured_masks(tmp_path):
    sink = OverlayVideoSink(tmp_path / "o.mp4", fps=10)
    for i in range(8):
        sink.write(_result(i, size=(48, 64)))
    sink.write(_result(8, size=(60, 60)))  # size change: resized to the first size
    sink.close()
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 9
    ok, frame = capture.read()
    assert ok and frame.shape == (48, 64, 3)
    assert np.abs(frame[6, 7].astype(int) - 90).max() > 20  # blended with the track colour


@pytest.mark.parametrize("make_path,match", [
    (lambda d: d / "missing" / "o.mp4", "create the folder"),
    (lambda d: d, "is a directory"),
    (lambda d: d / "file.txt" / "o.mp4", "cannot write"),
])
def test_unwritable_output_fails_before_processing(tmp_path, make_path, match):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SinkError, match=match):
        ensure_writable(make_path(tmp_path))
    with pytest.raises(SinkError):
        YtvisJsonSink(make_path(tmp_path), num_classes=3)
    ensure_writable(tmp_path / "fine.json")
    assert not (tmp_path / "fine.json").exists()  # the probe leaves nothing behind


def test_display_without_gui_is_a_clear_error():
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has GUI support")
    except cv2.error:
        pass
    with pytest.raises(SinkError, match="opencv-python"):
        DisplaySink()


def test_callback_sink_and_result_indexing():
    seen = []
    sink = CallbackSink(seen.append)
    result = _result(0, tracks=((1, 0, 0.9), (2, 1, 0.2)))
    sink.write(result)
    strong = seen[0][seen[0].scores > 0.5]
    assert strong.track_ids.tolist() == [1] and strong.masks.shape == (1, 30, 40)
    record = next(iter(strong))
    assert record.class_name == "cat" and record.mask.dtype == bool
    assert len(FrameResult.empty(3, 0.1, (30, 40), CLASSES, rle=True)) == 0
    with pytest.raises(TypeError):
        CallbackSink("not callable")


# -- issue 20: failing sinks, outputs replaced only with a result, temp names, codecs ---------
class _Broken(Sink):
    """A sink that raises at one frame (a full disk, a codec that gives up)."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at, self.frames, self.closed = fail_at, [], 0

    def write(self, result):
        if result.index == self.fail_at:
            raise OSError(28, "No space left on device")
        self.frames.append(result.index)

    def close(self):
        self.closed += 1


def test_sink_group_gives_every_healthy_sink_every_frame(caplog):
    first, broken, last = [], _Broken(fail_at=1), []
    group = SinkGroup({"first": CallbackSink(first.append), "--out x.mp4": broken,
                       "last": CallbackSink(last.append)})
    for i in range(4):
        group.write(_result(i))
    failures = group.close()
    assert [r.index for r in first] == [r.index for r in last] == [0, 1, 2, 3]
    assert broken.frames == [0] and broken.closed == 1  # closed once, at the failure
    assert [(f.label, f.frame) for f in failures] == [("--out x.mp4", 1)]
    assert "No space left" in failures[0].describe() and "frame 1" in failures[0].describe()
    assert group.written == {"first": 4, "--out x.mp4": 1, "last": 4}
    assert sum("--out x.mp4" in r.getMessage() for r in caplog.records) == 1


def test_sink_group_reports_close_failures_and_when_all_failed():
    class FailsOnClose(Sink):
        def write(self, result):
            pass

        def close(self):
            raise OSError(30, "Read-only file system")

    group = SinkGroup({"a": _Broken(fail_at=0), "b": FailsOnClose()})
    group.write(_result(0))
    assert not group.all_failed
    failures = group.close()
    assert [(f.label, f.frame) for f in failures] == [("a", 0), ("b", None)]
    assert "closing" in failures[1].describe() and "Read-only" in failures[1].describe()
    only = SinkGroup({"a": _Broken(fail_at=0)})
    only.write(_result(0))
    assert only.all_failed and not SinkGroup({}).all_failed


def test_overlay_never_counts_frames_it_did_not_write(tmp_path, caplog):
    folder = tmp_path / "gone"
    folder.mkdir()
    sink = OverlayVideoSink(folder / "o.mp4", fps=10)
    folder.rmdir()  # the folder disappears before the first frame
    for i in range(3):
        with pytest.raises(SinkError, match="cannot open"):
            sink.write(_result(i))
    assert sink.frames_written == 0
    sink.close()
    assert "wrote" not in caplog.text and not (folder / "o.mp4").exists()


@pytest.mark.parametrize("name,kwargs,error,match", [
    ("o.txt", {}, SinkError, "--fourcc"),
    ("o.mp4", {"fourcc": "XY"}, ConfigError, "4 characters"),
    ("o.mp4", {"fps": -5.0}, ConfigError, "fps must be a positive"),
    ("o.mp4", {"fps": float("nan")}, ConfigError, "fps must be a positive"),
])
def test_overlay_settings_are_checked_when_opened(tmp_path, name, kwargs, error, match):
    with pytest.raises(error, match=match):
        OverlayVideoSink(tmp_path / name, **kwargs)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_outputs_are_not_replaced_without_a_frame(tmp_path):
    """A run that ends before its first frame leaves earlier outputs as they were."""
    paths = {n: tmp_path / n for n in ("r.json", "e.jsonl", "o.mp4")}
    for path in paths.values():
        path.write_text("earlier")
    sinks = [YtvisJsonSink(paths["r.json"], num_classes=3), JsonlEventSink(paths["e.jsonl"]),
             OverlayVideoSink(paths["o.mp4"])]
    for sink in sinks:
        sink.close()
    assert all(p.read_text() == "earlier" for p in paths.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl", "o.mp4", "r.json"]
    events = JsonlEventSink(paths["e.jsonl"])
    events.write(_result(0))
    assert len(paths["e.jsonl"].read_text().splitlines()) == 1  # replaced at the first frame
    events.close()


def test_ytvis_failed_final_write_raises_and_cleans_up(tmp_path, monkeypatch):
    from runtime.sinks import ytvis

    sink = YtvisJsonSink(tmp_path / "r.json", num_classes=3)
    sink.write(_result(0))
    monkeypatch.setattr(ytvis.os, "replace", _raise_enospc)
    with pytest.raises(SinkError, match="cannot write .*r.json.*No space left"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


def _raise_enospc(*args):
    raise OSError(28, "No space left on device")


def test_output_paths_must_differ_from_sources_and_each_other(tmp_path):
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    (tmp_path / "alias.mp4").symlink_to(source)
    check_output_paths({"--json": tmp_path / "r.json", "--events": tmp_path / "e.jsonl"},
                       sources=[source])
    with pytest.raises(SinkError, match="--out .*alias.mp4 is the source .*clip.mp4"):
        check_output_paths({"--out": tmp_path / "alias.mp4"}, sources=[source])
    with pytest.raises(SinkError, match="--json and --events .*its own file"):
        check_output_paths({"--json": tmp_path / "r.json", "--events": tmp_path / "x/../r.json"},
                           sources=[])
    with pytest.raises(SinkError, match="artifact directory"):
        check_output_paths({"--out": tmp_path / "clip.mp4"}, sources=[], protected=[source])
