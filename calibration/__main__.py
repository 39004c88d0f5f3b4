"""``python -m calibration ARTIFACTS --precision fp16|int8 --data SOURCE [options]``.

Writes ``model.<precision>.onnx`` into ARTIFACTS, adds it to ``manifest.json`` and records the
sensitivity table and final deltas in ``calibration_report.json``. SOURCE: a video file, an image
folder or glob, a dataset folder (``python -m evaluation.synthetic --out DIR``), or
``synthetic[:PRESET[:VIDEOS]]`` (rendered in memory). Budget: with ``--ap-data DIR`` the
YouTube-VIS AP drop vs FP32 must stay <= ``--budget-ap`` (default 0.5), measured by streaming
DIR through the runtime with the manifest's window and ``--ap-tracker`` (``ifc-official`` for IFC
deployed near-online); otherwise output parity vs FP32 must stay within ``--scores-tol``,
``--mask-tol`` and ``--box-tol``.

``--precision fp32 --check-backend openvino`` converts nothing: it measures ``model.onnx``
compiled by OpenVINO for the window's static shape against its dynamic compile (to FP32
rounding) and records the shape in the manifest when it holds, so ``--backend openvino`` runs the
FP32 graph compiled static (docs/runtime.md). fp16/int8 with ``--check-backend openvino`` do the
same for the graph they write, within their budget.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from calibration.errors import CalibrationError
from calibration.int8 import ENGINES, HIGH_PRECISIONS, METHODS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from calibration.calibrate import PRECISIONS, RANK_BY
    from calibration.parity import CHECK_BACKENDS
    from runtime.stream_state import TRACKERS

    p = argparse.ArgumentParser(prog="python -m calibration", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", help="artifact directory with manifest.json and model.onnx")
    p.add_argument("--precision", required=True, choices=PRECISIONS)
    p.add_argument("--data", help="calibration SOURCE (required; never random data)")
    p.add_argument("--method", default="max", choices=METHODS, help="INT8 range method")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="INT8 quantizer: ModelOpt (max/entropy) or onnxruntime (all methods)")
    p.add_argument("--high-precision", default="fp32", choices=HIGH_PRECISIONS,
                   help="INT8: precision of the layers left unquantized: fp32 (onnxruntime CPU) or "
                        "fp16 (TensorRT targets; ModelOpt engine only)")
    p.add_argument("--windows", type=int, default=16, help="calibration windows")
    p.add_argument("--eval-windows", type=int, default=4, help="held-out windows for parity")
    p.add_argument("--reference-windows", type=int, default=2,
                   help="windows AutoCast uses for its FP16 range rule")
    p.add_argument("--reference-frames", type=int, default=2,
                   help="frames of each AutoCast reference window (memory; dynamic T only)")
    p.add_argument("--window-length", type=int, help="frames per window (default: manifest)")
    p.add_argument("--budget-ap", type=float, default=0.5, help="max AP drop with --ap-data")
    p.add_argument("--ap-data", help="dataset folder to measure YouTube-VIS AP on")
    p.add_argument("--ap-videos", type=int, help="score only the first N videos of --ap-data")
    p.add_argument("--ap-tracker", default="default", choices=TRACKERS,
                   help="the runtime tracker the AP is measured with (ifc-official: IFC's "
                        "near-online linking, as deployed with --tracker ifc-official)")
    p.add_argument("--check-backend", default="onnxruntime", choices=CHECK_BACKENDS,
                   help="CPU runtime the budget (parity or AP) is measured on: the one you deploy "
                        "with (INT8 kernels differ: openvino for --backend openvino or auto on a "
                        "CPU with OpenVINO)")
    p.add_argument("--no-openvino-static", action="store_true",
                   help="with --check-backend openvino: do not check (and record) the graph "
                        "compiled for the calibration window's static shape; the runtime then "
                        "always compiles it with dynamic shapes")
    p.add_argument("--scores-tol", type=float, default=0.02, help="parity: max score error")
    p.add_argument("--mask-tol", type=float, default=0.02, help="parity: mean mask error")
    p.add_argument("--box-tol", type=float, default=4.0, help="parity: max box error (px)")
    p.add_argument("--keep-list", help="precision keep-list (default models/<model>/precision.json)")
    p.add_argument("--block-depth", type=int, help="module-path depth of a sensitivity block")
    p.add_argument("--rank-by", default="parity", choices=RANK_BY,
                   help="INT8: order blocks for the fallback by held-out parity (fast; the AP "
                        "budget is then spent only on fallback steps) or by the budget's check")
    p.add_argument("--sensitivity", action="store_true",
                   help="FP16: measure every keep-list group (one conversion each; slow)")
    p.add_argument("--no-fallback", action="store_true",
                   help="INT8: skip per-block sensitivity and fallback")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info logs")
    return p.parse_args(argv)


def options_from(args: argparse.Namespace):
    from calibration.calibrate import CalibrationOptions
    from calibration.parity import ParityBudget

    return CalibrationOptions(
        method=args.method, engine=args.engine, high_precision=args.high_precision,
        windows=args.windows,
        eval_windows=args.eval_windows, reference_windows=args.reference_windows,
        reference_frames=args.reference_frames,
        window_length=args.window_length, budget_ap=args.budget_ap, ap_data=args.ap_data,
        ap_videos=args.ap_videos, ap_tracker=args.ap_tracker, keep_list=args.keep_list,
        block_depth=args.block_depth,
        rank_by=args.rank_by, check_backend=args.check_backend,
        openvino_static=not args.no_openvino_static,
        parity=ParityBudget(scores_max_abs=args.scores_tol, mask_mae=args.mask_tol,
                            box_max_abs=args.box_tol),
        sensitivity=args.sensitivity, fallback=not args.no_fallback, threads=args.threads,
        progress=not args.quiet)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[calibration] %(message)s")
    logging.getLogger("visdeploy").setLevel(logging.WARNING if args.quiet else logging.INFO)
    logging.getLogger("modelopt").setLevel(logging.ERROR)  # per-node INFO lines otherwise
    from calibration.calibrate import calibrate_artifacts
    from runtime.errors import ArtifactError, ManifestError

    try:
        section = calibrate_artifacts(args.artifacts, precision=args.precision, data=args.data,
                                      options=options_from(args))
    except (CalibrationError, ManifestError, ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    final = section["final"]
    if args.precision == "fp32":
        if "skipped" in final:
            print(f"model.onnx: static-shape compile not measured: {final['skipped']}")
        else:
            print(f"model.onnx compiled by OpenVINO for {final['inputs']}: "
                  f"{'within' if final['within_budget'] else 'OVER'} the FP32 budget, value "
                  f"{final['value']:.4g}; "
                  f"{'recorded in' if final['within_budget'] else 'not recorded in'} the manifest")
        return 0
    print(f"model.{args.precision}.onnx: {'within' if final['within_budget'] else 'OVER'} "
          f"budget ({section['check']['kind']}), value {final['value']:.4g}")
    print(json.dumps({k: v for k, v in final.items() if k != "value"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
