"""Parity of pasted masks: a mask moves with its box, so the tolerance of the pixels on a box
edge grows by what their row's own box error explains (export/parity.py, ``mask_box_allowance``),
and every other pixel's stays 1e-3.

The data are real pastes (``paste_masks``, TeViT's 28-cell masks at stride 4) of one mask into a
box and into the same box with its left edge moved by 0.008 px, well within the boxes' 1e-2 px
tolerance: the pixels the edge crosses change by more than the masks' 1e-3.
"""

from __future__ import annotations

import numpy as np
import torch

from export.parity import FP32_TOLERANCES, ParityReport, compare, mask_box_allowance
from models.common.box_ops import paste_masks

CELLS, STRIDE, OUT_HW = 28, 4, (16, 24)
MASK_VALUE = 0.95  # a confident mask up to its edge
BOX = [22.1, 10.0, 42.1, 50.0]  # 20 px wide (1.4 cells a px); the pixel centred at x = 22 on its edge
MOVED = [22.108, 10.0, 42.1, 50.0]


def _outputs(box: list[float], mask_error: float = 0.0) -> dict[str, np.ndarray]:
    """One clip, one query, one frame: the engine outputs with the mask pasted into ``box``."""
    mask = torch.full((1, CELLS, CELLS), MASK_VALUE, dtype=torch.float64)
    pasted = paste_masks(mask, torch.tensor([box], dtype=torch.float64), OUT_HW, STRIDE)
    masks = pasted.numpy().reshape(1, 1, 1, *OUT_HW) + mask_error
    return {"scores": np.array([[0.9]]), "labels": np.array([[1]]), "query_index": np.array([[0]]),
            "boxes": np.array(box).reshape(1, 1, 1, 4), "masks": masks,
            "embeddings": np.ones((1, 1, 8)) / np.sqrt(8)}


def _case(mask_error: float = 0.0):
    return _outputs(BOX), _outputs(MOVED, mask_error)


def test_the_edge_pixels_move_by_more_than_the_mask_tolerance():
    reference, candidate = _case()
    assert np.abs(reference["masks"] - candidate["masks"]).max() > FP32_TOLERANCES["masks"]
    allowance = mask_box_allowance(reference, candidate, CELLS)
    assert allowance.shape == (1, 1, 1, *OUT_HW)
    # the largest at a corner pixel, on both the left (20 px wide) and top (40 px high) ramps
    assert np.isclose(allowance.max(), CELLS * 0.008 / 20 + CELLS * 0.008 / 40)
    assert (allowance == 0).mean() > 0.8  # only the pixels on the moved edge's ramp


def test_pasted_masks_pass_when_the_box_error_explains_the_mask_error():
    reference, candidate = _case()
    report = ParityReport()
    compare(reference, candidate, report, FP32_TOLERANCES, pasted_mask_cells=CELLS)
    assert not report.failures, report.failures
    assert report.max_abs["masks"] > FP32_TOLERANCES["masks"]  # the raw error is still reported


def test_whole_frame_masks_get_no_allowance():
    reference, candidate = _case()
    report = ParityReport()
    compare(reference, candidate, report, FP32_TOLERANCES)
    assert any(f.startswith("masks:") for f in report.failures), report.failures


def test_a_mask_error_the_box_does_not_explain_still_fails():
    reference, candidate = _case(mask_error=2.5e-3)  # every pixel, and on top of the moved edge
    report = ParityReport()
    compare(reference, candidate, report, FP32_TOLERANCES, pasted_mask_cells=CELLS)
    assert any(f.startswith("masks:") for f in report.failures), report.failures
    same_box = _outputs(BOX, mask_error=2e-3)
    report = ParityReport()
    compare(reference, same_box, report, FP32_TOLERANCES, pasted_mask_cells=CELLS)
    assert any(f.startswith("masks:") for f in report.failures), report.failures


def test_the_manifest_records_the_cells_for_torch_free_comparisons(tiny_exports):
    """Runtime-level comparisons (two backends, no PyTorch) read the allowance's cell count from
    the manifest: TeViT pastes 28-cell masks (14-cell RoI doubled by the mask head's deconv),
    IFC predicts masks on the whole frame."""
    from runtime.manifest import load_manifest

    assert load_manifest(tiny_exports("tevit").directory).pasted_mask_cells == CELLS
    assert load_manifest(tiny_exports("ifc").directory).pasted_mask_cells is None
