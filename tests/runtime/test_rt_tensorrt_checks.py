"""TensorRT backend checks that need neither TensorRT nor a GPU: packages, plan selection by
TensorRT version and compute capability, sha256, engine I/O against the manifest, devices."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.backends import BACKENDS, open_backend
from runtime.backends.tensorrt import (
    PlanMismatchError,
    RunningPlatform,
    check_engine_io,
    cuda_call,
    import_cudart,
    missing_packages,
    parse_device,
    require_packages,
    select_plan,
)
from runtime.errors import ArtifactError, BackendUnavailableError, ConfigError
from runtime.manifest import load_manifest, sha256_file

REPO = Path(__file__).resolve().parents[2]
H100_TRT10 = RunningPlatform("10.16.1.11", "9.0", "NVIDIA H100 80GB HBM3")


@pytest.fixture()
def plans_dir(contract_artifacts, tmp_path):
    """Contract artifacts plus two plan files (fp16 for H100/TRT 10.16, fp16 for Orin/TRT 10.3)."""
    art = Path(shutil.copytree(contract_artifacts, tmp_path / "art"))
    data = json.loads((art / "manifest.json").read_text())
    for file, trt, cc in (("model.fp16.h100.trt.plan", "10.16.1.11", "9.0"),
                          ("model.fp16.orin.trt.plan", "10.3.0.30", "8.7")):
        (art / file).write_bytes(f"plan for {cc}".encode())
        data["artifacts"].append({"file": file, "kind": "tensorrt", "precision": "fp16",
                                  "tensorrt": trt, "compute_capability": cc,
                                  "sha256": sha256_file(art / file)})
    (art / "manifest.json").write_text(json.dumps(data))
    return art


def test_plan_for_this_machine_is_chosen_and_sha_checked(plans_dir):
    manifest = load_manifest(plans_dir)
    entry = select_plan(manifest, "fp16", H100_TRT10)
    assert entry["file"] == "model.fp16.h100.trt.plan"
    assert manifest.verified_path(entry) == plans_dir / "model.fp16.h100.trt.plan"
    orin = select_plan(manifest, "fp16", RunningPlatform("10.3.0.30", "8.7", "Orin"))
    assert orin["file"] == "model.fp16.orin.trt.plan"
    (plans_dir / "model.fp16.h100.trt.plan").write_bytes(b"truncated")
    with pytest.raises(ArtifactError, match="sha256 mismatch.*model.fp16.h100.trt.plan"):
        manifest.verified_path(entry)


def test_other_tensorrt_or_gpu_is_refused_with_the_rebuild_command(plans_dir):
    manifest = load_manifest(plans_dir)
    newer_trt = RunningPlatform("11.4.0.106", "9.0", "NVIDIA H100 80GB HBM3")
    with pytest.raises(PlanMismatchError) as err:
        select_plan(manifest, "fp16", newer_trt)
    message = str(err.value)
    assert "built with TensorRT 10.16.1.11, this machine runs 11.4.0.106" in message
    assert f"python -m export.tensorrt {plans_dir} --precision fp16" in message
    other_gpu = RunningPlatform("10.16.1.11", "8.9", "NVIDIA L4")
    with pytest.raises(PlanMismatchError, match=r"compute capability 9.0, this GPU \(NVIDIA L4\) "
                                                r"is 8.9"):
        select_plan(manifest, "fp16", other_gpu)
    with pytest.raises(ArtifactError, match="no TensorRT plan at int8.*--precision int8"):
        select_plan(manifest, "int8", H100_TRT10)


def _io(frames_dtype=np.uint8, frames_shape=(-1, -1, 64, 96, 3), outputs=None):
    io = {"frames": ("input", np.dtype(frames_dtype), frames_shape)}
    for name in outputs or ("scores", "labels", "masks", "boxes", "embeddings", "query_index"):
        io[name] = ("output", np.dtype(np.float32), (-1, 3))
    return io


def test_engine_io_is_compared_with_the_manifest(contract_artifacts):
    manifest = load_manifest(contract_artifacts)
    check_engine_io(_io(), manifest)
    with pytest.raises(ArtifactError, match="float32 .* manifest says uint8 \\[B, T, 64, 96, 3\\]"):
        check_engine_io(_io(frames_dtype=np.float32), manifest)
    with pytest.raises(ArtifactError, match="manifest says uint8"):
        check_engine_io(_io(frames_shape=(-1, -1, 64, 64, 3)), manifest)
    with pytest.raises(ArtifactError, match="lack \\['embeddings', 'query_index'\\]"):
        check_engine_io(_io(outputs=("scores", "labels", "masks", "boxes")), manifest)


def test_missing_packages_are_named():
    required = {"tensorrt": ("tensorrt",), "visdeploy-nope": ("visdeploy_nope.sub", "nope2")}
    missing = missing_packages(required)
    assert "visdeploy-nope" in missing
    assert ("tensorrt" in missing) == (importlib.util.find_spec("tensorrt") is None)
    with pytest.raises(BackendUnavailableError, match="needs visdeploy-nope.*pypi.nvidia.com"):
        require_packages({"visdeploy-nope": ("visdeploy_nope",)})


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT installed")
def test_asking_for_tensorrt_without_it_fails_before_any_frame(contract_artifacts):
    assert "tensorrt" in BACKENDS
    with pytest.raises(BackendUnavailableError, match="needs tensorrt.*--backend onnxruntime"):
        open_backend(load_manifest(contract_artifacts), "tensorrt", device="auto")


def test_devices():
    assert parse_device("auto") == 0 and parse_device("cuda") == 0 and parse_device("cuda:1") == 1
    with pytest.raises(ConfigError, match="runs on an NVIDIA GPU"):
        parse_device("cpu")


def test_cuda_errors_are_raised_with_their_name():
    if importlib.util.find_spec("cuda") is None:
        pytest.skip("cuda-python is not installed")
    cudart = import_cudart()
    with pytest.raises(RuntimeError, match="CUDA call failed with cudaError"):
        cuda_call(cudart, cudart.cudaSetDevice(4096))


def test_runtime_imports_no_tensorrt_or_cuda():
    code = ("import sys, runtime.backends.tensorrt, runtime.stream; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorrt', 'cuda', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
