"""The TensorRT lint on real FP16 and INT8 graphs of every model (issue 21 item 1), made with the
project's own calibration (``calibrate_artifacts``) on the tiny presets.

TeViT's default (RoiAlign) form is linted where its graphs are made anyway
(tests/calibration/test_calib_tevit.py); here: TeViT's GridSample form, IFC and VisTR. Each is
calibrated once per session on one synthetic window (T=2; VisTR's fixed T), without the
sensitivity fallback: the graphs have the structure a full calibration writes (Q/DQ pairs with
INT8 zero points, FP16 casts), which is what the lint reads. The three INT8 paths are covered:
ModelOpt with FP32 high precision (TeViT), onnxruntime's quantizer (IFC: float biases) and
ModelOpt with FP16 high precision for TensorRT targets (VisTR). Measured cost on 2 shared CPU
cores: about 2 minutes, most of it AutoCast and ModelOpt on TeViT's 3500-node GridSample graph.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration.calibrate import CalibrationOptions, calibrate_artifacts
from export.trt_support import lint_onnx, load_support_table
from runtime.manifest import load_manifest

CASES = {  # name -> (export options, INT8 options)
    "tevit_grid_sample": ({"roi_align": "grid_sample"}, {"engine": "modelopt"}),
    "ifc": ({"two_stage": False}, {"engine": "onnxruntime"}),
    "vistr": ({}, {"engine": "modelopt", "high_precision": "fp16"}),
}


@pytest.fixture(scope="session")
def low_precision_graphs(tiny_exports, tmp_path_factory):
    """``get(case)``: artifact directory with model.fp16.onnx and model.int8.onnx of ``case``."""
    made = {}

    def get(case: str):
        if case not in made:
            export_options, int8_options = CASES[case]
            export = tiny_exports(case.split("_")[0], **export_options)
            dest = tmp_path_factory.mktemp(f"lp_{case}") / case
            shutil.copytree(export.directory, dest)
            fixed = load_manifest(dest).fixed_frames
            base = {"windows": 1, "eval_windows": 1, "reference_windows": 1,
                    "window_length": None if fixed else 2, "fallback": False, "progress": False}
            calibrate_artifacts(dest, precision="fp16", data="synthetic:tiny:1",
                                options=CalibrationOptions(**base))
            calibrate_artifacts(dest, precision="int8", data="synthetic:tiny:1",
                                options=CalibrationOptions(**base, **int8_options))
            made[case] = dest
        return made[case]

    return get


def _int8_zero_points(model: onnx.ModelProto) -> int:
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = {n.input[2] for n in model.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2}
    return sum(1 for name in zero_points
               if name in inits and numpy_helper.to_array(inits[name]).dtype == np.int8)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_real_graphs_pass_the_tensorrt_lint(low_precision_graphs, case, precision):
    """Every precision's graph: lint-clean for 10.3 and 11.4, and ``frames`` feeds only Casts
    (issue 21 item 2: the exporter's Shape nodes read the Cast)."""
    name = "model.onnx" if precision == "fp32" else f"model.{precision}.onnx"
    path = low_precision_graphs(case) / name
    model = onnx.load(str(path))
    if precision == "int8":  # the zero points that the lint used to refuse, one error each
        assert _int8_zero_points(model) > 10
    assert [n.op_type for n in model.graph.node if "frames" in n.input] in (["Cast"], ["Cast"] * 2)
    for major in (10, 11):
        report = lint_onnx(path, load_support_table(major))
        assert report.ok, report.format()


def test_int8_engines_and_high_precision_are_recorded(low_precision_graphs):
    """onnxruntime's graph keeps biases float (no INT32 Q/DQ); VisTR's FP16 high precision is
    in the graph and in the manifest."""
    ifc = onnx.load(str(low_precision_graphs("ifc") / "model.int8.onnx"))
    inits = {i.name: i.data_type for i in ifc.graph.initializer}
    dq_data = [n.input[0] for n in ifc.graph.node if n.op_type == "DequantizeLinear"]
    assert dq_data and onnx.TensorProto.INT32 not in {inits.get(n) for n in dq_data}
    directory = low_precision_graphs("vistr")
    entry = load_manifest(directory).artifact("onnx", "int8")
    assert entry["calibration"]["high_precision"] == "fp16"
    assert entry["calibration"]["engine"] == "modelopt"
    vistr = onnx.shape_inference.infer_shapes(onnx.load(str(directory / "model.int8.onnx")))
    types = {v.type.tensor_type.elem_type for v in vistr.graph.value_info}
    assert onnx.TensorProto.FLOAT16 in types
