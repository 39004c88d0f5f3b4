"""``python -m training MODEL [--preset tiny] [--iterations N] [--minutes M] [--out PATH]``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from training.loop import LOSSES, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("model", choices=sorted(LOSSES))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--out", default=None, help="checkpoint path (default checkpoints/<model>_<preset>.pth)")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("model", "preset"):
            continue
        kind = type(getattr(defaults, field.name)) if getattr(defaults, field.name) is not None else str
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=getattr(defaults, field.name))
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    out = args.out or f"checkpoints/{cfg.model}_{cfg.preset}.pth"
    curve = train(cfg, out)
    print(json.dumps(curve[-1]))
    print(f"checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
