"""Letterbox geometry and its inverse, window cutting, finality, cyclic padding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.types import Frame
from runtime.windows import Letterbox, PreparedFrame, Windower, check_window, pad_cyclic


def test_letterbox_keeps_ratio_and_pads_bottom_right_with_mean():
    box = Letterbox.fit((90, 160), (64, 96))
    assert box.scale == pytest.approx(0.6) and box.content_hw == (54, 96)
    image = np.full((90, 160, 3), 200, np.uint8)
    out = box.apply(image, np.array([124, 116, 104], np.uint8))
    assert out.shape == (64, 96, 3)
    assert (out[:54] == 200).all() and (out[54:] == [124, 116, 104]).all()


@pytest.mark.parametrize("src_hw", [(90, 160), (240, 180), (64, 96), (37, 301)])
def test_mask_and_box_map_back_to_source(src_hw):
    """A rectangle drawn in the source, letterboxed and downsampled like a model mask, comes
    back at source resolution with high IoU; its box maps back exactly."""
    dst_hw = (64, 96)
    box = Letterbox.fit(src_hw, dst_hw)
    h, w = src_hw
    truth = np.zeros(src_hw, bool)
    y0, y1, x0, x1 = h // 4, 3 * h // 4, w // 3, 2 * w // 3
    truth[y0:y1, x0:x1] = True
    model = box.apply(np.repeat(truth[..., None].astype(np.uint8) * 255, 3, 2),
                      np.zeros(3, np.uint8))[..., 0] / 255.0
    low = model.reshape(16, 4, 24, 4).mean(axis=(1, 3))  # the model's H/4 x W/4 output grid
    back = box.mask_to_source(low)
    assert back.shape == src_hw
    iou = (back & truth).sum() / (back | truth).sum()
    assert iou > 0.8
    model_box = np.array([x0, y0, x1, y1], np.float32) * box.scale
    assert np.allclose(box.boxes_to_source(model_box), [x0, y0, x1, y1], atol=1e-3)
    assert box.boxes_to_source(np.array([-5, -5, 1e4, 1e4]))[2:].tolist() == [w, h]


@pytest.mark.parametrize("src_hw", [(90, 160), (360, 640), (37, 301), (1080, 1920)])
def test_region_warp_equals_full_frame_warp(src_hw):
    """mask_to_source warps only around the foreground; the result equals a full warp."""
    box = Letterbox.fit(src_hw, (64, 96))
    rng = np.random.default_rng(src_hw[0])
    prob = np.zeros((16, 24), np.float32)
    prob[3:9, 5:12] = rng.random((6, 7))
    prob[12, 20] = 0.9
    a = box.scale / 4
    full_warp = np.array([[a, 0, 0.5 * a - 0.5], [0, a, 0.5 * a - 0.5]])
    full = cv2.warpAffine(prob, full_warp, (src_hw[1], src_hw[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE) > 0.5
    assert np.array_equal(box.mask_to_source(prob), full)
    assert not box.mask_to_source(np.zeros_like(prob)).any()


def _prepared(i: int) -> PreparedFrame:
    return PreparedFrame(Frame(i, i / 30, np.zeros((4, 4, 3), np.uint8)),
                         np.zeros((32, 32, 3), np.uint8), Letterbox.fit((4, 4), (32, 32)))


def _cut(n: int, length: int, stride: int):
    windower, windows, finals = Windower(length, stride), [], []
    for i in range(n):
        window = windower.push(_prepared(i))
        if window is not None:
            windows.append((window.frame_indices, window.overlap))
            finals.append(windower.final_before)
    window = windower.flush()
    if window is not None:
        windows.append((window.frame_indices, window.overlap))
    finals.append(windower.final_before)
    return windows, finals


def test_windows_overlap_and_final_window_is_end_aligned():
    windows, finals = _cut(12, 5, 3)
    assert windows == [([0, 1, 2, 3, 4], 0), ([3, 4, 5, 6, 7], 2), ([6, 7, 8, 9, 10], 2),
                       ([7, 8, 9, 10, 11], 4)]
    assert finals == [3, 6, 9, 12]


def test_exact_fit_needs_no_extra_window_and_short_stream_gives_one_short_window():
    assert _cut(8, 5, 3)[0] == [([0, 1, 2, 3, 4], 0), ([3, 4, 5, 6, 7], 2)]
    assert _cut(3, 5, 3)[0] == [([0, 1, 2], 0)]
    assert _cut(0, 5, 3)[0] == []


def test_window_buffer_is_bounded():
    windower = Windower(5, 1)
    for i in range(200):
        windower.push(_prepared(i))
        assert len(windower._buffer) <= 5


@pytest.mark.parametrize("length,stride", [(5, 5), (5, 0), (5, 7), (1, 1)])
def test_window_stride_out_of_range(length, stride):
    with pytest.raises(ConfigError, match="1 <= stride < window"):
        check_window(length, stride)


def test_window_longer_than_artifact_allows():
    with pytest.raises(ConfigError, match="frames.max=8"):
        check_window(12, 3, max_frames=8)


def test_pad_cyclic_repeats_from_window_start():
    frames = np.arange(3)[:, None, None, None] * np.ones((3, 2, 2, 3), np.uint8)
    padded = pad_cyclic(frames.astype(np.uint8), 8)
    assert padded[:, 0, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert pad_cyclic(frames, 2) is frames
