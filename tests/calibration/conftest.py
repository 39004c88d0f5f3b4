"""Fixtures for the calibration tests; small graph generators live in calib_fixtures.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import calib_fixtures  # noqa: E402


@pytest.fixture
def small_manifest_dir(tmp_path) -> Path:
    """An artifact folder whose manifest (64x96 input, window 4/2) lists no artifacts."""
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(calib_fixtures.manifest_dict()))
    return folder
