"""Backend lifecycle shared by every engine runner (Polygraphy-style activate/infer/deactivate).

A backend is stateless per call: ``infer(frames, content_hw)`` maps one uint8 batch
``[B, T, H, W, 3]`` (and the real image size inside each letterboxed clip, int32 ``[B, 2]``) to the
contract's output dict (docs/contract.md) and keeps nothing between calls, so tracking state
never lives here.
"""

from __future__ import annotations

import time

import numpy as np

from runtime.errors import ArtifactError, BackendInputError, EngineError
from runtime.manifest import CONTENT_HW, FRAMES, Manifest

OUTPUT_NAMES = ("scores", "labels", "masks", "boxes", "embeddings", "query_index")


class Backend:
    """Base runner. Subclasses implement ``activate_impl``, ``infer_impl``, ``deactivate_impl``.

    Use as a context manager (``with backend: backend.infer(x)``) or call activate/deactivate.
    ``last_inference_ms`` holds the wall time of the latest ``infer`` call.
    """

    name = "base"
    selection = ""  # how ``--backend auto`` chose this backend, and why (empty when named)

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
    def infer(self, frames: np.ndarray, content_hw: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """uint8 ``[B, T, H, W, 3]`` RGB (+ int32 ``[B, 2]`` (h, w) of the real image in each
        letterboxed clip; None = the whole input) -> {scores [B,K], labels [B,K],
        masks [B,K,T,H/4,W/4], boxes [B,K,T,4], embeddings [B,K,D], query_index [B,K]}.

        ``content_hw`` reaches the engine only when the artifact declares it (manifest
        ``inputs``); older artifacts ignore it."""
        if not self.is_active:
            raise RuntimeError(f"{self.name} backend is not active; use `with backend:` first")
        self.check_input(frames)
        content_hw = self.check_content_hw(content_hw, frames.shape[0])
        start = time.perf_counter()
        try:
            outputs = self.infer_impl(np.ascontiguousarray(frames), content_hw)
        except (RuntimeError, ValueError):
            raise
        except Exception as err:  # engines raise their own untyped errors (onnxruntime's Fail)
            raise EngineError(f"{self.name} failed on a window of shape {frames.shape}: "
                              f"{type(err).__name__}: {err}") from err
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

    def check_content_hw(self, content_hw: np.ndarray | None, batch: int) -> np.ndarray:
        """int32 ``[B, 2]`` with 1 <= h <= H and 1 <= w <= W; None -> the whole input per row."""
        h, w = self.manifest.input_hw
        if content_hw is None:
            return full_content_hw(batch, (h, w))
        hw = np.asarray(content_hw)
        if hw.shape != (batch, 2) or not np.issubdtype(hw.dtype, np.integer):
            raise BackendInputError(f"content_hw must be int32 [B={batch}, 2] (height, width of "
                                    f"the image inside the letterbox); got {hw.dtype} {hw.shape}")
        if (hw < 1).any() or (hw[:, 0] > h).any() or (hw[:, 1] > w).any():
            raise BackendInputError(f"content_hw rows must lie in [1, {h}] x [1, {w}] (the model "
                                    f"input); got {hw.tolist()}")
        return np.ascontiguousarray(hw, np.int32)

    def check_outputs(self, outputs: dict[str, np.ndarray], batch_frames: tuple[int, int]) -> None:
        """Raise ``ArtifactError`` when the engine's outputs break the contract (docs/contract.md §1)."""
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

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        """``frames`` uint8 [B, T, H, W, 3], ``content_hw`` int32 [B, 2] (always given; feed it
        to the engine when the artifact declares it)."""
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        raise NotImplementedError


def full_content_hw(batch: int, input_hw: tuple[int, int]) -> np.ndarray:
    """int32 ``[batch, 2]``: every clip fills the whole (H, W) input (no padding)."""
    return np.tile(np.asarray(input_hw, np.int32), (batch, 1))


def engine_feeds(input_names, frames: np.ndarray, content_hw: np.ndarray | None = None) -> dict:
    """The feed dict for an engine whose inputs are ``input_names``: ``frames`` always,
    ``content_hw`` (int32 [B, 2], None = the whole input) only when the engine declares it.
    Every caller that feeds an engine (runtime, calibration, export parity, benchmarks) builds
    its feeds here, so none forgets the second input."""
    feeds = {FRAMES: frames}
    if CONTENT_HW in input_names:
        if content_hw is None:
            content_hw = full_content_hw(frames.shape[0], frames.shape[2:4])
        feeds[CONTENT_HW] = np.ascontiguousarray(content_hw, np.int32)
    unknown = [n for n in input_names if n not in feeds]
    if unknown:
        raise ArtifactError(f"engine inputs {unknown} are not part of the contract "
                            f"({FRAMES}, {CONTENT_HW}); re-export with the current exporter")
    return feeds


# name -> (dtype, dims) of the contract outputs (docs/contract.md); letters are resolved by
# ``contract_outputs``: B and T stay free, K and D come from the manifest, H/4 and W/4 from its input
CONTRACT_OUTPUTS = {
    "scores": ("float32", ("B", "K")),
    "labels": ("int32", ("B", "K")),
    "masks": ("float32", ("B", "K", "T", "H/4", "W/4")),
    "boxes": ("float32", ("B", "K", "T", 4)),
    "embeddings": ("float32", ("B", "K", "D")),
    "query_index": ("int32", ("B", "K")),
}


def contract_outputs(manifest: Manifest) -> dict[str, tuple[np.dtype, tuple[int | None, ...], str]]:
    """name -> (dtype, dims with None where free (B, T), text such as ``float32 [B, K, D]``)."""
    h, w = manifest.input_hw
    sizes = {"K": manifest.data["outputs"]["K"], "D": manifest.data["outputs"]["embedding_dim"],
             "H/4": h // 4, "W/4": w // 4}
    specs = {}
    for name, (dtype, dims) in CONTRACT_OUTPUTS.items():
        resolved = tuple(d if isinstance(d, int) else sizes.get(d) for d in dims)
        shown = ", ".join(str(sizes[d]) if d in ("H/4", "W/4") else str(d) for d in dims)
        specs[name] = (np.dtype(dtype), resolved, f"{dtype} [{shown}]")
    return specs
