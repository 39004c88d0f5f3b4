"""INT8 the way OpenVINO prefers it: NNCF post-training quantization of the ONNX graph.

ModelOpt (calibration.int8) places Q/DQ TensorRT-style. NNCF's ``quantize`` with
``target_device=CPU`` places them for OpenVINO's CPU plugin (its hardware config: which inputs of
which ops, per-channel weights, asymmetric activations where the CPU kernels take them, and
``model_type=TRANSFORMER`` rules that keep attention-sensitive spots such as softmax inputs and
layer norms out). Its graph rewrites (SmoothQuant, bias correction) are off by default
(``graph_rewrites``), so the budget's block fallback can apply to NNCF's graph as to ModelOpt's.
The result is still a plain ONNX Q/DQ graph: ``model.int8.onnx`` for the runtime's OpenVINO and
onnxruntime backends alike. The keep-list's INT8 exclusions (models/<name>/precision.json) become
NNCF's ignored scope, so the same accuracy-critical nodes (box geometry, RoI sampling) stay FP32.

NNCF is optional: ``pip install nncf`` (it pulls scikit-learn; nothing else of ours changes).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from calibration.errors import CalibrationError, QuantizerUnavailableError
from calibration.int8 import Int8Result

log = logging.getLogger("visdeploy.calibration")
PRESETS = ("performance", "mixed")  # NNCF: symmetric activations / asymmetric activations
# NNCF's overflow fix: weights of Conv/MatMul quantized to 7 bits (all of them, only the first
# layer's: NNCF's own default, or none), OpenVINO's workaround for INT8 dot products saturating
# on CPUs without VNNI (openvino tools/pot/docs/SaturationIssue.md). Our name -> (the
# nncf.OverflowFix member, the suffix of the method a graph records: ``nncf_method``).
OVERFLOW_FIXES = {"enable": ("ENABLE", "-7bit-weights"), "first_layer": ("FIRST_LAYER", ""),
                  "disable": ("DISABLE", "-8bit-weights")}


def import_nncf():
    try:
        import nncf
    except ImportError as err:
        raise QuantizerUnavailableError(
            f"the NNCF INT8 engine needs nncf, which is not installed ({err}): pip install nncf; "
            "or use --engine modelopt") from err
    return nncf


def _advanced(nncf, graph_rewrites: bool, overflow_fix: str):
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    fix = getattr(nncf.OverflowFix, OVERFLOW_FIXES[overflow_fix][0])
    if graph_rewrites:
        return nncf.AdvancedQuantizationParameters(overflow_fix=fix)
    return nncf.AdvancedQuantizationParameters(
        overflow_fix=fix, disable_bias_correction=True, disable_channel_alignment=True,
        smooth_quant_alphas=AdvancedSmoothQuantParameters(convolution=-1, matmul=-1))


def only_qdq_added(fp32, quantized) -> bool:
    """Whether ``quantized`` (ModelProto) is ``fp32`` plus Q/DQ nodes only (same other nodes)."""
    from calibration.qdq import QDQ_OPS

    names = lambda m: {n.name for n in m.graph.node if n.op_type not in QDQ_OPS}  # noqa: E731
    return names(fp32) == names(quantized)


def quantize_nncf(src: str | Path, dst: str | Path, feeds: list[dict[str, np.ndarray]], *,
                  exclude: set[str] = frozenset(), preset: str = "performance",
                  transformer: bool = True, graph_rewrites: bool = False,
                  overflow_fix: str = "enable") -> Int8Result:
    """Calibrate ``src`` (an FP32 ONNX file) on ``feeds`` (one engine feed dict per window, e.g.
    ``runtime.backends.base.engine_feeds``) and write NNCF's INT8 Q/DQ graph to ``dst``.

    Args:
        exclude: node names that stay FP32 (the keep-list's INT8 exclusions).
        preset: ``performance`` (symmetric activations and weights) or ``mixed``
            (asymmetric activations; NNCF's advice for transformers, but NNCF 3.4 stops on the
            tiny TeViT with "QConfigs for unified scale group ... are not equal").
        transformer: NNCF's ``ModelType.TRANSFORMER`` placement rules.
        graph_rewrites: NNCF's SmoothQuant (for transformers: scales moved from activations
            into MatMul weights, with new Mul nodes) and fast bias correction (rewritten
            biases). Off by default: the graph then differs from the FP32 one only by Q/DQ
            pairs, which the budget's fallback (calibration.sensitivity) needs to return a
            block to FP32 exactly. With them on, a returned block kept SmoothQuant's Muls and
            lost its rescaled weights: the tiny IFC's outputs broke (boxes off by 320 px) with
            no Q/DQ left at all.
        overflow_fix: ``enable`` (default: every Conv/MatMul weight in 7 bits),
            ``first_layer`` (NNCF's default) or ``disable``. Measured on the trained tiny
            TeViT (30 val videos, FP32 AP 29.3, no block back to FP32): ``first_layer`` scored
            28.4 with AMX kernels, 25.1 with AVX-512 VNNI and 23.3 with AVX2; ``enable`` 31.1,
            27.5 and 27.5 (docs/notes/lab-notebook.md, "INT8 results depend on the CPU's
            instruction set"): better with every kernel family, most where products saturate.
    """
    import onnx

    nncf = import_nncf()
    if not feeds:
        raise CalibrationError("no calibration windows given for NNCF")
    if preset not in PRESETS:
        raise CalibrationError(f"NNCF preset must be one of {PRESETS}, got {preset!r}")
    if overflow_fix not in OVERFLOW_FIXES:
        raise CalibrationError(f"NNCF overflow fix must be one of {tuple(OVERFLOW_FIXES)}, "
                               f"got {overflow_fix!r}")
    dst = Path(dst)
    start = time.perf_counter()
    log.info("Calibrating INT8 with NNCF (%s, overflow fix %s) on %d windows ...", preset,
             overflow_fix, len(feeds))
    model = onnx.load(str(src))
    quantized = nncf.quantize(
        model, nncf.Dataset(feeds), preset=getattr(nncf.QuantizationPreset, preset.upper()),
        target_device=nncf.TargetDevice.CPU, subset_size=len(feeds),
        model_type=nncf.ModelType.TRANSFORMER if transformer else None,
        ignored_scope=nncf.IgnoredScope(names=sorted(exclude), validate=False),
        advanced_parameters=_advanced(nncf, graph_rewrites, overflow_fix))
    onnx.save(quantized, str(dst))
    seconds = time.perf_counter() - start
    log.info("NNCF INT8 finished in %.1f s", seconds)
    return Int8Result(dst, "nncf", nncf_method(preset, overflow_fix), len(feeds), seconds)


def nncf_method(preset: str = "performance", overflow_fix: str = "enable") -> str:
    """The ``method`` an NNCF graph records: ``nncf-performance-7bit-weights`` with the overflow
    fix on every layer; ``nncf-performance`` with NNCF's own default (the first layer's
    weights in 7 bits), as graphs made before the fix was a choice record."""
    return f"nncf-{preset}{OVERFLOW_FIXES[overflow_fix][1]}"
