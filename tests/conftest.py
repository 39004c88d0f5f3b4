"""Shared fixtures. Tiny artifacts are generated once per session (no binaries in the repo).

- ``tiny_tevit_artifacts``: ``artifacts/``-style directory with the tiny TeViT ``model.onnx`` and
  ``manifest.json`` (repository checkpoint if present, else seeded random init), exported once.
- ``key_table``: the official state-dict key tables in ``tests/data/key_tables`` (official key
  names and shapes, derived from each official repository's module definitions; the header of
  each file names the config and commit).
- GPU tests carry ``@pytest.mark.gpu`` and are skipped when no CUDA device is visible.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

KEY_TABLES = Path(__file__).resolve().parent / "data" / "key_tables"


def read_key_table(name: str) -> tuple[dict[str, tuple[int, ...]], int | None]:
    """``tests/data/key_tables/<name>_state_dict.tsv`` as (official key -> shape, element count
    stated in its header, if any)."""
    path = KEY_TABLES / f"{name}_state_dict.tsv"
    if not path.is_file():
        pytest.fail(f"key table {path} is missing from the repository")
    shapes, stated = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            found = re.search(r"([\d,]+) tensor elements", line)
            stated = int(found.group(1).replace(",", "")) if found else stated
            continue
        key, shape = line.split("\t")
        if key != "key":
            shapes[key] = tuple(ast.literal_eval(shape))
    return shapes, stated


@pytest.fixture(scope="session")
def key_table():
    """``read_key_table`` for tests: ``shapes, stated = key_table("ifc_r50")``."""
    return read_key_table


def _cuda_available() -> bool:
    """An NVIDIA GPU is visible: through CUDA PyTorch when installed, else nvidia-smi (Jetson and
    TensorRT-only machines have no CUDA PyTorch)."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        probe = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and "GPU" in probe.stdout


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (gpu marker); run `make test-gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_tevit_export(tmp_path_factory):
    """ExportResult of the tiny TeViT (ONNX + manifest), exported once per test session."""
    from export.artifacts import export_artifacts

    out = tmp_path_factory.mktemp("artifacts") / "tevit"
    return export_artifacts("tevit", "tiny", out)


@pytest.fixture(scope="session")
def tiny_tevit_artifacts(tiny_tevit_export):
    """Path of the tiny TeViT artifact directory (model.onnx + manifest.json)."""
    return tiny_tevit_export.directory


@pytest.fixture
def tiny_tevit_artifacts_copy(tiny_tevit_artifacts, tmp_path):
    """A private copy of the tiny TeViT artifacts that a test may corrupt."""
    dest = tmp_path / "tevit"
    shutil.copytree(tiny_tevit_artifacts, dest)
    return dest
