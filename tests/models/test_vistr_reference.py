"""VisTR equals a line-by-line transcription of the official forward and inference rules.

The transcription (``vistr_official.py``) follows Epiphqny/VisTR @445c9e4; everything runs in
float64 on the tiny preset with randomised weights. Padded (letterboxed) clips are tested in
``test_vistr_padding.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vistr_official import official_forward, official_scores, position_embedding, randomize_

from models.vistr.model import build


# ----------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def tiny64():
    model = build("tiny", input_hw=(64, 96)).double().eval()
    randomize_(model)
    return model


def test_raw_outputs_equal_the_official_forward(tiny64):
    cfg = tiny64.cfg
    t, s = cfg.num_frames, cfg.num_ins
    images = torch.randn(
        2 * t, 3, 64, 96, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    with torch.no_grad():
        ours = tiny64.forward_raw(images, num_clips=2)
        for clip in range(2):
            ref = official_forward(tiny64, images[clip * t : (clip + 1) * t])
            masks = ref["pred_masks"].reshape(t, s, 16, 24).transpose(0, 1)  # -> [S, T, h, w]
            torch.testing.assert_close(
                ours["logits"][clip], ref["pred_logits"][0], rtol=0, atol=1e-10
            )
            torch.testing.assert_close(
                ours["boxes"][clip], ref["pred_boxes"][0], rtol=0, atol=1e-10
            )
            torch.testing.assert_close(ours["hs"][clip], ref["hs"][0], rtol=0, atol=1e-10)
            torch.testing.assert_close(ours["mask_logits"][clip], masks, rtol=0, atol=1e-9)
            assert ref["pred_masks"].abs().max() > 0.1  # the mask path is not trivially zero


def test_contract_scores_and_labels_follow_inference_py(tiny64):
    cfg = tiny64.cfg
    frames = torch.randint(
        0,
        256,
        (1, cfg.num_frames, 64, 96, 3),
        generator=torch.Generator().manual_seed(2),
        dtype=torch.uint8,
    )
    with torch.no_grad():
        out = tiny64(frames)
        ref = official_forward(tiny64, tiny64.normalize(frames))
    scores, labels = official_scores(ref["pred_logits"], cfg.num_frames, cfg.num_ins)
    np.testing.assert_allclose(out["scores"][0].numpy(), scores, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out["labels"][0].numpy(), labels)  # tiny: class_offset 0
    probs = torch.sigmoid(ref["pred_masks"][0]).reshape(cfg.num_frames, cfg.num_ins, 16, 24)
    torch.testing.assert_close(out["masks"][0], probs.transpose(0, 1), rtol=0, atol=1e-12)
    assert out["query_index"][0].tolist() == list(range(cfg.num_ins))


def test_position_encoding_equals_the_cumsum_form():
    from models.vistr.position_encoding import PositionEmbeddingSine3D

    t, h, w, f = 5, 3, 7, 16
    ref = position_embedding(torch.zeros(2 * t, h, w, dtype=torch.bool), t, f)  # [2, T, 3F, h, w]
    ours = PositionEmbeddingSine3D(f)(t, h, w, torch.device("cpu"))  # [T*h*w, 3F]
    expected = ref[1].permute(0, 2, 3, 1).reshape(t * h * w, 3 * f)
    assert torch.equal(ours, expected)  # same float32 ops -> bit-identical
