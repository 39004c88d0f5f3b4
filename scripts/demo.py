"""`make demo`: synthetic clip -> tiny TeViT export (cached) -> streaming run -> accuracy.

Each step says what it does; a second run reuses the clip and the exported artifact. Outputs:
demo/overlay.mp4 (masks, boxes, IDs), demo/results.json (YTVIS), demo/events.jsonl.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO = ROOT / "demo"
CLIP = DEMO / "data"
ARTIFACTS = ROOT / "artifacts" / "tevit"
CHECKPOINT = ROOT / "checkpoints" / "tevit_tiny.pth"
CLIP_SEED = 7
# the representative figures of checkpoints/tevit_tiny.pth (docs/benchmarks.md, accuracy table)
VAL_FIGURES = ("on all 30 synthetic val videos the same model reaches AP=31.9 AP50=52.9 "
               "streaming (fp32, T=5, S=3; docs/benchmarks.md, python -m evaluation.report)")


def step(number: int, text: str) -> float:
    print(f"\n[demo] {number}/4 {text}", flush=True)
    return time.perf_counter()


def done(start: float, text: str = "done") -> None:
    print(f"[demo]     {text} ({time.perf_counter() - start:.1f} s)", flush=True)


def run(args: list[str]) -> None:
    print("[demo]     $ " + " ".join(str(a) for a in args), flush=True)
    subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, check=True)


def make_clip() -> tuple[Path, Path]:
    """One 36-frame 360x640 synthetic video with exact YTVIS ground truth."""
    start = step(1, f"synthetic clip with ground truth in {CLIP.relative_to(ROOT)}")
    if not (CLIP / "annotations.json").is_file():
        from evaluation.synthetic import generate_dataset

        generate_dataset(CLIP, preset="val", videos=1, seed=CLIP_SEED)
        done(start, "generated 1 video x 36 frames, 360x640")
    else:
        done(start, "reusing the existing clip")
    gt = json.loads((CLIP / "annotations.json").read_text())
    return CLIP / gt["videos"][0]["mp4_file"], CLIP / "annotations.json"


def artifact_is_current() -> bool:
    """The exported artifact verifies and was made from the checkpoint we would use now."""
    from runtime.manifest import ArtifactError, ManifestError, load_manifest, sha256_file

    try:
        manifest = load_manifest(ARTIFACTS)
        manifest.verified_path(manifest.artifact("onnx", "fp32"))
    except (ManifestError, ArtifactError):
        return False
    wanted = sha256_file(CHECKPOINT) if CHECKPOINT.is_file() else None
    return manifest.data["source"].get("checkpoint_sha256") == wanted and manifest.data["preset"] == "tiny"


def export() -> None:
    start = step(2, f"export tiny TeViT to ONNX in {ARTIFACTS.relative_to(ROOT)}")
    if artifact_is_current():
        done(start, "reusing the existing export (sha256 verified)")
        return
    if not CHECKPOINT.is_file():
        print("[demo]     no trained checkpoint in checkpoints/: the export uses random weights")
    run(["-m", "export", "tevit", "--preset", "tiny", "--out", ARTIFACTS])
    done(start)


def stream(video: Path) -> None:
    start = step(3, f"stream {video.relative_to(ROOT)} through python -m runtime.stream (onnxruntime, CPU)")
    # deployment mode (tracks above the score threshold): what an app shows -> overlay + events
    run(["-m", "runtime.stream", video, "--artifacts", ARTIFACTS, "--out", DEMO / "overlay.mp4",
         "--events", DEMO / "events.jsonl", "--quiet"])
    # benchmark mode (every scored instance, as YouTube-VIS AP expects) -> results.json
    run(["-m", "runtime.stream", video, "--artifacts", ARTIFACTS, "--mode", "benchmark",
         "--json", DEMO / "results.json", "--quiet"])
    done(start)


def score(gt_path: Path) -> None:
    start = step(4, "accuracy (benchmark-mode results) and identity metrics (deployment tracks) "
                    "against the clip's ground truth")
    from evaluation.track_eval import main as track_eval
    from evaluation.ytvis import evaluate, format_summary

    results = json.loads((DEMO / "results.json").read_text())
    if results:
        print(format_summary(evaluate(gt_path, results, lenient=True)))
    else:
        print("[demo]     no tracks above the score threshold: AP is 0 (random weights?)")
    track_eval(["--gt", str(gt_path), "--jsonl", str(DEMO / "events.jsonl"), "--video-id", "1"])
    print(f"[demo]     one clip, harder than average (six objects, several small): {VAL_FIGURES}")
    done(start)


def main() -> int:
    total = time.perf_counter()
    DEMO.mkdir(exist_ok=True)
    video, gt_path = make_clip()
    export()
    stream(video)
    score(gt_path)
    print(f"\n[demo] finished in {time.perf_counter() - total:.0f} s. Files:")
    for name in ("overlay.mp4", "results.json", "events.jsonl"):
        print(f"[demo]     {(DEMO / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
