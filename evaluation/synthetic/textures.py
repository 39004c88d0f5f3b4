"""Backgrounds and object textures from the images bundled inside scikit-image's wheel.

Only files shipped in ``skimage/data/`` are read (found without importing scikit-image), so
nothing is ever downloaded. Images are cached per :class:`TextureBank` instance.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from evaluation.errors import SyntheticConfigError

BACKGROUNDS: tuple[str, ...] = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
    "ihc.png", "motorcycle_left.png", "retina.jpg")
"""Colour images used as (panning) backgrounds."""

TEXTURES: tuple[str, ...] = ("brick.png", "grass.png", "gravel.png", "moon.png", "camera.png",
                             "coins.png")
"""Grey images used as object textures (modulating each object's colour)."""


def skimage_data_dir() -> Path:
    """Folder of the images bundled with scikit-image; raises when it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SyntheticConfigError(
            "scikit-image is not installed; the synthetic videos use its bundled images. "
            "Install the eval extra: pip install -e '.[eval]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class TextureBank:
    """Loads bundled images on first use and keeps them for this instance."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or skimage_data_dir()
        self._cache: dict[str, np.ndarray] = {}

    def _read(self, name: str, flags: int) -> np.ndarray:
        key = f"{name}:{flags}"
        if key not in self._cache:
            image = cv2.imread(str(self.folder / name), flags)
            if image is None:
                raise SyntheticConfigError(
                    f"cannot read {self.folder / name}; this scikit-image install lacks its "
                    "bundled images (reinstall scikit-image from its wheel)")
            self._cache[key] = image
        return self._cache[key]

    def background(self, index: int, height: int, width: int) -> np.ndarray:
        """``uint8[height, width, 3]`` RGB: background ``index`` resized to cover, centre crop."""
        image = cv2.cvtColor(self._read(BACKGROUNDS[index % len(BACKGROUNDS)],
                                        cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        scale = max(height / image.shape[0], width / image.shape[1])
        size = (max(width, round(image.shape[1] * scale)),
                max(height, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        y0, x0 = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        return np.ascontiguousarray(image[y0:y0 + height, x0:x0 + width])

    def texture(self, index: int) -> np.ndarray:
        """``float32[h, w]`` grey texture ``index`` in [0, 1]."""
        gray = self._read(TEXTURES[index % len(TEXTURES)], cv2.IMREAD_GRAYSCALE)
        return gray.astype(np.float32) / 255.0
