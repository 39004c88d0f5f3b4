"""Everything checked before TensorRT is needed: ONNX validity and the TensorRT support lint.

Runs on any machine (onnx only). The result lists what was checked, so a machine without
TensorRT can stop with a message that says exactly that and how to go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from export.trt_support import LintReport, lint_model, load_support_table

log = logging.getLogger("visdeploy.export.tensorrt")


class PreflightError(RuntimeError):
    """The ONNX file is invalid or uses what the TensorRT parser does not support."""


@dataclass
class Preflight:
    """What was checked, the graph's inputs, and the lint per TensorRT version."""

    onnx_path: Path
    checked: list[str] = field(default_factory=list)
    inputs: list[tuple[str, list]] = field(default_factory=list)
    lints: list[LintReport] = field(default_factory=list)

    def describe(self) -> str:
        return "\n".join(f"  - {line}" for line in self.checked)


def _graph_inputs(model: onnx.ModelProto) -> list[tuple[str, list]]:
    initializers = {init.name for init in model.graph.initializer}
    return [(v.name, [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                      for d in v.type.tensor_type.shape.dim])
            for v in model.graph.input if v.name not in initializers]


def check_onnx(path: Path, pre: Preflight) -> onnx.ModelProto:
    """Full ``onnx.checker`` and strict shape inference; record the result in ``pre``."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, OSError) as err:
        raise PreflightError(f"{path} is not a valid ONNX model ({err}); re-export it") from err
    pre.checked.append(f"{path.name}: onnx.checker (full) and strict shape inference pass")
    pre.inputs = _graph_inputs(model)
    return model


def run_preflight(onnx_path: Path, targets: list[tuple[int, str | None]], *,
                  sha_checked: bool = True, gate: bool = True) -> Preflight:
    """Check ``onnx_path`` and lint it for each ``(major, version)`` in ``targets``.

    With ``gate``, lint errors raise ``PreflightError`` listing them (the parser would refuse
    the graph); without it they are only reported.
    """
    pre = Preflight(onnx_path=onnx_path)
    if sha_checked:
        pre.checked.append(f"{onnx_path.name}: sha256 matches manifest.json")
    model = check_onnx(onnx_path, pre)
    for major, version in targets:
        report = lint_model(model, load_support_table(major, version))
        pre.lints.append(report)
        pre.checked.append(report.summary())
    failed = [r for r in pre.lints if not r.ok]
    details = "\n".join(r.format() for r in failed)
    if failed and not gate:
        log.warning("lint errors ignored (--ignore-lint); the parser may refuse:\n%s", details)
    if failed and gate:
        raise PreflightError(f"{onnx_path.name} uses what the TensorRT ONNX parser does not "
                             f"support:\n{details}\nFix the export (or pass --ignore-lint to try "
                             "the parser anyway)")
    return pre
