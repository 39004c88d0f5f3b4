"""Synthetic YouTube-VIS datasets: presets, per-video generation, files on disk.

Layout written by :func:`generate_dataset` under ``out_dir``::

    annotations.json              YouTube-VIS ground truth (+ per-frame occlusion/visibility)
    videos/vid_00001.mp4          mp4v, RGB frames at 6 fps (lossy; PNGs are exact)
    frames/vid_00001/00000.png    only with ``png=True``; ``file_names`` point here

Every video is a pure function of ``(seed, preset name, video index)``: the same seed gives the
same videos and annotations, and a dataset with more videos extends one with fewer.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from evaluation import rle as rle_utils
from evaluation.errors import DatasetWriteError, SyntheticConfigError
from evaluation.synthetic.render import SyntheticVideo, render_video
from evaluation.synthetic.script import EVENTS, make_script
from evaluation.synthetic.shapes import CATEGORIES
from evaluation.synthetic.textures import TextureBank

FPS = 6  # YouTube-VIS annotates every 5th frame of 30 fps video


@dataclass(frozen=True)
class Preset:
    """Dataset size: videos, frames per video, frame size, objects per video (plus events)."""

    name: str
    videos: int
    frames: int
    height: int
    width: int
    min_objects: int
    max_objects: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", videos=3, frames=8, height=96, width=160, min_objects=2, max_objects=3),
    "val": Preset("val", videos=30, frames=36, height=360, width=640, min_objects=3, max_objects=6),
    "train": Preset("train", videos=200, frames=36, height=360, width=640, min_objects=3,
                    max_objects=6),
}


@dataclass(frozen=True)
class DatasetPaths:
    """Where a generated dataset lives. ``frames`` is ``None`` when no PNGs were written."""

    root: Path
    annotations: Path
    videos: Path
    frames: Path | None
    video_files: dict[int, Path] = field(default_factory=dict)


def resolve_preset(preset: str, **overrides: int | None) -> Preset:
    """The named preset with non-``None`` overrides applied, validated."""
    if preset not in PRESETS:
        raise SyntheticConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    chosen = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    if chosen.videos < 1 or chosen.frames < 1:
        raise SyntheticConfigError(f"need at least 1 video and 1 frame, got {chosen.videos} "
                                   f"videos of {chosen.frames} frames")
    if chosen.height < 32 or chosen.width < 32 or chosen.height % 2 or chosen.width % 2:
        raise SyntheticConfigError(
            f"frame size {chosen.height}x{chosen.width}: height and width must be even and at "
            "least 32 (the mp4v encoder needs even sizes)")
    return chosen


def video_rng(seed: int, preset: Preset, index: int) -> np.random.Generator:
    """The random generator of video ``index`` (0-based) of ``preset`` under ``seed``."""
    return np.random.default_rng([seed, zlib.crc32(preset.name.encode()), index])


def generate_video(index: int, *, preset: str | Preset = "tiny", seed: int = 0,
                   bank: TextureBank | None = None, pixels: bool = True,
                   events: tuple[str, ...] | None = None) -> SyntheticVideo:
    """Render video ``index`` in memory. By default it gets event ``EVENTS[index % 6]`` plus one
    or two random others; pass ``events`` to choose them (e.g. ``EVENTS`` for all)."""
    preset = preset if isinstance(preset, Preset) else resolve_preset(preset)
    rng = video_rng(seed, preset, index)
    if events is None:
        extra = rng.choice(len(EVENTS), size=int(rng.integers(1, 3)), replace=False)
        events = tuple(dict.fromkeys([EVENTS[index % len(EVENTS)], *(EVENTS[i] for i in extra)]))
    count = int(rng.integers(preset.min_objects, preset.max_objects + 1))
    script = make_script(rng, height=preset.height, width=preset.width, frames=preset.frames,
                         num_objects=count, events=events)
    return render_video(script, bank, pixels=pixels)


def _bbox(mask: np.ndarray) -> list[float]:
    """``[x, y, w, h]`` of a non-empty ``bool[H, W]`` mask (equal to pycocotools ``toBbox``)."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1)]


def annotations_for(video: SyntheticVideo, video_id: int, first_id: int, *,
                    compressed: bool = False) -> list[dict[str, Any]]:
    """YouTube-VIS annotations (one per visible object) with ids from ``first_id``."""
    h, w = video.script.height, video.script.width
    encode = rle_utils.encode if compressed else rle_utils.encode_uncompressed
    labels, visibility, out = video.occlusion_labels(), video.visibility, []
    visible = video.visible_areas
    for n in np.flatnonzero(visible.sum(axis=1) > 0):
        segs, areas, boxes = [], [], []
        for f in range(video.script.frames):
            present = bool(visible[n, f] > 0)
            mask = video.masks[n, f]
            segs.append(encode(mask) if present else None)
            areas.append(int(visible[n, f]) if present else None)
            boxes.append(_bbox(mask) if present else None)
        out.append({"id": first_id + len(out), "video_id": video_id,
                    "category_id": int(video.category_ids[n]), "iscrowd": 0, "height": h,
                    "width": w, "segmentations": segs, "areas": areas, "bboxes": boxes,
                    "occlusion": labels[n], "visibility": [round(float(v), 4)
                                                           for v in visibility[n]],
                    "events": list(video.script.objects[n].events)})
    return out


def video_entry(video_id: int, preset: Preset) -> dict[str, Any]:
    """The ``videos`` entry of video ``video_id`` (1-based)."""
    name = f"vid_{video_id:05d}"
    return {"id": video_id, "width": preset.width, "height": preset.height,
            "length": preset.frames, "file_names": [f"{name}/{f:05d}.png"
                                                    for f in range(preset.frames)],
            "mp4_file": f"videos/{name}.mp4"}


def categories() -> list[dict[str, Any]]:
    """YouTube-VIS ``categories``: the shape classes, ids 1..5."""
    return [{"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(CATEGORIES)]


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """Write ``uint8[F, H, W, 3]`` RGB frames with the ``mp4v`` codec."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise DatasetWriteError(f"OpenCV could not open an mp4v writer for {path}; check the "
                                "folder is writable and that OpenCV has FFMPEG")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def write_pngs(folder: Path, frames: np.ndarray) -> None:
    """Write each RGB frame as ``folder/00000.png`` ... (lossless)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f, frame in enumerate(frames):
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(folder / f"{f:05d}.png"), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise DatasetWriteError(f"could not write {folder / f'{f:05d}.png'}")


def generate_dataset(out_dir: str | Path, *, preset: str = "tiny", seed: int = 0,
                     videos: int | None = None, frames: int | None = None,
                     height: int | None = None, width: int | None = None, png: bool = False,
                     mp4: bool = True, compressed_rle: bool = False,
                     progress: bool = False) -> DatasetPaths:
    """Generate a dataset on disk (see module doc) and return its :class:`DatasetPaths`."""
    chosen = resolve_preset(preset, videos=videos, frames=frames, height=height, width=width)
    root = Path(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetWriteError(f"cannot create output folder {root}: {err}") from err
    bank, entries, annotations, files = TextureBank(), [], [], {}
    for index in range(chosen.videos):
        video_id = index + 1
        video = generate_video(index, preset=chosen, seed=seed, bank=bank)
        entry = video_entry(video_id, chosen)
        entries.append(entry)
        annotations += annotations_for(video, video_id, len(annotations) + 1,
                                       compressed=compressed_rle)
        if mp4:
            files[video_id] = root / entry["mp4_file"]
            write_mp4(files[video_id], video.frames)
        if png:
            write_pngs(root / "frames" / f"vid_{video_id:05d}", video.frames)
        if progress:
            print(f"[synthetic] video {video_id}/{chosen.videos}: "
                  f"{len(video.script.objects)} objects", flush=True)
    gt = {"info": {"description": "visdeploy synthetic VIS", "preset": chosen.name, "seed": seed,
                   "fps": FPS},
          "licenses": [], "videos": entries, "annotations": annotations,
          "categories": categories()}
    path = root / "annotations.json"
    path.write_text(json.dumps(gt), encoding="utf-8")
    return DatasetPaths(root=root, annotations=path, videos=root / "videos",
                        frames=root / "frames" if png else None, video_files=files)
