"""Synthetic videos: determinism, exact GT/pixel agreement, scripted events, files and format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation import rle
from evaluation.errors import DatasetReadError, SyntheticConfigError
from evaluation.synthetic import (
    EVENTS,
    generate_dataset,
    generate_video,
    read_video,
    render_video,
    resolve_preset,
)
from evaluation.synthetic.__main__ import main
from evaluation.synthetic.script import make_script
from evaluation.synthetic.shapes import place, rasterize
from evaluation.synthetic.textures import TextureBank
from evaluation.ytvis import evaluate


@pytest.fixture(scope="module")
def bank() -> TextureBank:
    return TextureBank()


def test_same_seed_same_video_other_seed_other_video(bank):
    a = generate_video(1, preset="tiny", seed=3, bank=bank)
    b = generate_video(1, preset="tiny", seed=3, bank=bank)
    c = generate_video(1, preset="tiny", seed=4, bank=bank)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, c.frames)


def test_dataset_files_are_deterministic(tmp_path):
    one = generate_dataset(tmp_path / "a", preset="tiny", seed=5, videos=2, frames=4, png=True)
    two = generate_dataset(tmp_path / "b", preset="tiny", seed=5, videos=2, frames=4, png=True)
    assert one.annotations.read_bytes() == two.annotations.read_bytes()
    for png in sorted(one.frames.rglob("*.png")):
        assert png.read_bytes() == (two.frames / png.relative_to(one.frames)).read_bytes()


def _shade_interval(pixels: np.ndarray, color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the range of shade s with floor(color * s) == pixel on every channel."""
    color = color.astype(np.float64)
    low = np.max(pixels / color, axis=1)
    high = np.min((pixels + 1) / color, axis=1)
    return low, high


def test_masks_agree_exactly_with_pixels(bank):
    """Outside every visible mask the frame is the background crop; inside object i's visible
    mask every pixel is i's colour times one shade in [0.5, 1]; visible masks are disjoint."""
    video = generate_video(0, preset="tiny", seed=1, bank=bank, events=EVENTS)
    script = video.script
    background = bank.background(script.background, script.height + script.pad,
                                 script.width + script.pad)
    assert video.masks.sum(axis=0).max() <= 1
    for f in range(script.frames):
        dy, dx = script.pan[f]
        crop = background[dy:dy + script.height, dx:dx + script.width]
        covered = video.masks[:, f].any(axis=0)
        assert np.array_equal(video.frames[f][~covered], crop[~covered])
        for n, obj in enumerate(script.objects):
            visible = video.masks[n, f]
            if not visible.any():
                continue
            full = rasterize(place(obj.category, obj.centers[f], obj.radii[f], obj.angles[f]),
                             script.height, script.width)
            assert not np.any(visible & ~full)
            low, high = _shade_interval(video.frames[f][visible].astype(np.float64),
                                        np.maximum(np.array(obj.color), 1))
            assert np.all(low < high + 1e-6) and low.min() >= 0.5 - 1e-6 and high.max() <= 1.01


def test_ground_truth_json_matches_masks(tmp_path):
    paths = generate_dataset(tmp_path, preset="tiny", seed=2, videos=2, frames=5, png=True)
    gt = json.loads(paths.annotations.read_text())
    assert {v["id"] for v in gt["videos"]} == {1, 2}
    assert [c["name"] for c in gt["categories"]] == ["circle", "square", "triangle", "star",
                                                     "cross"]
    for video_id in (1, 2):
        sample = read_video(paths, video_id)
        again = generate_video(video_id - 1, preset=resolve_preset("tiny", frames=5), seed=2)
        assert np.array_equal(sample.frames, again.frames)  # PNGs are exact
        for n, ann in enumerate(sample.annotations):
            assert len(ann["segmentations"]) == 5 == len(ann["areas"]) == len(ann["occlusion"])
            for f, seg in enumerate(ann["segmentations"]):
                mask = sample.masks[n, f]
                assert (seg is None) == (not mask.any()) == (ann["areas"][f] is None)
                if seg is not None:
                    assert ann["areas"][f] == int(mask.sum())
                    assert ann["bboxes"][f] == rle.bbox(seg, 96, 160)
                    assert ann["occlusion"][f] in ("no_occlusion", "slight_occlusion",
                                                   "severe_occlusion")


def test_ground_truth_scores_one_against_itself(tmp_path):
    paths = generate_dataset(tmp_path, preset="tiny", seed=0, mp4=False, compressed_rle=True)
    gt = json.loads(paths.annotations.read_text())
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    assert evaluate(paths.annotations, results)["AP"] == pytest.approx(1.0, abs=1e-12)


def test_mp4_round_trip_is_close_to_the_exact_frames(tmp_path):
    paths = generate_dataset(tmp_path, preset="tiny", seed=0, videos=1, frames=6, png=True)
    exact = read_video(paths, 1, source="png").frames
    lossy = read_video(paths, 1, source="mp4").frames
    assert lossy.shape == exact.shape == (6, 96, 160, 3)
    assert np.abs(lossy.astype(np.int16) - exact).mean() < 12
    with pytest.raises(DatasetReadError, match="video id 9"):
        read_video(paths, 9)


def _alone(event: str, seed: int = 0):
    """A 360x640, 24-frame video with only the objects of one scripted event."""
    script = make_script(np.random.default_rng(seed), height=360, width=640, frames=24,
                         num_objects=0, events=(event,))
    video = render_video(script, pixels=False)
    return script, video, video.visible_areas


def test_enter_leave_vanish_events():
    _, _, areas = _alone("enter")
    assert areas[0, 0] == 0 and areas[0, -1] > 0
    _, _, areas = _alone("leave")
    assert areas[0, 0] > 0 and areas[0, -1] == 0
    _, _, areas = _alone("vanish")
    gap = np.flatnonzero(areas[0] == 0)
    assert gap.size and 0 < gap[0] and gap[-1] < 23 and areas[0, gap[-1] + 1] > 0


def test_grow_event_crosses_both_area_buckets():
    for seed in range(3):
        _, _, areas = _alone("grow", seed)
        assert areas[0].min() < 128**2 and areas[0].max() > 256**2


def test_cross_event_swaps_two_same_class_objects():
    script, _, areas = _alone("cross")
    a, b = script.objects
    assert a.category == b.category and np.all(areas > 0)
    direction = a.centers[-1] - a.centers[0]
    order = np.sign((b.centers - a.centers) @ direction)  # which one leads flips
    assert order[0] != order[-1]


def test_occlude_event_reaches_heavy_occlusion():
    script, video, _ = _alone("occlude")
    below = next(n for n, o in enumerate(script.objects) if "occluded" in o.events)
    above = next(n for n, o in enumerate(script.objects) if "occluder" in o.events)
    assert script.objects[above].z > script.objects[below].z
    labels = video.occlusion_labels()[below]
    assert {"slight_occlusion", "severe_occlusion"} & set(labels)
    assert video.visibility[below].min() < 0.5


def test_dataset_covers_every_event(tmp_path):
    paths = generate_dataset(tmp_path, preset="tiny", seed=0, videos=6, frames=8, mp4=False)
    gt = json.loads(paths.annotations.read_text())
    events = {e for a in gt["annotations"] for e in a["events"]}
    assert {"enter", "leave", "vanish", "cross", "grow", "occluder"} <= events


def test_cli_and_config_errors(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "d"), "--videos", "1", "--frames", "3", "--seed",
                 "7"]) == 0
    assert (tmp_path / "d" / "videos" / "vid_00001.mp4").is_file()
    assert "done" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "e"), "--height", "33"]) == 2
    assert "must be even" in capsys.readouterr().err
    with pytest.raises(SyntheticConfigError, match="unknown preset 'huge'"):
        resolve_preset("huge")
