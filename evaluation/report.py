"""Accuracy table: PyTorch eager and ONNX (fp32/fp16/int8) on the synthetic val set, offline and
streaming. ``python -m evaluation.report [--artifacts artifacts/tevit ...] [--videos N]``.

Modes: ``offline`` runs each video as one window (when the artifact's frame range allows it);
``streaming`` uses the artifact's window and stride with the default tracker and the ``average``
overlap policy; ``streaming-latest`` the same with the ``latest`` overlap policy; ``near-online``
is IFC's official schedule and linking (window 5, stride 1, ``--tracker ifc-official``). AP comes from the exact YTVIS scorer on
benchmark-mode output; identity switches and IDF1 from the same tracks at the deployment score
threshold. ``--backends onnxruntime openvino`` adds a row per runtime backend for each ONNX
variant (named e.g. ``fp32 (openvino)``). Prints a markdown table (and writes it with ``--out``;
``--plots DIR`` also draws ``DIR/accuracy.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from evaluation.synthetic import generate_dataset, open_dataset, read_video
from evaluation.tracking import clear_metrics, identity_metrics, similarities
from evaluation.tracking_input import frames_from_ground_truth
from evaluation.ytvis import evaluate

DEPLOYMENT_SCORE = 0.3
MODES = ("offline", "streaming", "streaming-latest", "near-online")


@dataclass
class Row:
    model: str
    variant: str
    mode: str
    window: str
    ap: float
    ap50: float
    idsw: int
    idf1: float
    seconds: float


def ensure_val_set(root: Path, videos: int | None, seed: int) -> Path:
    """The synthetic val set at ``root`` (generated once, PNG frames so pixels are exact)."""
    if not (root / "annotations.json").is_file():
        print(f"[report] generating the synthetic val set in {root}", file=sys.stderr)
        generate_dataset(root, preset="val", seed=seed, videos=videos, png=True, progress=True)
    return root


def _pipeline(artifacts: Path, variant: str, window: int, stride: int, mode: str,
              backend: str = "onnxruntime", stages: str = "auto"):
    from runtime import Pipeline

    options = {"window": window, "stride": stride, "mode": "benchmark", "mask_format": "rle",
               "keep_images": False, "overlap": "latest" if mode == "streaming-latest" else "average",
               "tracker": "ifc-official" if mode == "near-online" else None}
    if variant == "eager":
        from evaluation.torch_backend import TorchEagerBackend
        from runtime.manifest import load_manifest

        backend = TorchEagerBackend(load_manifest(artifacts)).activate()
        return Pipeline(artifacts, backend=backend, **options)
    return Pipeline(artifacts, precision=variant, backend=backend, stages=stages, **options)


def run_video(pipeline, frames, video_id: int, num_classes: int, workdir: Path):
    """One video through ``pipeline``: (YTVIS entries, per-frame deployment tracks)."""
    from runtime.sinks.ytvis import YtvisJsonSink

    pipeline.reset()
    results = pipeline.process(list(frames)) + pipeline.flush()
    sink = YtvisJsonSink(workdir / f"{video_id}.json", num_classes=num_classes, video_id=video_id)
    tracks = []
    for result in results:
        sink.write(result)
        keep = result.scores >= DEPLOYMENT_SCORE
        tracks.append([(int(t), r) for t, r, k in zip(result.track_ids, result.rles, keep) if k])
    return sink.entries(), tracks


def evaluate_variant(artifacts: Path, variant: str, mode: str, dataset: Path, videos: list[int],
                     backend: str = "onnxruntime", stages: str = "auto") -> Row:
    """One table row: ``variant`` (eager or an ONNX precision) run by ``backend`` (onnxruntime,
    openvino; the eager variant is PyTorch whatever ``backend`` says) with ``stages`` (``auto``,
    ``one``: the whole-model graph, ``two``: IFC's frame + clip stages; see ``Pipeline``)."""
    from runtime.manifest import load_manifest

    manifest = load_manifest(artifacts)
    gt = json.loads((dataset / "annotations.json").read_text())
    length = max(v["length"] for v in gt["videos"] if v["id"] in videos)
    if mode == "offline":
        window = min(length, manifest.frames_range[2])
        stride = max(window - 1, 1)
    elif mode == "near-online":
        window, stride = 5, 1
    else:
        window, stride = manifest.window
    start = time.perf_counter()
    entries, idsw, idtp, id_errors = [], 0, 0, 0
    with _pipeline(artifacts, variant, window, stride, mode, backend, stages) as pipeline, \
            tempfile.TemporaryDirectory() as tmp:
        for vid in videos:
            sample = read_video(dataset, vid)
            video_entries, tracks = run_video(pipeline, sample.frames, vid, len(manifest.classes), Path(tmp))
            entries += video_entries
            gt_frames, h, w = frames_from_ground_truth(gt, vid)
            sims = similarities(gt_frames, tracks, h, w)
            idsw += clear_metrics(sims).idsw
            ident = identity_metrics(sims)
            idtp, id_errors = idtp + ident.idtp, id_errors + ident.idfp + ident.idfn
    subset = {**gt, "videos": [v for v in gt["videos"] if v["id"] in videos],
              "annotations": [a for a in gt["annotations"] if a["video_id"] in videos]}
    scores = evaluate(subset, entries, lenient=True) if entries else {"AP": 0.0, "AP50": 0.0}
    name = variant if variant == "eager" or backend == "onnxruntime" else f"{variant} ({backend})"
    if variant != "eager" and stages != "auto":
        name += f", {stages}-stage"
    return Row(manifest.model, name, mode, f"T={window}, S={stride}", scores["AP"], scores["AP50"],
               idsw, 2 * idtp / max(2 * idtp + id_errors, 1), time.perf_counter() - start)


def format_table(rows: list[Row]) -> str:
    lines = ["| model | variant | mode | window | AP | AP50 | ID switches | IDF1 | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {r.variant} | {r.mode} | {r.window} | {r.ap:.3f} | {r.ap50:.3f} | "
              f"{r.idsw} | {r.idf1:.3f} | {r.seconds:.0f} |" for r in rows]
    return "\n".join(lines)


def available_variants(artifacts: Path, wanted: list[str]) -> list[str]:
    from runtime.manifest import load_manifest

    have = {e["precision"] for e in load_manifest(artifacts).data["artifacts"] if e["kind"] == "onnx"}
    return [v for v in wanted if v == "eager" or v in have]


def runs_of(artifacts: Path, variant: str, backends: list[str], stages: list[str]) -> list[tuple]:
    """(backend, stages) rows of ``variant``: eager runs once in PyTorch; an ONNX variant runs on
    each backend with each ``stages`` choice its manifest has (``two`` needs frame and clip stage
    graphs at that precision: the calibration makes only the whole-model FP16/INT8 graph, so
    ``two`` is skipped there with a note rather than ending the report)."""
    from runtime.manifest import load_manifest

    if variant == "eager":
        return [("pytorch", "auto")]
    has_two = load_manifest(artifacts).has_stages("onnx", variant)
    if "two" in stages and not has_two:
        print(f"[report] {artifacts}: no {variant} frame/clip stage graphs; {variant} two-stage "
              "rows skipped (export them with two_stage, or compare at fp32)", file=sys.stderr)
    return [(b, st) for b in backends for st in stages if st != "two" or has_two]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.report", description=__doc__)
    parser.add_argument("--artifacts", nargs="+", default=["artifacts/tevit"])
    parser.add_argument("--data", default="data/synth_val", help="synthetic val set (generated if absent)")
    parser.add_argument("--videos", type=int, default=None, help="first N val videos (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=["eager", "fp32", "fp16", "int8"])
    parser.add_argument("--modes", nargs="+", default=["offline", "streaming"], choices=MODES)
    parser.add_argument("--backends", nargs="+", default=["onnxruntime"],
                        choices=["onnxruntime", "openvino"],
                        help="runtime backends of the ONNX variants (CPU); a row per backend")
    parser.add_argument("--stages", nargs="+", default=["auto"], choices=["auto", "one", "two"],
                        help="ONNX variants: whole-model graph (one), frame + clip stages (two, "
                             "IFC exports), or the default (auto); a row per choice")
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="also draw DIR/accuracy.png (AP, AP50, IDF1 per variant and mode; "
                             "needs the plots extra)")
    args = parser.parse_args(argv)
    dataset = ensure_val_set(Path(args.data), None, args.seed)
    gt = json.loads((open_dataset(dataset).annotations).read_text())
    videos = [v["id"] for v in gt["videos"]][: args.videos]
    rows = []
    for artifacts in map(Path, args.artifacts):
        for variant in available_variants(artifacts, args.variants):
            for backend, stages in runs_of(artifacts, variant, args.backends, args.stages):
                for mode in args.modes:
                    rows.append(evaluate_variant(artifacts, variant, mode, dataset, videos,
                                                 backend, stages))
                    print(f"[report] {format_table(rows[-1:]).splitlines()[-1]}", file=sys.stderr)
    table = format_table(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    if args.plots:
        from evaluation.plots import plot_accuracy, read_table

        print(f"[report] chart: {plot_accuracy(read_table(table), Path(args.plots) / 'accuracy.png')}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
