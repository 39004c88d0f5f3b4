"""GPU + TensorRT: the plan runner gives the onnxruntime backend's outputs, per window shape.

Run with ``make test-gpu`` on a machine with an NVIDIA GPU, TensorRT 10 or 11 and cuda-python.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rt_fixtures as F

from runtime.backends import OnnxRuntimeBackend, open_backend
from runtime.manifest import load_manifest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def contract_plan(contract_artifacts, tmp_path_factory):
    """Contract artifacts with an fp32 plan built on this GPU."""
    pytest.importorskip("polygraphy")
    pytest.importorskip("cuda.bindings.runtime")
    pytest.importorskip("tensorrt", reason="needs TensorRT 10 or 11 (pip install -e '.[trt]')")
    from export.tensorrt import BuildOptions, build_engine

    art = Path(shutil.copytree(contract_artifacts, tmp_path_factory.mktemp("trt") / "art"))
    build_engine(art, BuildOptions("fp32", workspace_mb=256))
    return art


@pytest.mark.parametrize("b,t", [(1, 5), (2, 3), (1, 12)])
def test_tensorrt_matches_onnxruntime(contract_plan, b, t):
    manifest = load_manifest(contract_plan)
    frames = np.random.default_rng(b * 100 + t).integers(0, 255, (b, t, 64, 96, 3), np.uint8)
    with OnnxRuntimeBackend(manifest, device="cpu") as ort_backend:
        expected = ort_backend.infer(frames)
    with open_backend(manifest, "tensorrt", precision="fp32") as trt_backend:
        got = trt_backend.infer(frames)
        assert trt_backend.entry["compute_capability"] == trt_backend.platform.compute_capability
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        if np.issubdtype(want.dtype, np.integer):
            assert (got[name] == want).mean() > 0.99, name
        else:
            np.testing.assert_allclose(got[name], want, atol=2e-3, rtol=1e-3, err_msg=name)


def test_buffers_are_allocated_once_per_window_shape(contract_plan):
    frames, _ = F.make_clip(5, size=(64, 96), objects={1: ((8, 8), (1, 2))})
    with open_backend(load_manifest(contract_plan), "tensorrt") as backend:
        first = backend.infer(frames[None])
        buffers = backend._buffers[(1, 5, 64, 96, 3)]
        again = backend.infer(frames[None])
        assert backend._buffers[(1, 5, 64, 96, 3)] is buffers and len(backend._buffers) == 1
        backend.infer(frames[None, :3])
        assert len(backend._buffers) == 2
    assert not backend._buffers and backend.engine is None
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
