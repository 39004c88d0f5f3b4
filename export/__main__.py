"""``python -m export MODEL --preset P [--checkpoint C] --out DIR``: ONNX + checks + manifest."""

from __future__ import annotations

import argparse
import logging
import sys

from visdeploy.extras import missing_module_message

try:  # a runtime-only install has no torch/onnx: say which extra to install, not a traceback
    from export.graph_checks import format_histogram
    from export.onnx_export import DEFAULT_OPSET, SUPPORTED_OPSETS, ExportError
    from export.parity import ParityError
    from export.two_stage import TwoStageUnsupportedError
    from models.errors import CheckpointError, UnknownModelError
except ModuleNotFoundError as _missing:
    _message = missing_module_message(_missing, "python -m export")
    if _message is None or __name__ != "__main__":
        raise
    print(f"error: {_message}", file=sys.stderr)
    sys.exit(2)


def input_size(text: str) -> tuple[int, int]:
    """``HxW`` (multiples of 32) -> (H, W); argparse reports a ValueError as a usage error."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected HxW such as 384x512, got {text!r}")
    h, w = int(parts[0]), int(parts[1])
    if min(h, w) < 32 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(
            f"{text}: height and width must be multiples of 32 (the models' largest stride); for "
            f"a 4:3 camera use 384x512, for 16:9 384x640 (or 360 content in a 384x640 input)")
    return h, w


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("model", help="model name (tevit, ifc, vistr)")
    parser.add_argument("--preset", default="tiny", help="size preset (default: tiny)")
    parser.add_argument("--checkpoint", default=None, help="weights (.pth); default: checkpoints/<model>_<preset>.pth if present")
    parser.add_argument("--trust-checkpoint", action="store_true", help="allow checkpoints that need full unpickling")
    parser.add_argument("--out", default=None, help="artifact directory (default: artifacts/<model>)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, choices=SUPPORTED_OPSETS)
    parser.add_argument("--input-size", type=input_size, default=None, metavar="HxW",
                        help="model input (multiples of 32; default: the preset's). Match your "
                             "camera's aspect ratio (e.g. 384x512 for 4:3) so frames need no "
                             "letterbox padding: the exact official computation")
    parser.add_argument("--roi-align", choices=["onnx", "onnx_gathered", "grid_sample"],
                        default=None,
                        help="TeViT's RoIAlign in the graph: onnx (the RoiAlign op on every FPN "
                             "level, fixed shapes, default: TensorRT's ROIAlign_TRT plugin), "
                             "onnx_gathered (the op on each RoI's own level only: the fastest on "
                             "CPU runtimes; data-dependent shapes, not checked with TensorRT "
                             "engines) or grid_sample (pure tensor ops, for runtimes without "
                             "RoiAlign)")
    parser.add_argument("--deform-conv", choices=["grid_sample", "onnx"], default=None,
                        help="VisTR's deformable conv: grid_sample (GridSample + MatMul, opset "
                             "18, default) or onnx (the DeformConv op, opset 19; TensorRT >= 10.1 "
                             "builds it with its ModulatedDeformConv2d plugin)")
    stages = parser.add_mutually_exclusive_group()
    stages.add_argument("--two-stage", dest="two_stage", action="store_true", default=None,
                        help="also export frame_stage.onnx + clip_stage.onnx (default for models "
                             "with a per-frame stage: IFC)")
    stages.add_argument("--no-two-stage", dest="two_stage", action="store_false",
                        help="export only the one-graph model.onnx")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[export] %(message)s")
    logging.getLogger("visdeploy").setLevel(logging.INFO)
    from export.artifacts import export_artifacts  # heavy: torch, onnx

    out = args.out or f"artifacts/{args.model}"
    try:
        result = export_artifacts(args.model, args.preset, out, checkpoint=args.checkpoint,
                                  trust_checkpoint=args.trust_checkpoint, opset=args.opset,
                                  two_stage=args.two_stage, roi_align=args.roi_align,
                                  input_hw=args.input_size, deform_conv=args.deform_conv)
    except (UnknownModelError, CheckpointError, ExportError, ParityError, TwoStageUnsupportedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    size_mb = result.onnx_path.stat().st_size / 2**20
    print(f"\n{result.onnx_path}  ({size_mb:.1f} MiB, opset {result.graph['opset']}, "
          f"{sum(result.graph['ops'].values())} nodes)")
    print("op histogram:\n" + format_histogram(result.graph["ops"]))
    worst = ", ".join(f"{k} {v:.2g}" for k, v in result.parity.max_abs.items())
    print(f"parity vs PyTorch (max abs over {len(result.parity.cases)} cases): {worst}")
    if result.two_stage_parity is not None:
        worst = ", ".join(f"{k} {v:.2g}" for k, v in result.two_stage_parity.max_abs.items())
        print(f"two-stage ({result.two_stage.frame_path.name} + {result.two_stage.clip_path.name}) "
              f"parity vs PyTorch: {worst}")
    print(f"manifest: {result.directory / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
