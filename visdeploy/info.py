"""``visdeploy info ARTIFACTS``: what an artifact directory holds, checksums verified.

Model, preset, classes, input and window, source checkpoint, export parity, then one row per
artifact (kind, precision, stage, graph inputs, size, sha256 status, TensorRT plugins, and the
calibration or build facts). Exit 0 when every file verifies, 1 when one is missing or differs,
2 when the manifest itself cannot be read. Torch-free.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.manifest import ManifestError, load_manifest, sha256_file

PARITY_KEYS = ("scores", "boxes", "masks", "embeddings")


def file_status(directory: Path, entry: dict) -> str:
    """``ok``, ``missing``, ``size differs`` or ``sha256 differs`` for one manifest entry."""
    path = directory / entry["file"]
    if not path.is_file():
        return "missing"
    size = entry.get("size_bytes")
    if size is not None and path.stat().st_size != size:
        return "size differs"
    return "ok" if sha256_file(path) == entry.get("sha256") else "sha256 differs"


def _size(directory: Path, entry: dict) -> str:
    path = directory / entry["file"]
    size = path.stat().st_size if path.is_file() else entry.get("size_bytes")
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


def _notes(entry: dict) -> str:
    notes = []
    if "opset" in entry:
        notes.append(f"opset {entry['opset']}")
    calibration = entry.get("calibration")
    if calibration:
        verdict = "within" if calibration.get("within_budget") else "OVER"
        notes.append(f"calibrated: {calibration.get('tool', '?')} {calibration.get('method', '')}"
                     f", {calibration.get('check', '?')} {calibration.get('value', '?')} "
                     f"({verdict} budget{_measured_where(calibration)})".replace("  ", " "))
    static = entry.get("openvino_static")
    if static:  # the one window shape OpenVINO compiles statically (docs/runtime.md)
        frames = static.get("inputs", {}).get("frames", "?")
        held = next((f"{k.replace('_', ' ')} {v}" for k, v in static.items() if k != "inputs"),
                    "budget not stated")  # parity_loss, or AP_drop with an AP budget
        notes.append(f"OpenVINO static shape frames {frames} ({held})")
    if entry.get("kind") == "tensorrt":
        notes.append(f"TensorRT {entry.get('tensorrt', '?')}, sm{entry.get('compute_capability', '?')}"
                     f", {entry.get('gpu', '?')}")
    return "; ".join(notes) or "-"


def _measured_where(calibration: dict) -> str:
    """`` on openvino (AMX kernels)`` from the record's ``check_backend`` / ``check_cpu``: an
    INT8 budget holds for the runtime and INT8 kernel family it was measured with."""
    backend = calibration.get("check_backend")
    if not backend:
        return ""
    cpu = calibration.get("check_cpu")
    return f" on {backend}" + (f" ({cpu} kernels)" if cpu else "")


def parity_line(parity: dict) -> str:
    """One line per backend: max abs error vs PyTorch and its tolerance per output."""
    lines = []
    for backend, report in parity.items():
        tolerances = report.get("tolerances", {})
        cells = [f"{k} {report[f'{k}_max_abs']:.2g} (tol {tolerances.get(k, '?')})"
                 for k in PARITY_KEYS if f"{k}_max_abs" in report]
        if "masks_beyond_box_allowance" in report:  # what the masks tolerance is held to
            cells.append(f"masks beyond the box-edge allowance "
                         f"{report['masks_beyond_box_allowance']:.2g}")
        mismatches = report.get("index_mismatches")
        if mismatches is not None:
            cells.append(f"query_index mismatches {mismatches}")
        lines.append(f"  {backend}: " + ", ".join(cells))
    return "\n".join(lines)


def describe(directory: str | Path) -> tuple[str, bool]:
    """(the report, whether every artifact file verifies). Raises ``ManifestError``."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    data = manifest.data
    (t_min, t_opt, t_max), (b_min, _, b_max) = manifest.frames_range, manifest.batch_range
    h, w = manifest.input_hw
    source = data.get("source", {})
    lines = [
        f"{directory}: {manifest.model} / {data.get('preset', '?')}, {len(manifest.classes)} "
        f"classes ({', '.join(manifest.classes)})",
        f"input: frames uint8 (B, T, {h}, {w}, 3) RGB, B {b_min}..{b_max}, T {t_min}..{t_max} "
        f"(opt {t_opt}); window T={manifest.window[0]}, S={manifest.window[1]}",
        f"source: {source.get('checkpoint', '?')}, torch {source.get('torch', '?')}, exported "
        f"{source.get('exported', '?')}",
    ]
    if data.get("model_extra"):
        lines.append("model options: " + ", ".join(f"{k}={v}" for k, v in
                                                    data["model_extra"].items()))
    if data.get("parity"):
        lines += ["parity vs PyTorch (max abs over the export's cases):",
                  parity_line(data["parity"])]
    header = ("file", "kind", "precision", "stage", "inputs", "size", "sha256", "plugins",
              "notes")
    rows, all_ok = [], True
    for entry in data["artifacts"]:
        status = file_status(directory, entry)
        all_ok &= status == "ok"
        plugins = ", ".join(p.get("plugin", "?") for p in entry.get("tensorrt_plugins", []))
        rows.append((entry["file"], entry["kind"], entry["precision"], entry.get("stage", "-"),
                     ", ".join(manifest.entry_inputs(entry)), _size(directory, entry), status,
                     plugins or "-", _notes(entry)))
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if not all_ok:
        lines.append("\nsome files are missing or differ from the manifest: export again "
                     f"(make export MODEL={manifest.model} OUT={directory})")
    return "\n".join(lines), all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visdeploy info", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifacts", nargs="+", help="artifact directories (manifest.json)")
    args = parser.parse_args(argv)
    code = 0
    for i, directory in enumerate(args.artifacts):
        if i:
            print()
        try:
            report, ok = describe(directory)
        except ManifestError as err:
            print(f"error: {err}", file=sys.stderr)
            code = 2
            continue
        print(report)
        code = max(code, 0 if ok else 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
