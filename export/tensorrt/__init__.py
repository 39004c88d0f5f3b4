"""TensorRT engines for TensorRT 10 and 11, built from the ONNX file that holds the precision.

``python -m export.tensorrt ARTIFACTS --precision fp32|fp16|int8`` builds
``model.<precision>.<gpu>.trt.plan`` from ``model.onnx`` / ``model.fp16.onnx`` /
``model.int8.onnx`` and records it in ``manifest.json``. Without TensorRT the CPU preflight
(ONNX validity, sha256, operator-support lint for 10.x and 11.x) still runs and the build stops
with a message saying what passed and how to build elsewhere. TensorRT and Polygraphy are
imported only inside the functions that need them.
"""

from export.tensorrt.build import BuildOptions, BuildResult, build_engine, build_loaders
from export.tensorrt.compat import (
    TensorRTUnavailableError,
    TrtFlavor,
    UnsupportedTensorRTError,
    flavor_for,
)
from export.tensorrt.failures import EngineBuildError, EngineParseError
from export.tensorrt.layers import PrecisionMismatchError, check_precision, parse_layer_information
from export.tensorrt.plan import (
    PlanConfigError,
    gpu_slug,
    parse_range,
    plan_file_name,
    profile_shapes,
)
from export.tensorrt.preflight import PreflightError, run_preflight

__all__ = [
    "BuildOptions", "BuildResult", "EngineBuildError", "EngineParseError", "PlanConfigError",
    "PrecisionMismatchError", "PreflightError",
    "TensorRTUnavailableError", "TrtFlavor", "UnsupportedTensorRTError", "build_engine",
    "build_loaders", "check_precision", "flavor_for", "gpu_slug", "parse_layer_information",
    "parse_range", "plan_file_name", "profile_shapes", "run_preflight",
]
