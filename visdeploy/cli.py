"""``visdeploy COMMAND [ARGS]``: one command for the whole tool chain.

Each command runs the existing ``python -m`` entry point with the same arguments (those keep
working); ``info`` and ``doctor`` are new. ``visdeploy COMMAND -h`` shows a command's options.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from visdeploy.extras import missing_module_message

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    example: str


COMMANDS = {
    "export": Command("export", "PyTorch -> ONNX, graph checks, parity, manifest",
                      "visdeploy export tevit --out artifacts/tevit"),
    "calibrate": Command("calibration", "FP16 / INT8 ONNX within a parity or AP budget",
                         "visdeploy calibrate artifacts/tevit --precision int8 --data clip.mp4"),
    "build": Command("export.tensorrt", "TensorRT engine (plan) from an artifact",
                     "visdeploy build artifacts/tevit --precision fp16"),
    "stream": Command("runtime.stream", "camera, file, URL or GStreamer -> overlay, JSON, "
                      "events, live view", "visdeploy stream camera0 --view 8080"),
    "serve": Command("runtime.serve", "Triton Inference Server on a model repository "
                     "(python -m export.triton writes one; docs/serving.md)",
                     "visdeploy serve --repository models_repo"),
    "evaluate": Command("evaluation.ytvis", "YouTube-VIS AP of a results file; `evaluate "
                        "report` for the accuracy table, `evaluate tracks` for IDF1",
                        "visdeploy evaluate --gt gt.json --results results.json"),
    "synth": Command("evaluation.synthetic", "synthetic videos with exact YouTube-VIS ground "
                     "truth", "visdeploy synth --preset val --out data/val"),
    "train": Command("training", "train a tiny preset on synthetic videos (CPU)",
                     "visdeploy train tevit --recipe"),
    "bench": Command("", "run a benchmark script of bench/ (no name: list them)",
                     "visdeploy bench runtime_overhead"),
    "info": Command("visdeploy.info", "what an artifact directory holds, checksums verified",
                    "visdeploy info artifacts/tevit"),
    "doctor": Command("visdeploy.doctor", "what this machine has: backends, GPU, TensorRT, "
                      "cameras, codecs, and how to install what is missing", "visdeploy doctor"),
}
EVALUATE_TOOLS = {"ytvis": "evaluation.ytvis", "report": "evaluation.report",
                  "tracks": "evaluation.track_eval"}


def available_commands() -> dict[str, Command]:
    """``COMMANDS`` less ``serve`` where this install has no ``runtime.serve``."""
    have_serve = importlib.util.find_spec("runtime.serve") is not None
    return {name: c for name, c in COMMANDS.items() if name != "serve" or have_serve}


def usage() -> str:
    commands = available_commands()
    width = max(map(len, commands))
    lines = ["usage: visdeploy COMMAND [ARGS]   (visdeploy COMMAND -h for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {c.summary}" for name, c in commands.items()]
    lines += ["", "examples:"] + [f"  {c.example}" for c in commands.values()]
    return "\n".join(lines)


def run_module(module: str, prog: str, args: list[str]) -> int:
    """Run ``python -m module`` with ``args`` in this process; its exit code."""
    sys.argv = [prog, *args]
    try:
        with warnings.catch_warnings():  # the module may be imported already (tests, embedding)
            warnings.filterwarnings("ignore", r".*found in sys\.modules", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except ModuleNotFoundError as err:
        message = missing_module_message(err, prog)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


def bench(args: list[str]) -> int:
    """``visdeploy bench [NAME ARGS]``: list the scripts, or run ``bench/NAME.py``."""
    if not BENCH_DIR.is_dir():
        print("error: the bench/ scripts live in the source tree; run this from a clone of "
              "visdeploy (pip install -e .)", file=sys.stderr)
        return 2
    scripts = {p.stem: p for p in sorted(BENCH_DIR.glob("*.py"))}
    if not args or args[0] in ("-h", "--help"):
        print("usage: visdeploy bench NAME [ARGS]   (visdeploy bench NAME -h)\n\nscripts:")
        for name, path in scripts.items():
            print(f"  {name:<22} {_first_line(path)}")
        return 0
    name = args[0].removesuffix(".py")
    if name not in scripts:
        print(f"error: no benchmark {args[0]!r}; have {', '.join(scripts)}", file=sys.stderr)
        return 2
    sys.argv = [f"visdeploy bench {name}", *args[1:]]
    sys.path.insert(0, str(BENCH_DIR.parent))
    try:
        runpy.run_path(str(scripts[name]), run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def _first_line(path: Path) -> str:
    """The first line of a script's docstring (without importing it)."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"visdeploy {version('visdeploy')}")
        except PackageNotFoundError:
            print("visdeploy (not installed: running from a source tree)")
        return 0
    name, args = argv[0], argv[1:]
    commands = available_commands()
    if name not in commands:
        hint = (" (runtime.serve is not part of this version)" if name == "serve" else "")
        print(f"error: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    if name == "bench":
        return bench(args)
    module = commands[name].module
    if name == "evaluate" and args and args[0] in EVALUATE_TOOLS:
        module, args = EVALUATE_TOOLS[args[0]], args[1:]
    return run_module(module, f"visdeploy {name}", args)


if __name__ == "__main__":
    sys.exit(main())
