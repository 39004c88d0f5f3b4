"""``python -m export.tensorrt ARTIFACTS --precision fp32|fp16|int8``: build a TensorRT plan.

Exit codes: 0 built; 1 the builder failed after parsing, or the layer precisions contradict the
request; 2 nothing was built because the input is wrong (manifest, profile ranges, lint, the
TensorRT parser refused a node: the message names it), a plugin is missing, or TensorRT is not
installed here (the message says what was checked).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.tensorrt.build import DEFAULT_WORKSPACE_MB, BuildOptions, build_engine
from export.tensorrt.compat import TensorRTUnavailableError, UnsupportedTensorRTError
from export.tensorrt.failures import EngineBuildError, EngineParseError
from export.tensorrt.layers import PrecisionMismatchError
from export.tensorrt.plan import PRECISIONS, PlanConfigError, parse_range
from export.tensorrt.preflight import PreflightError
from plugins import PluginDeclarationError, PluginLoadError
from runtime.manifest import ArtifactError, ManifestError

USAGE_ERRORS = (ManifestError, ArtifactError, PlanConfigError, PreflightError,
                TensorRTUnavailableError, UnsupportedTensorRTError, EngineParseError,
                PluginLoadError, PluginDeclarationError)
BUILD_ERRORS = (PrecisionMismatchError, EngineBuildError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m export.tensorrt", description=__doc__.split("\n")[0])
    parser.add_argument("artifacts", type=Path, help="artifact directory (manifest.json + ONNX)")
    parser.add_argument("--precision", required=True, choices=PRECISIONS,
                        help="fp32 builds model.onnx, fp16 model.fp16.onnx, int8 model.int8.onnx")
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB,
                        help=f"builder workspace limit in MiB (default {DEFAULT_WORKSPACE_MB})")
    parser.add_argument("--timing-cache", type=Path, default=None,
                        help="timing cache file, read and updated (default: in ARTIFACTS per GPU)")
    parser.add_argument("--gpu-name", default=None,
                        help="short GPU name in the plan file name (default: from the device)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    parser.add_argument("--ignore-lint", action="store_true",
                        help="report TensorRT lint errors but try the parser anyway")
    parser.add_argument("--frames", default=None, metavar="MIN,OPT,MAX",
                        help="T range of the optimisation profile (default: the manifest's; "
                             "e.g. 5,5,5 for a runtime that uses T=5 windows)")
    parser.add_argument("--batch", default=None, metavar="MIN,OPT,MAX",
                        help="B range of the profile, also for content_hw (default: manifest's)")
    parser.add_argument("--dla", action="store_true",
                        help="build for the Deep Learning Accelerator (Jetson AGX/NX), core 0")
    parser.add_argument("--allow-gpu-fallback", action="store_true",
                        help="with --dla: run layers DLA cannot run on the GPU")
    args = parser.parse_args(argv)
    if args.workspace_mb <= 0:
        parser.error("--workspace-mb must be positive")
    if args.allow_gpu_fallback and not args.dla:
        parser.error("--allow-gpu-fallback needs --dla")
    try:
        args.frames = parse_range(args.frames, "frames") if args.frames else None
        args.batch = parse_range(args.batch, "batch") if args.batch else None
    except PlanConfigError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[export.tensorrt] %(message)s")
    logging.getLogger("visdeploy").setLevel(logging.INFO)
    options = BuildOptions(precision=args.precision, workspace_mb=args.workspace_mb,
                           timing_cache=args.timing_cache, gpu_name=args.gpu_name,
                           device=args.device, lint_gate=not args.ignore_lint,
                           frames=args.frames, batch=args.batch, use_dla=args.dla,
                           allow_gpu_fallback=args.allow_gpu_fallback)
    try:
        result = build_engine(args.artifacts, options)
    except USAGE_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BUILD_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    entry = result.entry
    print(f"\n{result.plan_path}  ({entry['size_bytes'] / 2**20:.1f} MiB, TensorRT "
          f"{entry['tensorrt']}, compute capability {entry['compute_capability']}, "
          f"{result.seconds:.1f} s)")
    print(f"layer output precisions: {result.layers.describe()}")
    print(f"manifest: {args.artifacts / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
