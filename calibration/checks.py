"""Accuracy checks that decide whether a low-precision graph is good enough.

Two interchangeable checks share ``measure(model) -> Measurement``:

- ``ParityCheck``: output parity vs FP32 on held-out windows, normalised by a ``ParityBudget``
  (value = loss, within budget when <= 1). Works for any model, trained or not. ``backend``:
  the CPU runtime both graphs run on (onnxruntime, or openvino for graphs deployed with it).
- ``MetricCheck``: a task metric computed by a pluggable function ``metric(onnx_path) -> float``
  (e.g. ``calibration.ap_metric.YtvisApMetric``: YouTube-VIS AP x 100 on the synthetic val set);
  value = drop vs FP32 in metric points, within budget when <= ``budget_drop`` (default 0.5 AP).

Both can measure a candidate compiled by OpenVINO for one static window shape
(``measure(model, shapes=...)``, ``calibration.openvino_static``): the parity check on its
windows, the metric check when its metric can (``measures_static_shapes``, the AP metric).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from calibration.data import Windows
from calibration.parity import (
    ParityBudget,
    compare_outputs,
    open_session,
    run_windows,
    with_parity_output,
)

DEFAULT_BUDGET_AP = 0.5


@dataclass(frozen=True)
class Measurement:
    """``value``: parity loss or metric drop; ``within_budget``; ``details`` for the report."""

    value: float
    within_budget: bool
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"value": float(f"{self.value:.4g}"), "within_budget": self.within_budget,
                **self.details}


class ParityCheck:
    """Parity against FP32 on ``windows`` (``calibration.data.Windows``); reference computed once."""

    kind = "parity"

    def __init__(self, fp32: onnx.ModelProto, windows: Windows, *,
                 budget: ParityBudget | None = None, threads: int = 0,
                 backend: str = "onnxruntime") -> None:
        self.windows, self.threads, self.backend = windows, threads, backend
        self.budget = budget or ParityBudget()
        self.reference = run_windows(self._session(with_parity_output(fp32)), windows)

    def _session(self, model: onnx.ModelProto, shapes: dict | None = None):
        return open_session(model, threads=self.threads, backend=self.backend, shapes=shapes)

    def measure(self, model: onnx.ModelProto, *, shapes: dict[str, list[int]] | None = None,
                parity_output: bool = True) -> Measurement:
        """Loss of ``model`` against the FP32 reference. ``parity_output=False`` runs the graph
        as deployed, without the all-candidate score output (scores are then compared on the
        shared top-K rows); ``shapes``: compile for that static window shape (OpenVINO)."""
        session = self._session(with_parity_output(model) if parity_output else model, shapes)
        stats = compare_outputs(self.reference, run_windows(session, self.windows))
        loss = self.budget.loss(stats)
        return Measurement(loss, loss <= 1.0, stats.as_dict())

    def describe(self) -> dict:
        return {"kind": self.kind, "backend": self.backend, "windows": len(self.windows),
                "budget": self.budget.as_dict(),
                "rule": "loss = max(error / tolerance) over scores, masks, boxes; holds at <= 1",
                "note": "parity budget: no task metric was given (pass --ap-data for AP)"}


class MetricCheck:
    """Drop of a task metric vs FP32: ``metric(fp32) - metric(candidate) <= budget_drop``.

    Args:
        metric: maps an ONNX file to a score where higher is better (AP x 100).
        fp32_path: the FP32 ONNX (baseline computed once).
        budget_drop: allowed drop in the metric's own units.
        name: label in reports ("AP").
    """

    kind = "metric"

    def __init__(self, metric: Callable[[Path], float], fp32_path: str | Path, *,
                 budget_drop: float = DEFAULT_BUDGET_AP, name: str = "AP") -> None:
        self.metric, self.budget_drop, self.name = metric, budget_drop, name
        self.baseline = float(metric(Path(fp32_path)))

    @property
    def backend(self) -> str | None:
        """The runtime the metric runs graphs on, when it says (the AP metric does)."""
        return getattr(self.metric, "backend", None)

    @property
    def measures_static_shapes(self) -> bool:
        """Whether the metric can run a graph compiled for a static window shape:
        ``metric(path, static_shapes={input: shape})`` (``YtvisApMetric`` on OpenVINO)."""
        return bool(getattr(self.metric, "measures_static_shapes", False))

    def measure(self, model: onnx.ModelProto, *,
                shapes: dict[str, list[int]] | None = None) -> Measurement:
        """Metric drop of ``model`` against FP32; ``shapes``: run it compiled for that static
        window shape (only where ``measures_static_shapes``)."""
        if shapes and not self.measures_static_shapes:
            raise ValueError(f"this {self.name} metric cannot run a graph compiled for static "
                             "shapes")
        with tempfile.TemporaryDirectory(prefix="visdeploy_metric_") as tmp:
            path = Path(tmp) / "candidate.onnx"
            onnx.save(model, str(path))
            value = float(self.metric(path, static_shapes=shapes) if shapes else self.metric(path))
        drop = self.baseline - value
        return Measurement(drop, drop <= self.budget_drop,
                           {self.name: round(value, 4), f"{self.name}_fp32": round(self.baseline, 4),
                            f"{self.name}_drop": round(drop, 4)})

    def describe(self) -> dict:
        return {"kind": self.kind, "metric": self.name, "backend": self.backend,
                "baseline": self.baseline,
                "budget_drop": self.budget_drop,
                "rule": f"{self.name}(fp32) - {self.name}(candidate) <= {self.budget_drop}"}
