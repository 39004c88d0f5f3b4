"""Cross-checks of the fast scorer against independent straightforward implementations.

- video IoU: against numpy on decoded masks (sum of intersections / sum of unions);
- every summary figure: against ``evaluation.ytvis_reference`` (official control flow, Python
  loops, per-frame merge/area) on randomised GT and results with crowd GTs, score ties, several
  area ranges, unmatched categories, more than 100 results in one (video, category), and, in
  lenient mode, truncated lists, wrong-size masks and unknown categories.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from evaluation import rle
from evaluation.ytvis import evaluate
from evaluation.ytvis_io import load_ground_truth, load_results
from evaluation.ytvis_iou import compute_ious
from evaluation.ytvis_reference import reference_evaluate

H, W, F = 24, 32, 5


def _blob(rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
    mask[y:y + rng.integers(3, 12), x:x + rng.integers(3, 14)] = True
    return mask


def _jitter(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    if rng.random() < 0.5:
        return mask
    return np.roll(mask, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(0, 1))


def _random_gt(rng: np.random.Generator, videos: int = 3, cats: int = 3) -> tuple[dict, dict]:
    gt = {"videos": [], "annotations": [],
          "categories": [{"id": c, "name": f"c{c}"} for c in range(1, cats + 2)]}  # last: no GT
    masks: dict[int, list] = {}
    for v in range(1, videos + 1):
        gt["videos"].append({"id": v, "height": H, "width": W, "length": F,
                             "file_names": [f"{v}/{f}" for f in range(F)]})
        for _ in range(int(rng.integers(1, 5))):
            seq = [_blob(rng) if rng.random() > 0.25 else None for _ in range(F)]
            if all(m is None for m in seq):
                seq[0] = _blob(rng)
            scale = float(rng.choice([1, 1, 200, 1000]))  # JSON areas drive the area ranges
            ann_id = len(gt["annotations"]) + 1
            masks[ann_id] = seq
            gt["annotations"].append({
                "id": ann_id, "video_id": v, "category_id": int(rng.integers(1, cats + 1)),
                "iscrowd": int(rng.random() < 0.15),
                "segmentations": [rle.encode_uncompressed(m) if m is not None else None
                                  for m in seq],
                "areas": [float(m.sum()) * scale if m is not None else None for m in seq]})
    return gt, masks


def _random_results(rng: np.random.Generator, gt: dict, masks: dict, cats: int) -> list[dict]:
    results = []
    for ann in gt["annotations"]:
        for _ in range(int(rng.integers(1, 4))):
            seq = [None if m is None or rng.random() < 0.1 else _jitter(rng, m)
                   for m in masks[ann["id"]]]
            cat = ann["category_id"] if rng.random() < 0.8 else int(rng.integers(1, cats + 2))
            results.append((ann["video_id"], cat, seq))
    for v in gt["videos"]:
        for _ in range(int(rng.integers(0, 6))):
            results.append((v["id"], int(rng.integers(1, cats + 2)),
                            [_blob(rng) if rng.random() < 0.7 else None for _ in range(F)]))
    order = rng.permutation(len(results))
    return [{"video_id": results[i][0], "category_id": results[i][1],
             "score": float(np.round(rng.random(), 1)),  # many ties
             "segmentations": [rle.encode(m) if m is not None else None for m in results[i][2]]}
            for i in order]


@pytest.mark.parametrize("seed", range(6))
def test_fast_scorer_equals_reference(seed):
    rng = np.random.default_rng(seed)
    gt, masks = _random_gt(rng)
    results = _random_results(rng, gt, masks, cats=3)
    fast, slow = evaluate(gt, results), reference_evaluate(gt, results)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value, abs=1e-12), key
    assert 0.05 < fast["AP"] < 0.95  # the case is not degenerate


def test_more_than_100_results_per_video_and_category():
    rng = np.random.default_rng(11)
    gt, masks = _random_gt(rng, videos=1, cats=1)
    results = _random_results(rng, gt, masks, cats=1)
    seq = masks[1]
    results += [{"video_id": 1, "category_id": gt["annotations"][0]["category_id"],
                 "score": float(rng.choice([0.2, 0.3])),
                 "segmentations": [rle.encode(_jitter(rng, m)) if m is not None else None
                                   for m in seq]} for _ in range(110)]
    fast, slow = evaluate(gt, results), reference_evaluate(gt, results)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value, abs=1e-12), key


def test_lenient_mode_equals_reference_on_faulty_results():
    rng = np.random.default_rng(5)
    gt, masks = _random_gt(rng)
    results = _random_results(rng, gt, masks, cats=3)
    results[0]["segmentations"] = results[0]["segmentations"][:3]          # truncated
    results[1]["segmentations"] = results[1]["segmentations"] + [None]     # too long
    big = np.zeros((2 * H, 2 * W), dtype=bool)
    big[:20, :20] = True
    results[2]["segmentations"][1] = rle.encode(big)                        # wrong size
    results[3]["category_id"] = 99                                          # unknown category
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = evaluate(gt, results, lenient=True)
    slow = reference_evaluate(gt, results)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value, abs=1e-12), key


def test_video_iou_equals_numpy_on_decoded_masks():
    rng = np.random.default_rng(3)
    gt, masks = _random_gt(rng, videos=2)
    results = _random_results(rng, gt, masks, cats=3)
    _, data = load_ground_truth(gt)
    data = load_results(results, data)
    dts, ious = compute_ious(data)
    checked = 0
    for (vid, cat), matrix in ious.items():
        for i, d in enumerate(dts.get((vid, cat), [])):
            for j, g in enumerate(data.gts.get((vid, cat), [])):
                dm = np.stack([rle.decode(r, H, W) for r in d.rles])
                gm = np.stack([rle.decode(r, H, W) for r in g.rles])
                union = int((dm | gm).sum())
                expected = (dm & gm).sum() / union if union else 0.0
                assert matrix[i, j] == expected
                checked += 1
    assert checked > 10
