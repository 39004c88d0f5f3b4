"""YouTube-VIS AP of an ONNX graph on a generated dataset, through the real runtime.

``YtvisApMetric(dataset, artifacts)(onnx_path)`` streams every video of the dataset through
``runtime.Pipeline`` in benchmark mode (the same letterbox, windows, tracking and YTVIS results as
``python -m runtime.stream --json``) and scores the results with ``evaluation.ytvis``. It is the
pluggable metric of ``calibration.checks.MetricCheck``; with an untrained checkpoint AP is ~0 and
a parity budget is the meaningful one.

``metric(onnx_path, static_shapes={...})`` measures the graph as the OpenVINO backend runs it
when its manifest entry records a static window shape (``openvino_static``): the staged entry
carries the shapes, so windows of that shape run on the static compile and the rest (a video's
short last window) on the dynamic one, exactly as deployed (``calibration.openvino_static``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from calibration.report import onnx_entry
from runtime.manifest import load_manifest, write_manifest


class YtvisApMetric:
    """AP x 100 of an ONNX file on ``dataset`` (a folder with ``annotations.json``).

    Args:
        dataset: generated dataset folder (``python -m evaluation.synthetic --out DIR``).
        artifacts: the artifact directory whose manifest describes the graph's I/O.
        max_videos: score only the first N videos (faster; None = all).
        threads: inference threads (0 = the backend's default).
        tracker: the runtime's ``--tracker`` the AP is measured with (``default``, or
            ``ifc-official``: IFC's near-online linking), so the budget holds for the way the
            graph will be deployed.
        backend: the runtime backend the videos run on (``onnxruntime`` or ``openvino``): an
            INT8 graph's AP differs between them (their INT8 kernels differ).
    """

    # it can measure a graph compiled for a static window shape (MetricCheck asks; OpenVINO)
    measures_static_shapes = True

    def __init__(self, dataset: str | Path, artifacts: str | Path, *,
                 max_videos: int | None = None, threads: int = 0,
                 tracker: str = "default", backend: str = "onnxruntime") -> None:
        from evaluation.synthetic import open_dataset

        self.paths = open_dataset(dataset)
        self.manifest = load_manifest(artifacts)
        gt = json.loads(self.paths.annotations.read_text(encoding="utf-8"))
        self.videos = gt["videos"][:max_videos] if max_videos else gt["videos"]
        self.threads, self.tracker, self.backend = threads, tracker, backend

    def _staged(self, onnx_path: Path, folder: Path, static_shapes: dict | None) -> Path:
        """An artifact folder whose manifest lists ``onnx_path`` as its only (fp32-slot) graph,
        with ``static_shapes`` as its ``openvino_static`` record when given."""
        target = folder / "model.onnx"
        os.symlink(Path(onnx_path).resolve(), target)
        data = dict(self.manifest.data)
        record = {"openvino_static": {"inputs": static_shapes}} if static_shapes else {}
        data["artifacts"] = [onnx_entry(folder, target.name, precision="fp32", **record)]
        write_manifest(folder, data)
        return folder

    def _video_source(self, video: dict):
        from runtime.sources import ImageSequenceSource, VideoFileSource

        root = self.paths.root
        pngs = [root / "frames" / name for name in video.get("file_names", [])]
        if pngs and all(p.is_file() for p in pngs):
            return ImageSequenceSource(pngs, description=f"video {video['id']}")
        return VideoFileSource(root / video["mp4_file"])

    def results(self, onnx_path: str | Path, static_shapes: dict | None = None) -> list[dict]:
        """YTVIS result entries of every video; ``static_shapes`` (input name -> shape, OpenVINO
        only): run the graph compiled for that window shape, as the runtime runs a recorded one."""
        if static_shapes and self.backend != "openvino":
            raise ValueError("static window shapes are an OpenVINO compile; this metric runs on "
                             f"{self.backend}")
        from runtime.pipeline import Pipeline
        from runtime.sinks.ytvis import YtvisJsonSink

        entries: list[dict] = []
        with tempfile.TemporaryDirectory(prefix="visdeploy_ap_") as tmp:
            staged = self._staged(Path(onnx_path), Path(tmp), static_shapes)
            with Pipeline(staged, backend=self.backend, device="cpu", mode="benchmark",
                          threads=self.threads, tracker=self.tracker) as pipe:
                for video in self.videos:
                    sink = YtvisJsonSink(Path(tmp) / f"{video['id']}.json",
                                         num_classes=len(pipe.class_names), video_id=video["id"])
                    for result in pipe.run(self._video_source(video)):
                        sink.write(result)
                    entries += sink.entries()
        return entries

    def __call__(self, onnx_path: str | Path, static_shapes: dict | None = None) -> float:
        from evaluation.ytvis import evaluate

        entries = self.results(onnx_path, static_shapes)
        if not entries:
            return 0.0
        gt = json.loads(self.paths.annotations.read_text(encoding="utf-8"))
        ids = {video["id"] for video in self.videos}
        gt["videos"] = [v for v in gt["videos"] if v["id"] in ids]
        gt["annotations"] = [a for a in gt["annotations"] if a["video_id"] in ids]
        return 100.0 * max(evaluate(gt, entries, lenient=True)["AP"], 0.0)
