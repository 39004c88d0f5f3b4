"""The Triton Python-backend model behind ``python -m export.triton --kind python``.

Triton's dynamic batcher hands ``execute`` the requests it gathered (each a batch of windows:
``frames`` uint8 [b, T, H, W, 3], ``content_hw`` int32 [b, 2] when the artifact declares it);
requests with the same T are run as one batch of up to the artifact's maximum through
visdeploy's onnxruntime backend (the two-stage backend with its per-frame feature cache for
IFC-style artifacts), and each request gets its own rows back. The model keeps no per-stream
state: tracking stays with each client.

Runs inside Triton's Python backend stub, whose environment needs numpy < 2 (the bundled
backend of Triton 2.51 hands out empty tensors with numpy 2, docs/serving.md), onnxruntime and
visdeploy without extras: no OpenCV or SciPy is imported here.
Interface: triton-inference-server/python_backend README, "Usage" (``initialize``,
``execute``, ``finalize``; ``args["model_config"]`` JSON, ``args["model_repository"]`` the
model's folder, ``args["model_version"]``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.backends import OUTPUT_NAMES, open_backend
from runtime.backends.base import full_content_hw
from runtime.manifest import CONTENT_HW, FRAMES, load_manifest


def model_parameters(config: dict) -> dict[str, str]:
    """``parameters`` of a Triton model config (JSON form) as plain strings."""
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def group_by_frames(frames: list[np.ndarray], max_batch: int) -> list[list[int]]:
    """Indices of requests to run together: same T, at most ``max_batch`` windows in all
    (a request is never split). ``frames``: one uint8 [b, T, H, W, 3] per request."""
    groups: list[list[int]] = []
    open_groups: dict[int, tuple[list[int], int]] = {}
    for i, clip in enumerate(frames):
        b, t = clip.shape[:2]
        group, size = open_groups.get(t, (None, 0))
        if group is None or size + b > max_batch:
            group, size = [], 0
            groups.append(group)
        group.append(i)
        open_groups[t] = (group, size + b)
    return groups


class TritonPythonModel:
    """Triton's entry point (class name fixed by the Python backend)."""

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = model_parameters(config)
        folder = Path(args["model_repository"]) / args["model_version"]
        self.manifest = load_manifest(folder)
        options = {"device": params.get("device", "auto"),
                   "precision": params.get("precision", "fp32"),
                   "threads": int(params.get("threads", "0")),
                   "stages": params.get("stages", "auto")}
        if options["stages"] == "two":
            options["cache_frames"] = int(params.get("feature_cache_frames", "0")) or None
        self.backend = open_backend(self.manifest, "onnxruntime", **options).activate()
        self.max_batch = int(config.get("max_batch_size", self.manifest.batch_range[2]))

    def execute(self, requests) -> list:
        import triton_python_backend_utils as pb_utils

        frames = [pb_utils.get_input_tensor_by_name(r, FRAMES).as_numpy() for r in requests]
        content = [pb_utils.get_input_tensor_by_name(r, CONTENT_HW) for r in requests]
        content = [None if c is None else c.as_numpy() for c in content]
        responses: list = [None] * len(requests)
        for group in group_by_frames(frames, self.max_batch):
            try:
                outputs = self._infer([frames[i] for i in group], [content[i] for i in group])
            except Exception as err:  # one bad group must not fail the others
                error = pb_utils.TritonError(f"visdeploy model: {type(err).__name__}: {err}")
                for i in group:
                    responses[i] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            start = 0
            for i in group:
                stop = start + frames[i].shape[0]
                tensors = [pb_utils.Tensor(n, np.ascontiguousarray(outputs[n][start:stop]))
                           for n in OUTPUT_NAMES]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                start = stop
        return responses

    def _infer(self, frames: list[np.ndarray], content: list[np.ndarray | None]) -> dict:
        """One backend call for windows of one T: uint8 [sum b, T, H, W, 3] -> outputs."""
        hw = [c if c is not None else full_content_hw(f.shape[0], self.manifest.input_hw)
              for f, c in zip(frames, content)]
        return self.backend.infer(np.concatenate(frames), np.concatenate(hw).astype(np.int32))

    def finalize(self) -> None:
        self.backend.deactivate()
