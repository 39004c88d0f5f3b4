"""Per-block sensitivity and automatic fallback until the accuracy budget holds.

INT8: one calibration gives the fully quantized graph; ``keep_quantized`` derives any subset
from it. Each block (module-path prefix, e.g. ``backbone.layers.2``, ``roi_head.bbox_head.4``) is
measured *alone* in INT8 (everything else FP32); then blocks are returned to high precision,
worst first, until the whole graph is within budget; then each returned block but the last is
tried in INT8 again, least sensitive first, and stays INT8 when the graph still holds the
budget (block errors do not add up: ranked alone, the worst-first pass sends back more than the
budget needs; the official msgshift TeViT went from 1.85 to 0.06 of its parity budget with 11
blocks back).

FP16: each keep-list group is measured by converting with only that group kept FP32, against
the all-FP16 conversion; a group matters when keeping it FP32 removes a clear part of the error.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from calibration.checks import Measurement
from calibration.fp16 import convert_fp16
from calibration.graph import NodeInfo, Selector, blocks, select
from calibration.progress import ProgressBar
from calibration.qdq import keep_quantized

log = logging.getLogger("visdeploy.calibration")


@dataclass(frozen=True)
class BlockRow:
    """Sensitivity of one block: ``value`` of the check when only this block is INT8."""

    block: str
    nodes: tuple[str, ...]
    measurement: Measurement

    def as_dict(self) -> dict:
        return {"block": self.block, "quantized_nodes": len(self.nodes),
                **self.measurement.as_dict()}


@dataclass
class Fallback:
    """Outcome of ``fallback``: blocks returned to high precision and each step's measurement."""

    excluded: list[str] = field(default_factory=list)  # in high precision in the end
    readmitted: list[str] = field(default_factory=list)  # sent back, then INT8 again
    kept: set[str] = field(default_factory=set)
    steps: list[dict] = field(default_factory=list)
    final: Measurement | None = None

    def as_dict(self) -> dict:
        return {"excluded_blocks": self.excluded, "readmitted_blocks": self.readmitted,
                "quantized_nodes": len(self.kept), "steps": self.steps,
                "final": self.final.as_dict() if self.final else None}


def block_sensitivity(qmodel: onnx.ModelProto, fp32: onnx.ModelProto, infos: list[NodeInfo],
                      quantized: set[str], check, *, depth: int,
                      progress: bool = True) -> list[BlockRow]:
    """Rows sorted worst first (largest ``value`` = largest parity loss or metric drop)."""
    groups = blocks(infos, depth, only=quantized)
    bar = ProgressBar("INT8 sensitivity (blocks)", total=len(groups), enabled=progress)
    rows = []
    for i, (name, nodes) in enumerate(groups.items()):
        measurement = check.measure(keep_quantized(qmodel, fp32, set(nodes)))
        rows.append(BlockRow(name, tuple(nodes), measurement))
        bar.update(i + 1)
    bar.finish()
    return sorted(rows, key=lambda r: r.measurement.value, reverse=True)


def fallback(qmodel: onnx.ModelProto, fp32: onnx.ModelProto, quantized: set[str],
             rows: list[BlockRow], check, *, readmit: bool = True
             ) -> tuple[onnx.ModelProto, Fallback]:
    """Return blocks to high precision, worst row first, until ``check`` holds; then (``readmit``)
    try each returned block but the last in INT8 again, the least sensitive first, keeping it
    INT8 when ``check`` still holds.

    The last block sent back is not retried: its return is what brought the graph within
    budget (with every earlier one back, the graph was measured over it). Every step's measurement is
    recorded (``{"excluded": block}`` or ``{"readmitted": block, "kept": bool}``); the final
    graph is the last one within budget. Returns that graph and the record. If all rows are
    removed the graph has no INT8 left (reported, not raised: the caller decides whether an
    INT8 artifact without INT8 layers is acceptable).
    """
    result = Fallback(kept=set(quantized))
    model = keep_quantized(qmodel, fp32, result.kept)
    result.final = check.measure(model)
    result.steps.append({"excluded": None, **result.final.as_dict()})
    nodes_of = {row.block: set(row.nodes) for row in rows}
    for row in rows:
        if result.final.within_budget:
            break
        result.kept -= nodes_of[row.block]
        result.excluded.append(row.block)
        model = keep_quantized(qmodel, fp32, result.kept)
        result.final = check.measure(model)
        result.steps.append({"excluded": row.block, **result.final.as_dict()})
        log.info("fallback: %s back to FP32 -> value %.4g (%s)", row.block, result.final.value,
                 "within budget" if result.final.within_budget else "over budget")
    if not (readmit and result.final.within_budget):
        return model, result
    for block in reversed(result.excluded[:-1]):
        trial = keep_quantized(qmodel, fp32, result.kept | nodes_of[block])
        measured = check.measure(trial)
        result.steps.append({"readmitted": block, "kept": measured.within_budget,
                             **measured.as_dict()})
        log.info("fallback: %s INT8 again -> value %.4g (%s)", block, measured.value,
                 "kept" if measured.within_budget else "over budget, back to FP32")
        if measured.within_budget:
            result.kept |= nodes_of[block]
            result.readmitted.append(block)
            model, result.final = trial, measured
    result.excluded = [b for b in result.excluded if b not in result.readmitted]
    return model, result


def fp16_group_sensitivity(src: Path, fp32: onnx.ModelProto, infos: list[NodeInfo],
                           groups: list[Selector], reference: np.ndarray, check, *,
                           decided: list[Selector], data_max: float,
                           progress: bool = True) -> list[dict]:
    """Measure FP16 variants: nothing kept, each group alone kept FP32, the keep-list decision.

    Slow (one AutoCast conversion per variant); run it with ``--sensitivity`` when a model or
    its keep-list changes, and record the outcome in ``models/<name>/precision.json``.
    """
    chosen = select(infos, groups)
    variants = [("none", set())] + [(g.name, chosen.get(g.name, set())) for g in groups]
    variants.append(("keep_list", set().union(*(chosen.get(g.name, set()) for g in decided))))
    bar = ProgressBar("FP16 sensitivity (groups)", total=len(variants), enabled=progress)
    rows = []
    with tempfile.TemporaryDirectory(prefix="visdeploy_fp16s_") as tmp:
        for i, (name, keep) in enumerate(variants):
            path = Path(tmp) / f"{i}.onnx"
            convert_fp16(src, path, reference, keep_nodes=keep, data_max=data_max)
            measurement = check.measure(onnx.load(str(path)))
            rows.append({"kept_fp32": name, "nodes": len(keep), **measurement.as_dict()})
            bar.update(i + 1)
    bar.finish()
    base = rows[0]["value"]
    for row in rows:
        row["error_removed"] = round(1.0 - row["value"] / base, 4) if base > 0 else 0.0
    return rows
