"""Backend lifecycle shared by every engine runner (Polygraphy-style activate/infer/deactivate).

A backend is stateless per call: ``infer(frames)`` maps one uint8 batch ``[B, T, H, W, 3]`` to
the DESIGN §4 output dict and keeps nothing between calls, so tracking state never lives here.
"""

from __future__ import annotations

import time

import numpy as np

from runtime.errors import ArtifactError, BackendInputError
from runtime.manifest import Manifest

OUTPUT_NAMES = ("scores", "labels", "masks", "boxes", "embeddings", "query_index")


class Backend:
    """Base runner. Subclasses implement ``activate_impl``, ``infer_impl``, ``deactivate_impl``.

    Use as a context manager (``with backend: backend.infer(x)``) or call activate/deactivate.
    ``last_inference_ms`` holds the wall time of the latest ``infer`` call.
    """

    name = "base"

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.is_active = False
        self.last_inference_ms = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self) -> Backend:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> Backend:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # -- inference -------------------------------------------------------------------------
    def infer(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 ``[B, T, H, W, 3]`` RGB -> {scores [B,K], labels [B,K], masks [B,K,T,H/4,W/4],
        boxes [B,K,T,4], embeddings [B,K,D], query_index [B,K]}."""
        if not self.is_active:
            raise RuntimeError(f"{self.name} backend is not active; use `with backend:` first")
        self.check_input(frames)
        start = time.perf_counter()
        outputs = self.infer_impl(np.ascontiguousarray(frames))
        self.last_inference_ms = (time.perf_counter() - start) * 1e3
        self.check_outputs(outputs, frames.shape[:2])
        return outputs

    def check_input(self, frames: np.ndarray) -> None:
        """Raise ``BackendInputError`` unless ``frames`` follows the manifest's input contract."""
        h, w = self.manifest.input_hw
        t_min, _, t_max = self.manifest.frames_range
        b_min, _, b_max = self.manifest.batch_range
        expected = f"uint8 [B in {b_min}..{b_max}, T in {t_min}..{t_max}, {h}, {w}, 3] RGB"
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            got = getattr(frames, "dtype", type(frames).__name__)
            raise BackendInputError(f"frames must be {expected}; got dtype {got}")
        if frames.ndim != 5 or frames.shape[2:] != (h, w, 3):
            raise BackendInputError(f"frames must be {expected}; got shape {frames.shape}. "
                                    "Letterbox frames with runtime.windows.Letterbox first")
        b, t = frames.shape[:2]
        if not (b_min <= b <= b_max and t_min <= t <= t_max):
            raise BackendInputError(f"frames must be {expected}; got B={b}, T={t}. Pad short "
                                    "windows with runtime.windows.pad_cyclic")

    def check_outputs(self, outputs: dict[str, np.ndarray], batch_frames: tuple[int, int]) -> None:
        """Raise ``ArtifactError`` when the engine's outputs break the DESIGN §4 contract."""
        missing = [n for n in OUTPUT_NAMES if n not in outputs]
        if missing:
            raise ArtifactError(f"{self.name}: engine outputs lack {missing} (has "
                                f"{sorted(outputs)}); re-export the model with the current exporter")
        b, t = batch_frames
        k = self.manifest.data["outputs"]["K"]
        h, w = self.manifest.input_hw
        want = {"scores": (b, k), "labels": (b, k), "masks": (b, k, t, h // 4, w // 4),
                "boxes": (b, k, t, 4), "query_index": (b, k)}
        for name, shape in want.items():
            if outputs[name].shape != shape:
                raise ArtifactError(f"{self.name}: output {name} has shape {outputs[name].shape}, "
                                    f"manifest says {shape}; artifact and manifest.json disagree")

    # -- to implement ----------------------------------------------------------------------
    def activate_impl(self) -> None:
        raise NotImplementedError

    def infer_impl(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        raise NotImplementedError
