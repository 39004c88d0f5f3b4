"""INT8 explicit Q/DQ from calibration windows: ModelOpt ONNX PTQ, onnxruntime as the fallback.

Both engines calibrate on CPU with onnxruntime and write symmetric INT8 Q/DQ pairs (the form
TensorRT 10 and 11 consume). ModelOpt places Q/DQ TensorRT-style (inputs of Conv/Gemm/MatMul,
weights as ``W -> Q -> DQ``) and offers ``max`` and ``entropy``; ``percentile`` is only offered
by onnxruntime's ``quantize_static``, so that method always uses the fallback engine.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from calibration.data import Windows
from calibration.errors import CalibrationError, QuantizerUnavailableError
from calibration.graph import exact_name_regex

log = logging.getLogger("visdeploy.calibration")
METHODS = ("max", "entropy", "percentile")
ENGINES = ("auto", "modelopt", "onnxruntime")
MODELOPT_METHODS = ("max", "entropy")


@dataclass(frozen=True)
class Int8Result:
    """What a quantizer wrote: ``engine`` used, ``method``, windows used and time taken."""

    path: Path
    engine: str
    method: str
    windows: int
    seconds: float

    def as_dict(self) -> dict:
        return {"file": self.path.name, "engine": self.engine, "method": self.method,
                "calibration_windows": self.windows, "seconds": round(self.seconds, 1)}


def modelopt_available() -> bool:
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(engine: str, method: str) -> str:
    """The engine that will run ``method`` (``auto``: ModelOpt when it can, else onnxruntime)."""
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    if engine not in ENGINES:
        raise CalibrationError(f"unknown INT8 engine {engine!r}; choose {', '.join(ENGINES)}")
    if engine == "modelopt" and method not in MODELOPT_METHODS:
        raise CalibrationError(f"ModelOpt 0.47 INT8 calibrates with {MODELOPT_METHODS} only; use "
                               f"--engine onnxruntime (or auto) for {method!r}")
    if engine == "modelopt" and not modelopt_available():
        raise QuantizerUnavailableError("ModelOpt is not installed: pip install -e '.[quant]', "
                                        "or use --engine onnxruntime")
    if engine == "auto":
        return "modelopt" if method in MODELOPT_METHODS and modelopt_available() else "onnxruntime"
    return engine


@contextmanager
def restored_ort_quantization():
    """Undo ModelOpt's process-wide patches of onnxruntime.quantization when the block exits.

    ModelOpt 0.47 replaces methods of onnxruntime's calibrators and quantizers (and
    ``calibrate.create_calibrator``) for good; a later plain ``quantize_static`` in the same
    process then collects nothing ("Histogram has not been collected"). The attributes of the
    touched classes and module are saved here and put back afterwards.
    """
    from onnxruntime.quantization import base_quantizer, calibrate, qdq_quantizer

    owners = [calibrate, calibrate.CalibraterBase, calibrate.MinMaxCalibrater,
              calibrate.HistogramCalibrater, calibrate.HistogramCollector,
              qdq_quantizer.QDQQuantizer, base_quantizer.BaseQuantizer]
    saved = [(owner, dict(vars(owner))) for owner in owners]
    try:
        yield
    finally:
        for owner, attrs in saved:
            for name in set(vars(owner)) - set(attrs):
                if not name.startswith("__"):
                    delattr(owner, name)
            for name, value in attrs.items():
                if not name.startswith("__") and vars(owner).get(name) is not value:
                    setattr(owner, name, value)


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]


def _quantize_modelopt(src: Path, dst: Path, windows: Windows, *, method: str,
                       op_types: list[str], exclude: set[str]) -> None:
    from modelopt.onnx.quantization import quantize

    data = windows.stacked(_graph_inputs(src))  # split along N into batch-1 steps
    shapes = ",".join(f"{name}:" + "x".join(["1", *map(str, value.shape[1:])])
                      for name, value in data.items())
    with restored_ort_quantization():
        quantize(onnx_path=str(src), quantize_mode="int8", calibration_data=data,
                 calibration_method=method, calibration_shapes=shapes,
                 calibration_eps=["cpu"], high_precision_dtype="fp32",
                 op_types_to_quantize=op_types,
                 nodes_to_exclude=[exact_name_regex(exclude)] if exclude else [],
                 output_path=str(dst), log_level="WARNING")


def _window_reader(windows: Windows, input_names: list[str]):
    """onnxruntime ``CalibrationDataReader`` over the windows, one batch-1 feed per step."""
    from onnxruntime.quantization import CalibrationDataReader

    class WindowReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = windows.feeds(input_names)

        def get_next(self):
            return next(self._it, None)

    return WindowReader()


def _quantize_onnxruntime(src: Path, dst: Path, windows: Windows, *, method: str,
                          nodes: list[str], op_types: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _window_reader(windows, _graph_inputs(src))
    calib = {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix="visdeploy_int8_") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Symbolic shape inference fails on this graph (toolchain.md §5); skip optimisation so
        # node names (used by keep-lists and sensitivity) survive.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True, skip_optimization=True)
        quantize_static(str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True, calibrate_method=calib, nodes_to_quantize=nodes,
                        op_types_to_quantize=op_types,  # also limits the calibrated tensors
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})


def quantize_int8(src: str | Path, dst: str | Path, windows: Windows, *, method: str = "max",
                  engine: str = "auto", candidates: set[str], op_types: tuple[str, ...],
                  exclude: set[str]) -> Int8Result:
    """Calibrate on ``windows`` (``calibration.data.Windows``) and write explicit Q/DQ INT8 to ``dst``.

    Args:
        candidates: nodes that may be quantized (op types in ``op_types`` and not excluded).
        op_types: quantizable op types (ModelOpt's ``op_types_to_quantize``).
        exclude: nodes that must stay high precision (keep-list; ModelOpt ``nodes_to_exclude``).
    """
    engine = choose_engine(engine, method)
    if len(windows) == 0:
        raise CalibrationError("no calibration windows given; collect them with "
                               "calibration.data.collect_windows")
    dst = Path(dst)
    start = time.perf_counter()
    log.info("Calibrating INT8 (%s, %s) on %d windows ...", engine, method, len(windows))
    with tempfile.TemporaryDirectory(prefix="visdeploy_int8_src_") as tmp:
        # Quantizers write beside their input (ModelOpt 0.47 rewrote a source model.onnx in
        # place here); give them a private copy so the artifact keeps its manifest sha256.
        work = Path(tmp) / "model.onnx"
        shutil.copyfile(src, work)
        if engine == "modelopt":
            _quantize_modelopt(work, dst, windows, method=method, op_types=list(op_types),
                               exclude=exclude)
        else:
            _quantize_onnxruntime(work, dst, windows, method=method,
                                  nodes=sorted(candidates - exclude), op_types=list(op_types))
    seconds = time.perf_counter() - start
    log.info("INT8 calibration finished in %.1f s", seconds)
    return Int8Result(dst, engine, method, len(windows), seconds)
