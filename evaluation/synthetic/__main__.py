"""``python -m evaluation.synthetic``: write a synthetic VIS dataset (MP4 + YouTube-VIS GT)."""

from __future__ import annotations

import argparse
import sys
import time

from evaluation.errors import EvaluationError
from evaluation.synthetic.dataset import PRESETS, generate_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.synthetic",
        description="Synthetic VIS videos (moving textured shapes with scripted enter/leave, "
                    "vanish, crossing, growth and occlusion events) with exact YouTube-VIS GT.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="size defaults: tiny (tests), val (30x36 frames, 360x640), train")
    parser.add_argument("--videos", type=int, help="number of videos (overrides the preset)")
    parser.add_argument("--frames", type=int, help="frames per video (overrides the preset)")
    parser.add_argument("--height", type=int, help="frame height (even; overrides the preset)")
    parser.add_argument("--width", type=int, help="frame width (even; overrides the preset)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--png", action="store_true", help="also write lossless PNG frames")
    parser.add_argument("--compressed-rle", action="store_true",
                        help="write GT masks as compressed RLE (default: uncompressed, as YTVIS)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"[synthetic] generating preset {args.preset} (seed {args.seed}) into {args.out}")
    try:
        paths = generate_dataset(args.out, preset=args.preset, seed=args.seed, videos=args.videos,
                                 frames=args.frames, height=args.height, width=args.width,
                                 png=args.png, compressed_rle=args.compressed_rle, progress=True)
    except EvaluationError as err:
        print(f"[synthetic] error: {err}", file=sys.stderr)
        return 2
    print(f"[synthetic] done in {time.perf_counter() - start:.1f} s: {paths.annotations}, "
          f"{len(paths.video_files)} MP4 files in {paths.videos}"
          + (f", PNG frames in {paths.frames}" if paths.frames else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
