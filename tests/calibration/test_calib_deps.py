"""Dependency hygiene: exactly one onnxruntime distribution owns the ``onnxruntime`` import.

ModelOpt's ``[onnx]`` extra pins ``onnxruntime-gpu``, whose files overwrite the ``onnxruntime``
package's in site-packages (two distributions, one import; pip check stays silent). The ``quant``
extra therefore installs ModelOpt without that extra (pyproject.toml).
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest

OTHER_ORT_DISTRIBUTIONS = ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                           "onnxruntime-training", "ort-nightly", "ort-nightly-gpu")


def _owners_of_onnxruntime_package() -> list[str]:
    """Names of installed distributions that ship files under ``onnxruntime/``."""
    owners = []
    for dist in md.distributions():
        files = dist.files or []
        if any(f.parts and f.parts[0] == "onnxruntime" for f in files):
            owners.append(dist.metadata["Name"].lower())
    return sorted(set(owners))


def test_onnxruntime_is_installed_once():
    assert md.version("onnxruntime")
    for name in OTHER_ORT_DISTRIBUTIONS:
        with pytest.raises(md.PackageNotFoundError):
            md.distribution(name)
    assert _owners_of_onnxruntime_package() == ["onnxruntime"]


def test_imported_onnxruntime_belongs_to_the_onnxruntime_distribution():
    import onnxruntime

    dist = md.distribution("onnxruntime")
    owned = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    assert Path(onnxruntime.__file__).resolve() in owned
    assert onnxruntime.__version__ == dist.version
    assert "CPUExecutionProvider" in onnxruntime.get_available_providers()


def test_modelopt_is_installed_without_its_onnx_extra_pulling_onnxruntime_gpu():
    try:
        dist = md.distribution("nvidia-modelopt")
    except md.PackageNotFoundError:
        pytest.skip("nvidia-modelopt not installed (pip install -e '.[quant]')")
    gpu_reqs = [r for r in dist.requires or [] if r.lower().startswith("onnxruntime-gpu")]
    # ModelOpt may list onnxruntime-gpu, but only behind its [onnx] extra, which we do not install.
    assert all("extra" in r for r in gpu_reqs), gpu_reqs


def test_calibration_imports_no_torch_and_modelopt_lazily():
    import subprocess
    import sys

    code = ("import sys, calibration.calibrate, calibration.__main__, calibration.ap_metric; "
            "print(sorted(m for m in ('torch', 'modelopt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
