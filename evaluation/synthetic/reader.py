"""Read a generated dataset back: frames as ``uint8[F, H, W, 3]`` RGB plus decoded ground truth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from evaluation import rle as rle_utils
from evaluation.errors import DatasetReadError
from evaluation.synthetic.dataset import DatasetPaths


@dataclass
class VideoSample:
    """One video with its GT. ``frames uint8[F, H, W, 3]`` RGB, ``masks bool[N, F, H, W]``,
    ``category_ids``/``instance_ids int64[N]`` (instance id = annotation id), ``video`` and
    ``annotations`` the raw JSON entries."""

    frames: np.ndarray
    masks: np.ndarray
    category_ids: np.ndarray
    instance_ids: np.ndarray
    video: dict[str, Any]
    annotations: list[dict[str, Any]]


def open_dataset(root: str | Path | DatasetPaths) -> DatasetPaths:
    """:class:`DatasetPaths` of a dataset folder written by ``generate_dataset``."""
    if isinstance(root, DatasetPaths):
        return root
    root = Path(root)
    annotations = root / "annotations.json"
    if not annotations.is_file():
        raise DatasetReadError(f"{annotations} not found; generate the dataset first with "
                               f"python -m evaluation.synthetic --out {root}")
    gt = json.loads(annotations.read_text(encoding="utf-8"))
    files = {v["id"]: root / v["mp4_file"] for v in gt["videos"] if "mp4_file" in v}
    frames = root / "frames"
    return DatasetPaths(root=root, annotations=annotations, videos=root / "videos",
                        frames=frames if frames.is_dir() else None, video_files=files)


def read_mp4(path: str | Path, expected_frames: int | None = None) -> np.ndarray:
    """All frames of a video file as ``uint8[F, H, W, 3]`` RGB; refuses truncated files."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DatasetReadError(f"cannot open {path} (missing or truncated MP4)")
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames or (expected_frames is not None and len(frames) != expected_frames):
        raise DatasetReadError(f"{path}: decoded {len(frames)} frames, expected "
                               f"{expected_frames}; regenerate the dataset")
    return np.stack(frames)


def read_pngs(root: Path, file_names: list[str]) -> np.ndarray:
    """Frames listed in ``file_names`` under ``root`` as ``uint8[F, H, W, 3]`` RGB."""
    frames = []
    for name in file_names:
        frame = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetReadError(f"cannot read frame {root / name}")
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def read_video(dataset: str | Path | DatasetPaths, video_id: int, *,
               source: str = "auto") -> VideoSample:
    """Frames and GT of ``video_id``. ``source``: 'png' (exact), 'mp4' (lossy), or 'auto'
    (PNG when the dataset has them, else MP4)."""
    paths = open_dataset(dataset)
    gt = json.loads(paths.annotations.read_text(encoding="utf-8"))
    video = next((v for v in gt["videos"] if v["id"] == video_id), None)
    if video is None:
        known = [v["id"] for v in gt["videos"]]
        raise DatasetReadError(f"video id {video_id} not in {paths.annotations} (ids {known})")
    use_png = source == "png" or (source == "auto" and paths.frames is not None)
    if use_png:
        frames = read_pngs(paths.root / "frames", video["file_names"])
    else:
        frames = read_mp4(paths.root / video["mp4_file"], video["length"])
    anns = [a for a in gt["annotations"] if a["video_id"] == video_id]
    h, w = video["height"], video["width"]
    masks = np.zeros((len(anns), video["length"], h, w), dtype=bool)
    for n, ann in enumerate(anns):
        for f, seg in enumerate(ann["segmentations"]):
            masks[n, f] = rle_utils.decode(seg, h, w)
    return VideoSample(frames=frames, masks=masks,
                       category_ids=np.array([a["category_id"] for a in anns], dtype=np.int64),
                       instance_ids=np.array([a["id"] for a in anns], dtype=np.int64),
                       video=video, annotations=anns)
