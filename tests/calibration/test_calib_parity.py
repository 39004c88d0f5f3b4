"""Parity statistics compare rows by (query, label) identity, not by top-K position."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.parity import ALL_SCORES, ParityBudget, ParityStats, compare_outputs


def _outputs(seed: int = 0, k: int = 4, t: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    return {"scores": np.sort(rng.random((1, k)).astype(np.float32))[:, ::-1],
            "labels": rng.integers(0, 3, (1, k)).astype(np.int32),
            "query_index": np.arange(k, dtype=np.int32)[None],
            "masks": rng.random((1, k, t, 6, 8)).astype(np.float32),
            "boxes": (rng.random((1, k, t, 4)) * 50).astype(np.float32),
            "embeddings": np.eye(k, 5, dtype=np.float32)[None],
            ALL_SCORES: rng.random((1, 12)).astype(np.float32)}


def _permuted(out: dict, order: list[int]) -> dict:
    return {name: (v[:, order] if name not in (ALL_SCORES,) else v.copy())
            for name, v in out.items()}


def test_identical_and_reordered_outputs_have_no_error():
    ref = _outputs()
    same = compare_outputs([ref], [ref])
    swapped = compare_outputs([ref], [_permuted(ref, [1, 0, 3, 2])])
    for stats in (same, swapped):
        assert stats.scores_max_abs == 0 and stats.mask_mae == 0 and stats.box_max_abs == 0
        assert stats.topk_match == 1 and stats.mask_iou == 1 and stats.embedding_min_cos == 1


def test_errors_are_measured_on_shared_pairs():
    ref = _outputs()
    test = {k: v.copy() for k, v in ref.items()}
    test["masks"][0, 1] += 0.1
    test["boxes"][0, 2, 1, 3] += 3.0
    test[ALL_SCORES][0, 5] += 0.05
    test["query_index"][0, 3] = 99  # one pair not selected by the other graph
    stats = compare_outputs([ref], [test])
    assert stats.topk_match == pytest.approx(0.75)
    assert stats.mask_mae == pytest.approx(0.1 / 3, rel=1e-4)
    assert stats.box_max_abs == pytest.approx(3.0, rel=1e-5)
    assert stats.scores_max_abs == pytest.approx(0.05, rel=1e-4)


def test_a_box_present_in_one_graph_only_is_not_a_coordinate_error():
    """IFC's case (2026-12-03): an object leaving the frame keeps one mask pixel in FP32 (box
    80, 188, 84, 192) and none in FP16 (box 0, 0, 0, 0, "absent"); that is a mask difference,
    not a 192-pixel box error. A box moved by 3 pixels on another frame still counts."""
    ref = _outputs()
    ref["boxes"][0, 0, 0] = [80.0, 188.0, 84.0, 192.0]
    test = {k: v.copy() for k, v in ref.items()}
    test["boxes"][0, 0, 0] = 0.0  # the mask became empty on this frame
    assert compare_outputs([ref], [test]).box_max_abs == 0.0
    test["boxes"][0, 1, 1, 0] -= 3.0  # a present box that moved
    assert compare_outputs([ref], [test]).box_max_abs == pytest.approx(3.0, rel=1e-5)
    both_empty = {k: v.copy() for k, v in ref.items()}
    both_empty["boxes"][:] = 0.0
    assert compare_outputs([both_empty], [both_empty]).box_max_abs == 0.0


def test_budget_loss_is_worst_error_over_tolerance():
    budget = ParityBudget(scores_max_abs=0.01, mask_mae=0.1, box_max_abs=2.0)
    stats = ParityStats(scores_max_abs=0.005, topk_match=0.5, mask_mae=0.05, mask_iou=0.9,
                        box_max_abs=3.0, embedding_min_cos=0.9, windows=1)
    assert budget.loss(stats) == pytest.approx(1.5)
    with pytest.raises(TypeError):
        ParityBudget(0.01)  # keyword-only
    with pytest.raises(ValueError):
        compare_outputs([], [])
