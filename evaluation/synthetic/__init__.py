"""Synthetic VIS videos with exact YouTube-VIS ground truth.

API::

    from evaluation.synthetic import generate_dataset, read_video, generate_video
    paths = generate_dataset("data/synth_val", preset="val", seed=0, png=True)
    sample = read_video(paths, video_id=1)      # frames uint8[F, H, W, 3], masks bool[N, F, H, W]
    video = generate_video(0, preset="tiny")    # in memory, no files

CLI: ``python -m evaluation.synthetic --videos N --frames F --out DIR --seed S
[--preset tiny|val|train] [--png]``
"""

from evaluation.synthetic.dataset import (
    PRESETS,
    DatasetPaths,
    Preset,
    annotations_for,
    categories,
    generate_dataset,
    generate_video,
    resolve_preset,
)
from evaluation.synthetic.reader import VideoSample, open_dataset, read_mp4, read_video
from evaluation.synthetic.render import OCCLUSION_LABELS, SyntheticVideo, render_video
from evaluation.synthetic.script import EVENTS, VideoScript, make_script
from evaluation.synthetic.shapes import CATEGORIES

__all__ = [
    "CATEGORIES", "EVENTS", "OCCLUSION_LABELS", "PRESETS", "DatasetPaths", "Preset",
    "SyntheticVideo", "VideoSample", "VideoScript", "annotations_for", "categories",
    "generate_dataset", "generate_video", "make_script", "open_dataset", "read_mp4", "read_video",
    "render_video", "resolve_preset",
]
