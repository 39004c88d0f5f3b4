"""``python -m training MODEL [--preset tiny] [--iterations N] [--minutes M] [--out PATH]``;
``python -m training MODEL --recipe`` repeats the stages that produced the committed checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from training.loop import LOSSES, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--recipe" in argv:
        from training import backbone_pretrain
        from training.recipes import EXPERIMENTS, PRETRAIN, stage_commands

        argv.remove("--recipe")
        recipes = None
        if "--experiment" in argv:
            argv.remove("--experiment")
            recipes = EXPERIMENTS
        model = argv[0] if argv else ""
        out = argv[argv.index("--out") + 1] if "--out" in argv else f"checkpoints/{model}_tiny.pth"
        for command in stage_commands(model, out, recipes):
            if command[0] == PRETRAIN:
                print("[train] python -m training.backbone_pretrain " + " ".join(command[1:]), file=sys.stderr)
                backbone_pretrain.main(command[1:])
            else:
                print("[train] python -m training " + " ".join(command), file=sys.stderr)
                main(command)
        return 0
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("model", choices=sorted(LOSSES))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--out", default=None, help="checkpoint path (default checkpoints/<model>_<preset>.pth)")
    parser.add_argument("--recipe", action="store_true",
                        help="repeat the recorded stages that produced checkpoints/<model>_tiny.pth "
                             "(training/recipes.py); only --out may be given with it")
    parser.add_argument("--experiment", action="store_true",
                        help="with --recipe: repeat the model's kept experiment instead "
                             "(training/recipes.py EXPERIMENTS; not the committed checkpoint)")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("model", "preset"):
            continue
        kind = type(getattr(defaults, field.name)) if getattr(defaults, field.name) is not None else str
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=getattr(defaults, field.name))
    args = parser.parse_args(argv)
    if args.experiment:
        parser.error("--experiment selects a kept recipe: give it with --recipe")
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    out = args.out or f"checkpoints/{cfg.model}_{cfg.preset}.pth"
    curve = train(cfg, out)
    print(json.dumps(curve[-1]))
    print(f"checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
