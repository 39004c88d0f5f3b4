"""Speed of the YouTube-VIS evaluator: 300 videos x 36 frames x 100 results per video.

Usage: ``python bench/eval_speed.py [--videos 300] [--frames 36] [--results 100] [--workdir D]``

Ground truth = synthetic val-size videos (360x640, masks only). Results per video are built from
a pool of that video's GT tracks: exact copies, copies shifted by a few pixels, copies with
dropped frames, wrong classes and tracks of other objects, with random scores, so matching,
ties, false positives and every category are exercised. Setup (generation, encoding, writing the
JSON files) is not timed; the timed part is ``evaluate(gt_path, results_path)`` from the files,
JSON parsing included, followed by a per-phase breakdown. Target: < 60 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from evaluation import rle
from evaluation.synthetic import annotations_for, categories, generate_video, resolve_preset
from evaluation.synthetic.dataset import video_entry
from evaluation.ytvis import HEADLINE_KEYS, evaluate, match_all
from evaluation.ytvis_accumulate import accumulate
from evaluation.ytvis_io import load_ground_truth, load_results, read_json
from evaluation.ytvis_params import Params


def _pool(rng: np.random.Generator, masks: np.ndarray, anns: list[dict]) -> list[tuple[int, list]]:
    """(category, per-frame compressed RLE or None) candidate tracks of one video."""
    pool = []
    for n, ann in enumerate(anns):
        exact = [rle.encode(m) if m.any() else None for m in masks[n]]
        pool.append((ann["category_id"], exact))
        shift = (int(rng.integers(-6, 7)), int(rng.integers(-6, 7)))
        moved = [rle.encode(np.roll(m, shift, axis=(0, 1))) if m.any() else None
                 for m in masks[n]]
        pool.append((ann["category_id"], moved))
    return pool


def _results(rng: np.random.Generator, video_id: int, pool: list, count: int,
             frames: int) -> list[dict]:
    out = []
    for _ in range(count):
        category, segs = pool[int(rng.integers(len(pool)))]
        segs = list(segs)
        if rng.random() < 0.3:  # dropped frames
            for f in rng.choice(frames, size=int(rng.integers(1, frames // 2)), replace=False):
                segs[f] = None
        if rng.random() < 0.3:  # another class
            category = int(rng.integers(1, 6))
        out.append({"video_id": video_id, "category_id": category,
                    "score": float(np.round(rng.random(), 3)), "segmentations": segs})
    return out


def build(workdir: Path, videos: int, frames: int, per_video: int, seed: int) -> tuple[Path, Path]:
    """Write ``gt.json`` and ``results.json`` under ``workdir``; returns their paths."""
    preset = resolve_preset("val", videos=videos, frames=frames)
    rng = np.random.default_rng(seed)
    entries, anns, results = [], [], []
    start = time.perf_counter()
    for index in range(videos):
        video = generate_video(index, preset=preset, seed=seed, pixels=False)
        video_anns = annotations_for(video, index + 1, len(anns) + 1, compressed=True)
        visible = video.visible_areas.sum(axis=1) > 0
        entries.append(video_entry(index + 1, preset))
        anns += video_anns
        pool = _pool(rng, video.masks[visible], video_anns)
        results += _results(rng, index + 1, pool, per_video, frames)
        if (index + 1) % 50 == 0:
            print(f"[bench] built {index + 1}/{videos} videos "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    gt = {"videos": entries, "annotations": anns, "categories": categories()}
    gt_path, res_path = workdir / "gt.json", workdir / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def breakdown(gt_path: Path, res_path: Path) -> dict[str, float]:
    """Seconds per phase: JSON parse, GT load, results load, IoU + matching, accumulation."""
    times, params = {}, Params()
    start = time.perf_counter()
    gt, results = read_json(gt_path), read_json(res_path)
    times["json"] = time.perf_counter() - start
    start = time.perf_counter()
    _, data = load_ground_truth(gt)
    times["load_gt"] = time.perf_counter() - start
    start = time.perf_counter()
    data = load_results(results, data)
    times["load_results"] = time.perf_counter() - start
    start = time.perf_counter()
    evals, _ = match_all(data, params)
    times["iou_and_matching"] = time.perf_counter() - start
    start = time.perf_counter()
    accumulate(evals, data.category_ids, params)
    times["accumulate"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--results", type=int, default=100, help="results per video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="keep the generated JSON files here (reused)")
    parser.add_argument("--repeat", type=int, default=3, help="timed evaluations (median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        gt_path, res_path = workdir / "gt.json", workdir / "results.json"
        if not (args.workdir and gt_path.is_file() and res_path.is_file()):
            gt_path, res_path = build(workdir, args.videos, args.frames, args.results, args.seed)
        size_mb = res_path.stat().st_size / 1e6
        print(f"[bench] {args.videos} videos x {args.frames} frames x {args.results} results "
              f"(results.json {size_mb:.0f} MB); evaluating...", flush=True)
        runs, cpu = [], []
        for _ in range(max(1, args.repeat)):
            start, start_cpu = time.perf_counter(), time.process_time()
            summary = evaluate(gt_path, res_path)
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print("[bench] " + "  ".join(f"{k}={100 * summary[k]:.1f}" for k in HEADLINE_KEYS))
        print(f"[bench] evaluate() from files: median {np.median(runs):.1f} s, min "
              f"{min(runs):.1f} s over {len(runs)} runs (target < 60 s); CPU time median "
              f"{np.median(cpu):.1f} s (wall exceeds CPU when other jobs share the cores)")
        phases = breakdown(gt_path, res_path)
        print("[bench] phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))


if __name__ == "__main__":
    main()
