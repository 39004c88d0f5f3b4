"""VisTR on letterboxed clips equals the official computation on the padded batch.

The official code pads a clip's frames into a batch and carries a pixel mask (``util/misc.py``
``nested_tensor_from_tensor_list``); ``vistr_official.py`` transcribes what it does with it
(stride-32 mask by nearest interpolation, cumsum position encoding, ``key_padding_mask`` in the
transformer, -inf fill of the instance attention maps, boxes relative to the real image). Our
model gets the same padded frames plus ``content_hw`` and must give the same outputs.

Clips: the tiny preset's 192x320 input holding a 4:3 source (192x256), a 16:9 source (180x320)
and a small one (120x200), all three in one batch, float32 (the exported precision) against the
float32 transcription. Tolerances (measured max errors in brackets; only the op order differs):
raw logits and decoder outputs 1e-5 [1.2e-6, 1.8e-6], sigmoid boxes 1e-6 [1.2e-7], mask logits
1e-4 [1.3e-5]; contract scores 1e-4 [6e-8], boxes 1e-2 px [4.6e-5 px], mask probabilities 1e-4
[3e-6], labels exact. A float64 case at 64x96 checks the mechanism to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from padded_clips import TINY_CONTENTS, letterboxed
from vistr_official import official_boxes_xyxy, official_forward, official_scores, randomize_

from models.vistr.model import build

T, S = 6, 10


@pytest.fixture(scope="module")
def tiny():
    model = build("tiny").eval()
    randomize_(model)
    return model


@pytest.fixture(scope="module")
def case(tiny):
    """Three letterboxed clips in one batch, our raw and contract outputs, the official ones."""
    frames, content = letterboxed(tiny, TINY_CONTENTS, T, seed=3)
    with torch.no_grad():
        images = tiny.normalize(frames)  # [B*T, 3, H, W], the padded batch
        raw, out = tiny.forward_raw(images, len(content), content), tiny(frames, content)
        refs = [official_forward(tiny, images[i * T:(i + 1) * T], hw)
                for i, hw in enumerate(TINY_CONTENTS)]
    return frames, content, raw, out, refs


def _slot_major(x: torch.Tensor) -> torch.Tensor:
    """Official per-query [T*S, ...] (frame-major) -> [S, T, ...]."""
    return x.reshape(T, S, *x.shape[1:]).transpose(0, 1)


def test_raw_outputs_equal_the_official_computation(case):
    _, _, raw, _, refs = case
    for i, ref in enumerate(refs):
        torch.testing.assert_close(raw["logits"][i], ref["pred_logits"][0], rtol=0, atol=1e-5)
        torch.testing.assert_close(raw["boxes"][i], ref["pred_boxes"][0], rtol=0, atol=1e-6)
        torch.testing.assert_close(raw["hs"][i], ref["hs"][0], rtol=0, atol=1e-5)
        masks = _slot_major(ref["pred_masks"][0])
        torch.testing.assert_close(raw["mask_logits"][i], masks, rtol=0, atol=1e-4)


def test_contract_outputs_follow_the_official_inference(case):
    """Scores/labels by ``inference.py``; boxes scaled by the real image (``rescale_bboxes``)."""
    _, _, _, out, refs = case
    for i, (ref, hw) in enumerate(zip(refs, TINY_CONTENTS, strict=True)):
        scores, labels = official_scores(ref["pred_logits"], T, S)
        np.testing.assert_allclose(out["scores"][i].numpy(), scores, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(out["labels"][i].numpy(), labels)
        boxes = _slot_major(official_boxes_xyxy(ref["pred_boxes"][0], hw))
        torch.testing.assert_close(out["boxes"][i], boxes, rtol=0, atol=1e-2)
        masks = _slot_major(ref["pred_masks"][0]).sigmoid()
        torch.testing.assert_close(out["masks"][i], masks, rtol=0, atol=1e-4)


def test_the_masks_change_the_outputs_of_padded_clips(tiny, case):
    """Not vacuous: the 4:3 and the small clip read as whole inputs give other logits, and
    their instance attention maps put no weight on padded cells."""
    frames, _, raw, _, _ = case
    with torch.no_grad():
        unmasked = tiny.forward_raw(tiny.normalize(frames[[0, 2]]), 2)
    for row, i in enumerate((0, 2)):
        assert (raw["logits"][i] - unmasked["logits"][row]).abs().max() > 1e-2
    maps = raw["attn"].sum(2)  # [B*T, S, h, w]
    assert (maps[:T, :, :, 8:] == 0).all()  # 4:3: columns 8, 9 of 10 are padding
    assert (maps[2 * T:, :, 4:] == 0).all() and (maps[2 * T:, :, :, 7:] == 0).all()


def test_batch_rows_equal_single_clips_and_none_is_the_whole_input(tiny, case):
    frames, content, _, out, _ = case
    with torch.no_grad():
        for i in (0, 2):
            single = tiny(frames[i:i + 1], content[i:i + 1])
            for name, value in single.items():  # boxes in pixels (~100): 1e-3 px
                atol = 1e-3 if name == "boxes" else 1e-5
                torch.testing.assert_close(out[name][i:i + 1], value, rtol=0, atol=atol)
        whole = tiny(frames[1:2])
        full = tiny(frames[1:2], torch.tensor([[192, 320]], dtype=torch.int32))
    for name, value in whole.items():
        torch.testing.assert_close(full[name], value, rtol=0, atol=1e-6)


def test_float64_padded_clips_equal_the_official_computation_to_rounding():
    """The mechanism, not fp32 noise: at 64x96 (2x3 cells at stride 32), content 64x64 pads a
    column and 30x50 a row and a column; float64 outputs agree to 1e-10."""
    model = build("tiny", input_hw=(64, 96)).double().eval()
    randomize_(model)
    contents = ((64, 64), (30, 50))
    frames, content = letterboxed(model, contents, T, seed=5)
    with torch.no_grad():
        images = model.normalize(frames)
        raw = model.forward_raw(images, 2, content)
        for i, hw in enumerate(contents):
            ref = official_forward(model, images[i * T:(i + 1) * T], hw)
            torch.testing.assert_close(raw["logits"][i], ref["pred_logits"][0], rtol=0, atol=1e-10)
            torch.testing.assert_close(raw["boxes"][i], ref["pred_boxes"][0], rtol=0, atol=1e-10)
            masks = _slot_major(ref["pred_masks"][0])
            torch.testing.assert_close(raw["mask_logits"][i], masks, rtol=0, atol=1e-9)
