"""End-to-end Pipeline runs on real ONNX artifacts (contract graph now, tiny TeViT later)."""

from __future__ import annotations

import numpy as np
import pytest
import rt_fixtures as F

from runtime import Pipeline
from runtime import rle as rle_codec
from runtime.assemble import FrameAssembler
from runtime.errors import ConfigError, FrameSizeError
from runtime.manifest import load_manifest
from runtime.tracking import Tracker
from runtime.types import Frame, WindowInstances
from runtime.windows import Letterbox, PreparedFrame, Window

OBJECTS = {0: ((10, 5), (0.0, 2.5)), 1: ((50, 130), (0.0, -2.5)), 2: ((30, 60), (1.0, 0.0))}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def clip():
    return F.make_clip(26, size=(90, 160), objects=OBJECTS)


def test_run_gives_one_result_per_frame_with_stable_ids(artifacts_dir, clip, tmp_path):
    """Contract graph: identities and masks are known. Other artifacts (tiny TeViT, random
    weights, slow on CPU): 8 frames, every row kept, so all stages run on real outputs."""
    frames, masks = clip
    contract = load_manifest(artifacts_dir).model == "contract"
    n = 26 if contract else 8
    F.write_folder(tmp_path / "clip", frames[:n])
    options = {} if contract else {"mode": "benchmark",
                                   "tracker": Tracker(continue_score=0.0, birth_score=0.0)}
    with Pipeline(artifacts_dir, device="cpu", **options) as pipeline:
        results = list(pipeline.run(tmp_path / "clip"))
        summary = pipeline.summary()
    assert [r.index for r in results] == list(range(n)) and summary["frames"] == n
    for result in results:
        assert result.masks.shape == (len(result), 90, 160) and result.image.shape == (90, 160, 3)
        assert (result.track_ids >= 1).all() and (result.labels < len(result.class_names)).all()
        assert ((result.boxes >= 0) & (result.boxes <= [160, 90, 160, 90])).all()
    assert set(summary["stages"]) >= {"decode", "letterbox", "inference", "tracking", "paste"}
    if not contract:
        assert summary["tracks"] >= 1
        return
    for k in OBJECTS:  # contract graph: instance k is colour k, so identity is known
        ids = {int(r.track_ids[r.labels == k][0]) for r in results if (r.labels == k).any()}
        assert len(ids) == 1, f"object {k} got ids {ids}"
        ious = [_iou(r.masks[r.labels == k][0], masks[k, r.index]) for r in results]
        assert min(ious) > 0.5 and np.mean(ious) > 0.75  # masks are 1/4 of a 0.6x letterbox
    assert summary["tracks"] == 3


def test_process_then_flush_equals_run(contract_artifacts, clip):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", window=4, stride=1) as pipeline:
        via_run = list(pipeline.run(iter_source(frames)))
        pipeline.reset()
        via_process = []
        for i in range(0, 26, 5):  # an app feeding frames in bursts of its own size
            via_process += pipeline.process(frames[i:i + 5])
        via_process += pipeline.flush()
    assert len(via_process) == len(via_run) == 26
    for a, b in zip(via_run, via_process, strict=True):
        assert a.track_ids.tolist() == b.track_ids.tolist() and (a.masks == b.masks).all()


def test_stopping_mid_window_then_flush_delivers_every_frame_once(contract_artifacts, clip):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", window=5, stride=3) as pipeline:
        delivered = []
        results = pipeline.run(iter_source(frames))
        for result in results:
            delivered.append(result.index)
            if result.index == 4:  # frames 3..5 became final together; stop after the 2nd
                break
        results.close()
        delivered += [r.index for r in pipeline.flush()]
    assert delivered == list(range(len(delivered))) and len(delivered) >= 6


def test_stopping_during_the_final_flush_loses_nothing(contract_artifacts, clip):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", window=5, stride=3) as pipeline:
        results = pipeline.run(iter_source(frames[:11]))  # frames 9 and 10 come from the flush
        delivered = []
        for result in results:
            delivered.append(result.index)
            if result.index == 9:  # stop between the two flushed frames
                break
        results.close()
        delivered += [r.index for r in pipeline.flush()]
    assert delivered == list(range(11))


def iter_source(frames):
    from runtime.sources.base import FrameSource

    class ArraySource(FrameSource):
        def __iter__(self):
            for i, image in enumerate(frames):
                yield Frame(i, i / 30, image)

    return ArraySource()


def test_fixed_t_artifact_pads_cyclically(fixed_t_artifacts, clip):
    frames, masks = clip
    with Pipeline(fixed_t_artifacts, device="cpu", window=5, stride=3) as pipeline:
        results = pipeline.process(frames[:3]) + pipeline.flush()  # 3 frames padded to T=8
        assert [r.index for r in results] == [0, 1, 2]
        assert _iou(results[2].masks[results[2].labels == 0][0], masks[0, 2]) > 0.6
        longer = list(pipeline.run(iter_source(frames)))
    assert len(longer) == 26


def test_size_change_error_policy(contract_artifacts, clip):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", size_change="error") as pipeline:
        pipeline.process(frames[:4])
        with pytest.raises(FrameSizeError, match="frame 4 is 120x80.*reletterbox"):
            pipeline.process(np.zeros((80, 120, 3), np.uint8))
        assert len(pipeline.flush()) == 4  # frames before the change are still delivered


def test_size_change_reletterbox_maps_each_frame_to_its_own_size(contract_artifacts):
    small, small_masks = F.make_clip(8, size=(90, 160), objects=OBJECTS)
    big, big_masks = F.make_clip(8, size=(180, 240), side=40,
                                 objects={0: ((20, 10), (0.0, 5.0))})
    with Pipeline(contract_artifacts, device="cpu") as pipeline:
        results = pipeline.process(list(small) + list(big)) + pipeline.flush()
    assert [r.size for r in results] == [(90, 160)] * 8 + [(180, 240)] * 8
    assert _iou(results[3].masks[results[3].labels == 0][0], small_masks[0, 3]) > 0.6
    assert _iou(results[12].masks[results[12].labels == 0][0], big_masks[0, 4]) > 0.6
    assert results[12].track_ids[results[12].labels == 0][0] == 1  # still the red track


def test_benchmark_mode_and_rle_output(contract_artifacts, clip):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", mode="benchmark", mask_format="rle",
                  keep_images=False) as pipeline:
        results = pipeline.process(frames[:10]) + pipeline.flush()
    with Pipeline(contract_artifacts, device="cpu") as pipeline:
        reference = pipeline.process(frames[:10]) + pipeline.flush()
    for a, b in zip(results, reference, strict=True):
        assert a.image is None and a.masks is None
        assert np.array_equal(np.stack([rle_codec.decode(r) for r in a.rles]), b.masks)
        assert a.class_scores.shape == (len(a), 3)


@pytest.mark.parametrize("kwargs,match", [
    ({"window": 13}, "frames.max=12"), ({"window": 5, "stride": 5}, "1 <= stride < window"),
    ({"mode": "fast"}, "mode must be"), ({"overlap": "mean"}, "overlap policy"),
    ({"size_change": "crop"}, "size_change"),
])
def test_bad_settings_are_refused(contract_artifacts, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Pipeline(contract_artifacts, device="cpu", **kwargs)


def _window(start: int, value: float, length: int = 3):
    box = Letterbox.fit((8, 8), (32, 32))
    frames = tuple(PreparedFrame(Frame(i, 0.0, np.zeros((8, 8, 3), np.uint8)),
                                 np.zeros((32, 32, 3), np.uint8), box)
                   for i in range(start, start + length))
    inst = WindowInstances(
        scores=np.array([0.9], np.float32), labels=np.array([0]),
        class_scores=np.array([[0.9]], np.float32),
        masks=np.full((1, length, 8, 8), value, np.float32),
        boxes=np.full((1, length, 4), value * 10, np.float32),
        embeddings=np.ones((1, 4), np.float32), query_index=np.array([0]))
    return Window(frames=frames, overlap=0), inst


@pytest.mark.parametrize("policy,expected", [("average", 0.6), ("latest", 0.8)])
def test_overlap_policy_average_vs_latest(policy, expected):
    tracker, assembler = Tracker(), FrameAssembler(policy=policy)
    for start, value in ((0, 0.4), (2, 0.8)):  # frame 2 is covered by both windows
        window, inst = _window(start, value)
        ids = tracker.update(inst, window.frame_indices)
        assembler.add(window, inst, ids, tracker)
    final = dict((p.frame.index, e) for p, e in assembler.pop_final(5))
    entry = final[2][1]
    assert entry.mask_sum.mean() / entry.count == pytest.approx(expected)
    assert entry.box_sum[0] / entry.count == pytest.approx(expected * 10)
    assert final[1][1].mask_sum.mean() == pytest.approx(0.4)


# -- issue 20 item 5: a rejected frame changes nothing; grey and RGBA; closed pipelines -------
@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((0, 40, 3), np.uint8), "empty"),
    (np.zeros((20, 30, 2), np.uint8), r"\[H, W, 3\]"),
    (np.zeros((20, 30, 3), np.float32), "uint8"),
    (np.zeros((2, 20, 30, 3, 1), np.uint8), r"\[H, W, 3\]"),
    ("not an image", "uint8"),
])
def test_a_rejected_frame_changes_no_state(contract_artifacts, clip, bad, match):
    frames, _ = clip
    with Pipeline(contract_artifacts, device="cpu", size_change="error") as pipeline:
        with pytest.raises(ValueError, match=match):
            pipeline.process(bad)
        assert pipeline.frames_in == 0
        with pytest.raises(ValueError, match=match):  # a bad frame inside a batch: none taken
            pipeline.process([frames[0], bad])
        assert pipeline.frames_in == 0
        results = pipeline.process(frames[:6]) + pipeline.flush()
    assert [r.index for r in results] == list(range(6))
    assert results[0].timestamp_s == 0.0


def test_grey_and_rgba_frames_are_converted(contract_artifacts, clip):
    frames, _ = clip
    grey = frames[..., 0]  # red channel as grey: red squares stay bright in every channel
    rgba = np.concatenate([frames, np.full((*frames.shape[:3], 1), 255, np.uint8)], axis=-1)
    with Pipeline(contract_artifacts, device="cpu") as pipeline:
        reference = pipeline.process(frames[:6]) + pipeline.flush()
        pipeline.reset()
        from_rgba = pipeline.process(list(rgba[:6])) + pipeline.flush()
        pipeline.reset()
        from_grey = pipeline.process(grey[0]) + pipeline.process(grey[1:6, ..., None]) \
            + pipeline.flush()
    assert len(from_rgba) == len(from_grey) == 6
    for a, b in zip(reference, from_rgba, strict=True):
        assert a.track_ids.tolist() == b.track_ids.tolist() and (a.masks == b.masks).all()
    assert from_grey[0].image.shape == (90, 160, 3)
    assert (from_grey[0].image == grey[0][..., None]).all()


def test_process_after_close_is_a_clear_error(contract_artifacts, clip):
    frames, _ = clip
    pipeline = Pipeline(contract_artifacts, device="cpu")
    pipeline.close()
    pipeline.close()  # twice is fine
    for call in (lambda: pipeline.process(frames[0]), pipeline.flush,
                 lambda: list(pipeline.run(iter_source(frames)))):
        with pytest.raises(RuntimeError, match="pipeline is closed"):
            call()
