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


# -- plugins and optimisation profiles (issue 21 items 4 and 7) ------------------------------
def test_plan_plugins_are_registered_or_the_plan_is_refused(fake_tensorrt, tmp_path):
    """A RoiAlign plan needs ROIAlign_TRT: registered by init_libnvinfer_plugins before the
    check (NVIDIA's samples call it before deserialising); a missing one is named."""
    from runtime.backends.tensorrt import ensure_plugins

    entry = {"file": "model.fp16.h100.trt.plan", "tensorrt_plugins": [
        {"op": "RoiAlign", "plugin": "ROIAlign_TRT", "version": "2", "namespace": ""}]}
    trt = fake_tensorrt()
    assert ensure_plugins(trt, trt.Logger(), entry) == entry["tensorrt_plugins"]
    assert trt.calls == ["init_libnvinfer_plugins"]
    older = fake_tensorrt(version="10.0.1.6", standard=[("ROIAlign_TRT", "1")])
    with pytest.raises(ArtifactError, match="needs the TensorRT plugins ROIAlign_TRT version 2, "
                                            "which are not registered in TensorRT 10.0.1.6"):
        ensure_plugins(older, older.Logger(), entry)
    custom = {"file": "p.plan", "tensorrt_plugins": [
        {"op": "MyOp", "plugin": "MyOp", "version": "1", "namespace": "",
         "library": str(tmp_path / "libmyop.so")}]}
    with pytest.raises(BackendUnavailableError, match="p.plan: plugin library .*libmyop.so does "
                                                      "not exist"):
        ensure_plugins(trt, trt.Logger(), custom)
    assert ensure_plugins(trt, trt.Logger(), {"file": "old.plan"}) == []  # older manifests


def _profile(t_min, t_max, b_max=1, hw=(64, 96)):
    h, w = hw
    return {"frames": ((1, t_min, h, w, 3), (1, t_max, h, w, 3), (b_max, t_max, h, w, 3)),
            "content_hw": ((1, 2), (1, 2), (b_max, 2))}


def test_profile_must_cover_the_runtime_window(contract_artifacts, fixed_t_artifacts):
    from runtime.backends.tensorrt import check_profile, outside_profile

    manifest = load_manifest(contract_artifacts)  # window 5, T in 1..12
    assert check_profile(_profile(1, 12, 2), manifest, "fp16") == []
    warnings = check_profile(_profile(5, 5), manifest, "fp16")  # the narrow Jetson profile
    assert len(warnings) == 1 and "shorter than 5 frames" in warnings[0]
    with pytest.raises(ArtifactError, match=r"frames \(1, 5, 64, 96, 3\) is outside the plan's "
                                            r"profile.*--frames 1,5,5 --batch 1,1,1"):
        check_profile(_profile(1, 3), manifest, "fp16")
    assert outside_profile(_profile(1, 12), {"content_hw": (2, 2)}) == [
        "content_hw (2, 2) is outside the plan's profile [(1, 2) .. (1, 2)]"]
    fixed = load_manifest(fixed_t_artifacts)  # VisTR-like: T fixed to 8, no short windows
    assert check_profile(_profile(8, 8), fixed, "fp32") == []


class _FakeEngine:
    """Engine surface the backend reads: I/O tensors and optimisation profile 0."""

    def __init__(self, trt, t_max):
        self.trt, self.t_max = trt, t_max
        self.names = ["frames", "content_hw", "scores", "labels", "masks", "boxes", "embeddings",
                      "query_index"]
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return "in" if name in ("frames", "content_hw") else "out"

    def get_tensor_dtype(self, name):
        return {"frames": "u8", "content_hw": "i32"}.get(name, "f32")

    def get_tensor_shape(self, name):
        return {"frames": (-1, -1, 64, 96, 3), "content_hw": (-1, 2)}.get(name, (-1, 3))

    def get_tensor_profile_shape(self, name, index):
        return _profile(1, self.t_max)[name]

    def create_execution_context(self):
        return object()


def _activate_with_fakes(monkeypatch, plans_dir, trt):
    """Run ``TensorRTBackend.activate`` against stand-in tensorrt and cuda modules."""
    import types

    from runtime.backends import tensorrt as backend_module

    trt.TensorIOMode = types.SimpleNamespace(INPUT="in")
    trt.nptype = {"u8": np.uint8, "i32": np.int32, "f32": np.float32}.get
    trt.deserialized = []

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            trt.deserialized.append(data)
            return _FakeEngine(trt, trt.t_max)

    trt.Runtime = Runtime
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(backend_module, "require_packages", lambda: None)
    cudart = types.SimpleNamespace(cudaError_t=types.SimpleNamespace(cudaSuccess=0),
                                   cudaStreamCreate=lambda: (0, 1),
                                   cudaStreamDestroy=lambda stream: (0,))
    monkeypatch.setattr(backend_module, "import_cudart", lambda: cudart)
    monkeypatch.setattr(backend_module, "running_platform", lambda *a: H100_TRT10)
    backend = backend_module.TensorRTBackend(load_manifest(plans_dir), precision="fp16")
    backend.activate()
    return backend


def test_activate_refuses_missing_plugins_before_deserialising(monkeypatch, plans_dir,
                                                               fake_tensorrt):
    data = json.loads((plans_dir / "manifest.json").read_text())
    plan = next(e for e in data["artifacts"] if e["file"] == "model.fp16.h100.trt.plan")
    plan["tensorrt_plugins"] = [{"op": "RoiAlign", "plugin": "ROIAlign_TRT", "version": "2",
                                 "namespace": ""}]
    (plans_dir / "manifest.json").write_text(json.dumps(data))
    trt = fake_tensorrt(version="10.16.1.11", standard=[])
    trt.t_max = 12
    with pytest.raises(ArtifactError, match="needs the TensorRT plugins ROIAlign_TRT version 2"):
        _activate_with_fakes(monkeypatch, plans_dir, trt)
    assert trt.deserialized == [] and trt.calls == ["init_libnvinfer_plugins"]


def test_activate_checks_the_plan_profile_before_the_first_frame(monkeypatch, plans_dir,
                                                                 fake_tensorrt):
    trt = fake_tensorrt(version="10.16.1.11")
    trt.t_max = 3  # built with --frames 1,3,3, but the manifest's window is 5 frames
    with pytest.raises(ArtifactError, match=r"outside the plan's profile.*--frames 1,5,5"):
        _activate_with_fakes(monkeypatch, plans_dir, trt)
    trt.t_max = 12
    backend = _activate_with_fakes(monkeypatch, plans_dir, trt)
    assert backend.profile["frames"][2] == (1, 12, 64, 96, 3) and len(trt.deserialized) == 1


def test_refused_input_shape_is_reported_with_the_profile(monkeypatch, plans_dir, fake_tensorrt):
    """``set_input_shape`` returning False (a shape outside the profile) is an error, not a
    silent wrong result."""
    from runtime.errors import BackendInputError

    trt = fake_tensorrt(version="10.16.1.11")
    trt.t_max = 12
    backend = _activate_with_fakes(monkeypatch, plans_dir, trt)

    class Context:
        def set_input_shape(self, name, shape):
            return name != "content_hw" or shape[0] == 1

    backend.context = Context()
    backend._set_input_shapes((1, 5, 64, 96, 3))
    with pytest.raises(BackendInputError, match=r"content_hw \(2, 2\) is outside the plan's "
                                                r"profile.*--batch MIN,OPT,MAX"):
        backend._set_input_shapes((2, 5, 64, 96, 3))
