"""ONNX Runtime vs PyTorch parity of an exported model, with tolerances stated here.

FP32 tolerances (absolute), measured on the tiny preset and held with ~10x headroom:
scores 1e-4 (probabilities; observed ~1e-6), boxes 1e-2 input pixels (~2e-5 relative at 640 px;
observed ~1e-4), masks 1e-3 (probabilities), embeddings 1e-4 (unit vectors). Labels and query
indices must match exactly, except where two candidate scores are closer than the score tolerance
(a genuine tie that float rounding may order either way) — such rows are reported, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from export.onnx_export import model_inputs, sample_inputs
from models.base import OUTPUT_NAMES, VISModel
from runtime.backends.base import engine_feeds

FP32_TOLERANCES = {"scores": 1e-4, "boxes": 1e-2, "masks": 1e-3, "embeddings": 1e-4}
EXACT_OUTPUTS = ("labels", "query_index")
DEFAULT_CASES = ((1, 1), (1, 2), (1, 5), (2, 5))  # (B, T)


class ParityError(AssertionError):
    """onnxruntime and PyTorch disagree beyond the stated tolerance."""


@dataclass
class ParityReport:
    """Worst absolute error per output over all cases, and the cases that ran."""

    cases: list[tuple[int, int]] = field(default_factory=list)
    max_abs: dict[str, float] = field(default_factory=dict)
    index_mismatches: int = 0
    tied_rows: int = 0
    failures: list[str] = field(default_factory=list)

    def as_manifest(self) -> dict:
        return {
            "batch_frames": [list(c) for c in self.cases],
            "frames": sorted({t for _, t in self.cases}),
            **{f"{k}_max_abs": float(v) for k, v in self.max_abs.items()},
            "index_mismatches": self.index_mismatches,
            "tolerances": dict(FP32_TOLERANCES),
        }


def ort_session(path: str | Path, *, optimization: str = "extended"):
    """A CPU onnxruntime session; ``extended`` optimisation (``all`` segfaults FP16 graphs on CPU)."""
    import onnxruntime as ort

    from runtime.backends.onnxrt import session_options

    return ort.InferenceSession(str(path), session_options(optimization),
                                providers=["CPUExecutionProvider"])


def _tied(scores: np.ndarray, tol: float) -> np.ndarray:
    """Rows whose score is within ``tol`` of a neighbour in the sorted list: bool[B, K]."""
    gaps = np.abs(np.diff(scores, axis=1)) < tol
    tied = np.zeros_like(scores, dtype=bool)
    tied[:, 1:] |= gaps
    tied[:, :-1] |= gaps
    return tied


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], report: ParityReport,
            tolerances: dict[str, float]) -> None:
    """Fold one case into ``report``: max abs error per output on rows whose indices agree."""
    same = np.ones(reference["scores"].shape, dtype=bool)
    for name in EXACT_OUTPUTS:
        same &= reference[name] == candidate[name]
    tied = _tied(reference["scores"], tolerances["scores"])
    report.index_mismatches += int((~same).sum())
    report.tied_rows += int((~same & tied).sum())
    if (~same & ~tied).any():
        report.failures.append(f"labels/query_index differ on {int((~same & ~tied).sum())} untied rows")
    for name, tol in tolerances.items():
        ref, cand = reference[name], candidate[name]
        rows = same if name == "scores" else same.reshape(same.shape + (1,) * (ref.ndim - 2))
        err = float(np.abs(np.where(rows, ref - cand, 0.0)).max()) if ref.size else 0.0
        report.max_abs[name] = max(report.max_abs.get(name, 0.0), err)
        if err > tol:
            report.failures.append(f"{name}: max abs error {err:.3g} > tolerance {tol:g}")


def check_parity(
    model: VISModel,
    onnx_path: str | Path,
    *,
    cases: tuple[tuple[int, int], ...] = DEFAULT_CASES,
    tolerances: dict[str, float] | None = None,
    session=None,
    raise_on_failure: bool = True,
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same random frames for each (B, T) case and compare.

    Models that take ``content_hw`` get letterboxed sizes per row (``sample_content_hw``: the
    whole input, a 4:3 and a 16:9 source), so batches of B >= 2 check padded clips too."""
    tolerances = tolerances or FP32_TOLERANCES
    session = session or ort_session(onnx_path)
    report = ParityReport()
    for seed, (b, t) in enumerate(cases):
        t = model.spec.fixed_frames or t
        inputs = sample_inputs(model, b, t, seed=100 + seed)
        with torch.no_grad():
            expected = {k: v.numpy() for k, v in model(*inputs).items()}
        content_hw = inputs[1].numpy() if len(inputs) > 1 else None
        feeds = engine_feeds(model_inputs(model), inputs[0].numpy(), content_hw)
        got = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feeds)))
        compare(expected, got, report, tolerances)
        report.cases.append((b, t))
    if report.failures and raise_on_failure:
        raise ParityError(f"{onnx_path}: onnxruntime vs PyTorch parity failed: " + "; ".join(report.failures))
    return report
