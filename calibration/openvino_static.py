"""May the written graph run on OpenVINO compiled for one static window shape?

OpenVINO compiles a graph's dynamic batch and frame axes into generic kernels; compiled for the
one window shape the pipeline feeds ([1, T, H, W, 3] frames, [1, 2] content_hw) it chooses
others. Measured with openvino 2026.4.1 (docs/notes/lab-notebook.md, "A CPU with AMX" and
"Static-shape OpenVINO compiles, per artifact"): msgshift's NNCF INT8 graph ran 23-29 % faster
within its parity budget, while VisTR tiny's NNCF INT8 graph compiled static gave wrong outputs
(parity loss 16.9, the same graph compiled dynamic 0.80). So the static form is a property of
one artifact, measured like the graph itself, by the calibration's own budget check.
``check_static_compile`` runs the written graph compiled static:

- with the parity budget, twice: as checked (with the all-candidate score output the check
  adds, comparable with the dynamic figure) and as deployed (the graph alone, which is what the
  runtime compiles; an extra output can change how OpenVINO fuses the graph). Both must hold.
- with the AP budget (``--ap-data``), once: the AP metric streams the videos through the
  runtime with the shape recorded in the staged manifest entry, so full windows run on the
  static compile and a video's short last window on the dynamic one, as deployed. Its AP drop
  against FP32 must hold the same budget.

Only then does calibration record the shapes in the manifest entry (``manifest_fields``), and
``runtime.backends.openvino`` compiles them. The FP32 export gets the same record from
``check_fp32_static``, judged to FP32 rounding against its own dynamic compile: openvino
2026.4.1 compiled IFC's FP32 graphs static into wrong masks (tiny mean error 2.2e-3, r50 0.24,
the dynamic compile equal to onnxruntime to 2e-6) until the export changed the order of one
reshape (models/ifc/model.py), which that check refused. IFC tiny's and VisTR tiny's NNCF INT8
graphs compiled static went wrong in an attention (NaN, AP 0.0; parity loss 16.9) until their
keep-lists kept the attention logits FP32 (``attention_logits`` in models/*/precision.json).
"""

from __future__ import annotations

import onnx

from calibration.checks import MetricCheck, ParityCheck
from calibration.data import Windows
from calibration.parity import ParityBudget

# The FP32 graph compiled static must give the dynamic compile's outputs to FP32 rounding, not
# merely hold the low-precision budget: the export's FP32 tolerances (export/parity.py: scores
# 1e-4, boxes 1e-2 px; masks there 1e-3 max abs, here 1e-4 as the mean). Measured for msgshift
# at 384x640: scores 7.8e-8, masks 4.6e-6 max abs, boxes 2.4e-4 px (lab notebook).
FP32_STATIC_BUDGET = ParityBudget(scores_max_abs=1e-4, mask_mae=1e-4, box_max_abs=1e-2)


def window_shapes(windows: Windows, input_names: list[str]) -> dict[str, list[int]]:
    """Input name -> shape of one batch-1 window of ``windows`` fed to a graph with
    ``input_names`` (``frames`` [1, T, H, W, 3], ``content_hw`` [1, 2] when declared)."""
    feeds = next(windows[:1].feeds(input_names))
    return {name: list(value.shape) for name, value in feeds.items()}


def check_static_compile(model: onnx.ModelProto, check: ParityCheck | MetricCheck,
                         windows: Windows | None = None) -> dict:
    """The record of ``model`` compiled on OpenVINO for the shape of one of ``windows`` (default:
    a parity ``check``'s own): ``{"inputs": {name: shape}, "value": worst loss or metric drop,
    "within_budget": bool, "check": "parity" | the metric's name, "as_deployed": ...}``, plus
    ``"as_checked"`` for parity. ``check`` must measure on OpenVINO."""
    if check.backend != "openvino":
        raise ValueError("a static OpenVINO compile is measured on OpenVINO; the check runs on "
                         f"{check.backend}")
    weights = {i.name for i in model.graph.initializer}
    shapes = window_shapes(windows or check.windows, [i.name for i in model.graph.input
                                                      if i.name not in weights])
    if isinstance(check, MetricCheck):
        deployed = check.measure(model, shapes=shapes)
        return {"inputs": shapes, "value": deployed.value, "within_budget": deployed.within_budget,
                "check": check.name, "as_deployed": deployed.as_dict()}
    as_checked = check.measure(model, shapes=shapes)
    as_deployed = check.measure(model, shapes=shapes, parity_output=False)
    return {"inputs": shapes, "value": max(as_checked.value, as_deployed.value),
            "within_budget": as_checked.within_budget and as_deployed.within_budget,
            "check": "parity", "as_checked": as_checked.as_dict(),
            "as_deployed": as_deployed.as_dict()}


def manifest_record(record: dict | None) -> dict | None:
    """The manifest entry's ``openvino_static`` (what the runtime reads) from a
    ``check_static_compile`` record: the shapes and what held the budget (``parity_loss``, or
    the metric's drop such as ``AP_drop``); None when there is no record or it did not hold."""
    if not record or not record.get("within_budget"):
        return None
    measured = record.get("check", "parity")
    field = "parity_loss" if measured == "parity" else f"{measured}_drop"
    return {"inputs": record["inputs"], field: float(f"{record['value']:.4g}")}


def manifest_fields(record: dict | None) -> dict:
    """Extra fields of the artifact's manifest entry: ``{"openvino_static": ...}`` or {}."""
    static = manifest_record(record)
    return {"openvino_static": static} if static else {}
