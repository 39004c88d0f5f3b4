"""Output parity of a low-precision graph against the FP32 graph, on held-out windows.

Top-K reorders near-tied (query, label) pairs under any perturbation (an untrained model's scores
are all near the focal prior), so rows are compared by identity, not by position:

- ``scores_max_abs``: max |score difference| over *all* P x C candidate pairs (the TopK input,
  added as an extra graph output), which no re-ranking can hide;
- masks, boxes and embeddings: over the pairs present in both top-K lists (``topk_match`` is the
  fraction of FP32 pairs the other graph also selected). Boxes only where both graphs have one:
  a mask-derived box (IFC, VisTR) is (0, 0, 0, 0) on a frame whose mask is empty, a "no box"
  marker, not a coordinate, so one pixel crossing 0.5 at the mask's edge (a box at y=188 in one
  graph, "absent" in the other) would read as a 192-pixel box error. Those presence flips are
  measured by the mask terms (``mask_mae``, ``mask_iou``), whose values they barely move.

``ParityBudget.loss`` divides each error by its tolerance; the budget holds when loss <= 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from calibration.data import Windows
from calibration.graph import topk_score_tensor, with_float_output

ALL_SCORES = "parity_all_scores"
OPTIMIZATION = "extended"  # ORT_ENABLE_ALL segfaults on FP16 graphs on CPU (docs/architecture.md "Toolchain facts")


CHECK_BACKENDS = ("onnxruntime", "openvino")  # the CPU runtimes a budget can be measured on


def open_session(model: onnx.ModelProto | str | Path, *, optimization: str = OPTIMIZATION,
                 threads: int = 0, backend: str = "onnxruntime",
                 shapes: dict[str, list[int]] | None = None):
    """CPU session for a ModelProto or a path: onnxruntime at ``optimization`` level, or
    OpenVINO (``calibration.openvino_session``, the runtime's compile properties) with the same
    ``get_inputs`` / ``get_outputs`` / ``run`` interface. ``shapes`` (input name -> static
    shape, OpenVINO only) compiles for that one window shape."""
    if backend == "openvino":
        from calibration.openvino_session import OpenVINOSession

        return OpenVINOSession(model, threads=threads, shapes=shapes)
    if backend != "onnxruntime":
        raise ValueError(f"backend must be one of {CHECK_BACKENDS}, got {backend!r}")
    if shapes:
        raise ValueError("static-shape compilation is an OpenVINO setting; onnxruntime sessions "
                         "keep the graph's shapes")
    import onnxruntime as ort

    from runtime.backends.onnxrt import session_options

    options = session_options(optimization, threads)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def with_parity_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` plus the all-candidate score output (unchanged when there is no single TopK)."""
    tensor = topk_score_tensor(model)
    return model if tensor is None else with_float_output(model, tensor, ALL_SCORES)


def run_windows(session, windows: Windows) -> list[dict[str, np.ndarray]]:
    """One run per window (batch 1, ``content_hw`` fed when the graph declares it): list of
    {output name: array}."""
    names = [o.name for o in session.get_outputs()]
    inputs = [i.name for i in session.get_inputs()]
    return [dict(zip(names, session.run(names, feeds), strict=True)) for feeds in windows.feeds(inputs)]


@dataclass(frozen=True)
class ParityStats:
    """Worst-case differences over the windows (see module doc)."""

    scores_max_abs: float
    topk_match: float
    mask_mae: float
    mask_iou: float
    box_max_abs: float
    embedding_min_cos: float
    windows: int

    def as_dict(self) -> dict:
        return {k: float(f"{v:.4g}") if isinstance(v, float) else v
                for k, v in asdict(self).items()}


def _pairs(out: dict) -> dict[tuple[int, int], int]:
    """(query, label) -> row, batch 0."""
    return {(int(q), int(c)): k for k, (q, c) in
            enumerate(zip(out["query_index"][0], out["labels"][0]))}


def _box_error(a: np.ndarray, b: np.ndarray) -> float:
    """Max |coordinate difference| over boxes present in both: float[..., 4] twice -> pixels. A
    box is present when it has extent (mask-derived boxes of empty masks are all zeros)."""
    present = np.any(a[..., 2:] > a[..., :2], -1) & np.any(b[..., 2:] > b[..., :2], -1)
    return float(np.abs(a - b).max(-1)[present].max()) if present.any() else 0.0


def _window_errors(ref: dict, test: dict) -> dict[str, float]:
    if ALL_SCORES in ref and ALL_SCORES in test:
        score_err = float(np.abs(ref[ALL_SCORES] - test[ALL_SCORES]).max())
    else:
        score_err = None
    a, b = _pairs(ref), _pairs(test)
    common = [(a[p], b[p]) for p in a if p in b]
    errs = {"match": len(common) / max(len(a), 1), "mask": 0.0, "iou": 1.0, "box": 0.0,
            "cos": 1.0}
    if common:
        i, j = (np.array(x) for x in zip(*common))
        ma, mb = ref["masks"][0, i], test["masks"][0, j]
        inter = ((ma > 0.5) & (mb > 0.5)).sum()
        union = ((ma > 0.5) | (mb > 0.5)).sum()
        ea, eb = ref["embeddings"][0, i], test["embeddings"][0, j]
        errs.update(mask=float(np.abs(ma - mb).mean()), iou=float(inter / union) if union else 1.0,
                    box=_box_error(ref["boxes"][0, i], test["boxes"][0, j]),
                    cos=float((ea * eb).sum(-1).min()))
        if score_err is None:
            score_err = float(np.abs(ref["scores"][0, i] - test["scores"][0, j]).max())
    errs["score"] = score_err if score_err is not None else 1.0
    return errs


def compare_outputs(ref: list[dict], test: list[dict]) -> ParityStats:
    """Worst case over windows of ``_window_errors`` (means for mask error and IoU)."""
    if len(ref) != len(test) or not ref:
        raise ValueError(f"need the same non-zero number of windows, got {len(ref)} and {len(test)}")
    errs = [_window_errors(r, t) for r, t in zip(ref, test)]
    return ParityStats(
        scores_max_abs=max(e["score"] for e in errs), topk_match=min(e["match"] for e in errs),
        mask_mae=float(np.mean([e["mask"] for e in errs])),
        mask_iou=float(np.mean([e["iou"] for e in errs])),
        box_max_abs=max(e["box"] for e in errs), embedding_min_cos=min(e["cos"] for e in errs),
        windows=len(errs))


@dataclass(frozen=True, kw_only=True)
class ParityBudget:
    """Tolerances on ``ParityStats`` (keyword-only). Tighter values keep more layers in high
    precision (slower engine); looser ones accept larger output drift.

    Args:
        scores_max_abs: on every candidate score (probabilities in [0, 1]).
        mask_mae: mean |mask probability difference| over shared top-K pairs.
        box_max_abs: on shared top-K boxes, input pixels.
    """

    scores_max_abs: float = 0.02
    mask_mae: float = 0.02
    box_max_abs: float = 4.0

    def loss(self, stats: ParityStats) -> float:
        """max over errors of error / tolerance (<= 1: within budget)."""
        return max(stats.scores_max_abs / self.scores_max_abs, stats.mask_mae / self.mask_mae,
                   stats.box_max_abs / self.box_max_abs)

    def as_dict(self) -> dict:
        return asdict(self)
