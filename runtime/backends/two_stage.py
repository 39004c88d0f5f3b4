"""Two-stage backends (docs/contract.md): per-frame features are computed once per frame.

The manifest lists a frame stage (``frames`` uint8 [B, T, H, W, 3] -> per-frame features, each
[B, T, ...]) and a clip stage (those features -> the contract outputs). Overlapping windows
share frames, so the backend keeps the features of recent frames in a small cache keyed by the
frame's content (a BLAKE2 digest of its letterboxed pixels, ~0.2 ms for 192x320): a frame seen
in an earlier window is never run through the backbone again, and cyclic padding (VisTR-style
repeated frames) costs nothing extra. Keying by content rather than by frame index keeps the
cache correct when a stream restarts or frame indices are reused; the only state is this cache,
which never affects results, only speed.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from runtime.backends.base import OUTPUT_NAMES
from runtime.backends.onnxrt import OnnxRuntimeBackend, check_session_io, open_session
from runtime.manifest import CONTENT_HW, FRAMES, Manifest


def frame_digest(frame: np.ndarray) -> bytes:
    """Content key of one uint8 ``[H, W, 3]`` frame."""
    return hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()


class FeatureCache:
    """LRU map from frame digest to that frame's features (a tuple of ``[...]`` arrays, no B/T axes)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: OrderedDict[bytes, tuple[np.ndarray, ...]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> tuple[np.ndarray, ...] | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: bytes, value: tuple[np.ndarray, ...]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.hits = self.misses = 0


class StagedFeatures:
    """The two-stage inference of any runner (onnxruntime, OpenVINO): per-frame features from a
    content-keyed ``FeatureCache``, new frames through the frame stage, then the clip stage.

    Mixed into a ``Backend`` that provides ``manifest`` and two methods:
    ``run_frame_stage(frames uint8 [1, n, H, W, 3]) -> [features [1, n, ...] in feature_names
    order]`` and ``run_clip_stage(feeds) -> {output name: array}``. ``frames_computed`` counts
    frames that went through the frame stage.
    """

    def init_stages(self, manifest: Manifest, cache_frames: int | None) -> None:
        self.cache = FeatureCache(cache_frames or 2 * manifest.frames_range[2])
        self.feature_names: list[str] = []
        self.clip_takes_content_hw = False

    @property
    def frames_computed(self) -> int:
        """Frames that went through the frame stage since activation (the cache's misses)."""
        return self.cache.misses

    def link_stages(self, wanted: list[str]) -> None:
        """Remember the clip stage's inputs ``wanted`` (features, then maybe ``content_hw``) and
        empty the cache; ``check_session_io`` has checked the hand-over against the manifest."""
        self.feature_names = [n for n in wanted if n != CONTENT_HW]
        self.clip_takes_content_hw = CONTENT_HW in wanted
        self.cache.clear()

    def infer_impl(self, frames: np.ndarray, content_hw: np.ndarray) -> dict[str, np.ndarray]:
        b, t = frames.shape[:2]
        flat = frames.reshape(b * t, *frames.shape[2:])
        keys = [frame_digest(f) for f in flat]
        features: dict[bytes, tuple[np.ndarray, ...]] = {}
        missing: list[int] = []
        for i, key in enumerate(keys):
            cached = features.get(key) or self.cache.get(key)
            if cached is not None:
                features[key] = cached
                self.cache.hits += 1
            elif not any(keys[j] == key for j in missing):
                missing.append(i)
        self.cache.misses += len(missing)
        t_max = self.manifest.frames_range[2]
        for start in range(0, len(missing), t_max):  # new frames as one clip of <= T_max frames
            chunk = missing[start:start + t_max]
            computed = self.run_frame_stage(flat[chunk][None])
            for n, i in enumerate(chunk):
                value = tuple(np.ascontiguousarray(f[0, n]) for f in computed)
                features[keys[i]] = value
                self.cache.put(keys[i], value)
        stacked = [np.stack([features[k][j] for k in keys]).reshape(b, t, *features[keys[0]][j].shape)
                   for j in range(len(self.feature_names))]
        feeds = dict(zip(self.feature_names, stacked, strict=True))
        if self.clip_takes_content_hw:
            feeds[CONTENT_HW] = content_hw
        return self.run_clip_stage(feeds)


class TwoStageOnnxBackend(StagedFeatures, OnnxRuntimeBackend):
    """``frame_stage.onnx`` + ``clip_stage.onnx`` with a per-frame feature cache.

    Same arguments as ``OnnxRuntimeBackend``, plus ``cache_frames`` (default: twice the
    manifest's largest T). ``frames_computed`` counts frames that went through the frame stage.
    """

    name = "onnxruntime-two-stage"

    def __init__(self, manifest: Manifest, *, cache_frames: int | None = None, **options) -> None:
        super().__init__(manifest, **options)
        self.init_stages(manifest, cache_frames)
        self.frame_session = self.clip_session = None

    def activate_impl(self) -> None:
        opts = {"device": self.device, "optimization": self.optimization, "threads": self.threads,
                "spin_wait": self.spin_wait}
        frame_entry = self.manifest.artifact("onnx", self.precision, stage="frame")
        clip_entry = self.manifest.artifact("onnx", self.precision, stage="clip")
        self.frame_session = open_session(self.manifest, frame_entry, **opts)
        self.clip_session = open_session(self.manifest, clip_entry, **opts)
        self.providers = self.frame_session.get_providers()
        check_session_io(self.manifest, [(frame_entry, self.frame_session),
                                         (clip_entry, self.clip_session)])
        self.link_stages([i.name for i in self.clip_session.get_inputs()])

    def run_frame_stage(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.frame_session.run(self.feature_names, {FRAMES: frames})

    def run_clip_stage(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.clip_session.run(list(OUTPUT_NAMES), feeds)
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    def deactivate_impl(self) -> None:
        self.frame_session = self.clip_session = self.session = None
        self.cache.clear()
