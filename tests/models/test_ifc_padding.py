"""IFC on letterboxed clips equals the official computation on the padded batch.

The official model pads the frames into one batch and masks the padding at res5
(``ifc.py:45-58``); ``ifc_official.py`` transcribes what the clip forward does with that mask
(cumsum position encoding, ``key_padding_mask`` in encoder and decoder, memory tokens unmasked).
Our model gets the same padded frames plus ``content_hw`` and must give the same outputs, as one
graph (``forward``) and as the two-stage composition (``frame_stage`` per frame, then
``clip_stage``).

Clips: the tiny preset's 192x320 input holding a 4:3 source (192x256), a 16:9 source (180x320)
and a small one (120x200), all three in one batch, T = 3, float32 against the float32
transcription. Tolerances (measured max errors in brackets; only the op order differs):
class logits 1e-5 [2.4e-6], mask logits 1e-4 [2.2e-5 on logits up to ~11]; contract scores
1e-4, mask probabilities 1e-4, labels exact, boxes exact except where a mask probability lies
within 1e-4 of the 0.5 threshold. A float64 case checks the mechanism to 1e-9.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ifc_official import official_boxes, official_clip
from padded_clips import TINY_CONTENTS, letterboxed

from models import build_model

T = 3
MASK_ATOL = 1e-4


def _lively_tiny():
    """Tiny IFC with random weights scaled so scores and masks are not all ~uniform."""
    torch.manual_seed(0)
    model = build_model("ifc", "tiny")
    with torch.no_grad():
        for layer in (model.detr.mask_head.convert_to_weight.layers[-1],
                      model.detr.class_embed.layers[-1]):
            layer.weight.mul_(10)
            layer.bias.mul_(10)
    return model


@pytest.fixture(scope="module")
def tiny():
    return _lively_tiny()


@pytest.fixture(scope="module")
def case(tiny):
    """Three letterboxed clips in one batch, our raw and contract outputs, the official ones."""
    frames, content = letterboxed(tiny, TINY_CONTENTS, T, seed=3)
    with torch.no_grad():
        raw, out = tiny.official_outputs(frames, content), tiny(frames, content)
        images = tiny.normalize(frames)  # [B*T, 3, H, W], the padded batch
        refs = [official_clip(tiny, images[i * T:(i + 1) * T], hw)
                for i, hw in enumerate(TINY_CONTENTS)]
    return frames, content, raw, out, refs


def test_clip_outputs_equal_the_official_computation(case):
    _, _, raw, _, refs = case
    for i, ref in enumerate(refs):
        torch.testing.assert_close(raw["pred_logits"][i], ref["pred_logits"][0], rtol=0, atol=1e-5)
        torch.testing.assert_close(raw["pred_masks"][i], ref["pred_masks"][0], rtol=0, atol=1e-4)


def test_contract_rows_follow_the_official_clip_outputs(tiny, case):
    """Per row (query q, class c): p(c | q) for queries the official ``inference_clip`` keeps
    (argmax not no-object), rows ranked by it; masks = sigmoid of the ×2 bilinear logits of q
    (the contract's stride 4); boxes = the official tight box of mask > 0.5."""
    _, _, _, out, refs = case
    k, num_classes = tiny.spec.num_outputs, len(tiny.spec.classes)
    for i, ref in enumerate(refs):
        prob = ref["pred_logits"][0].softmax(-1)  # [Q, C+1]
        kept = prob.argmax(-1) < num_classes
        pairs = torch.where(kept[:, None], prob[:, :-1], torch.zeros(()))  # [Q, C]
        q, c = out["query_index"][i].long(), out["labels"][i].long()
        torch.testing.assert_close(out["scores"][i], pairs[q, c], rtol=0, atol=1e-4)
        torch.testing.assert_close(out["scores"][i], pairs.flatten().topk(k).values, rtol=0,
                                   atol=1e-4)
        up = F.interpolate(ref["pred_masks"][0, q], scale_factor=2, mode="bilinear",
                           align_corners=False).sigmoid()  # [K, T, h4, w4]
        torch.testing.assert_close(out["masks"][i], up, rtol=0, atol=MASK_ATOL)
        differs = (out["boxes"][i] != official_boxes(up)).any(-1)  # [K, T]
        near = (up - 0.5).abs().amin((-1, -2)) <= MASK_ATOL
        assert not (differs & ~near).any(), "boxes differ although no mask cell is near 0.5"


def test_two_stage_composition_with_per_frame_features(tiny, case):
    """Streaming: each frame's features computed alone, the clip stage masks the padding."""
    frames, content, _, out, _ = case
    with torch.no_grad():
        per_frame = [tiny.frame_stage(frames[:, i:i + 1]) for i in range(T)]
        stacked = [torch.cat(parts, dim=1) for parts in zip(*per_frame, strict=True)]
        streamed = tiny.clip_stage(*stacked, content_hw=content)
    _assert_same_contract(streamed, out, 1e-5)


def test_the_masks_follow_ceil_and_change_padded_clips(tiny, case):
    """4:3 and small clips read as whole inputs give other logits; the 16:9 clip has no padded
    res5 cell (ceil(180/32) = 6 rows of 6), so its mask changes nothing."""
    frames, _, raw, _, _ = case
    with torch.no_grad():
        unmasked = tiny.official_outputs(frames)
    for i in (0, 2):
        assert (raw["pred_logits"][i] - unmasked["pred_logits"][i]).abs().max() > 1e-2
    torch.testing.assert_close(raw["pred_logits"][1], unmasked["pred_logits"][1], rtol=0,
                               atol=1e-6)


def _assert_same_contract(out: dict, ref: dict, atol: float) -> None:
    """Equal contract outputs; boxes (of mask > 0.5) may differ only where a mask probability
    lies within ``atol`` of the threshold."""
    for name, value in ref.items():
        if name != "boxes":
            torch.testing.assert_close(out[name], value, rtol=0, atol=atol, msg=name)
    differs = (out["boxes"] != ref["boxes"]).any(-1)  # [B, K, T]
    near = (ref["masks"] - 0.5).abs().amin((-1, -2)) <= atol
    assert not (differs & ~near).any(), "boxes differ although no mask cell is near 0.5"


def test_batch_rows_equal_single_clips_and_none_is_the_whole_input(tiny, case):
    frames, content, _, out, _ = case
    with torch.no_grad():
        for i in (0, 2):
            single = tiny(frames[i:i + 1], content[i:i + 1])
            _assert_same_contract({k: v[i:i + 1] for k, v in out.items()}, single, 1e-5)
        whole = tiny(frames[1:2])
        full = tiny(frames[1:2], torch.tensor([[192, 320]], dtype=torch.int32))
    _assert_same_contract(full, whole, 1e-6)


def test_float64_padded_clip_equals_the_official_computation_to_rounding():
    model = _lively_tiny().double()
    frames, content = letterboxed(model, TINY_CONTENTS[2:], T, seed=4)
    with torch.no_grad():
        raw = model.official_outputs(frames, content)
        ref = official_clip(model, model.normalize(frames), TINY_CONTENTS[2])
    torch.testing.assert_close(raw["pred_logits"], ref["pred_logits"], rtol=0, atol=1e-10)
    torch.testing.assert_close(raw["pred_masks"], ref["pred_masks"], rtol=0, atol=1e-9)
