"""Backends: onnxruntime on a real contract graph, input checks, artifact errors, registry."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import rt_fixtures as F

from runtime.backends import BACKENDS, OnnxRuntimeBackend, open_backend, select_providers
from runtime.errors import (
    ArtifactError,
    BackendInputError,
    BackendUnavailableError,
    ConfigError,
    EngineError,
    ManifestError,
)
from runtime.manifest import load_manifest, sha256_file


@pytest.fixture()
def artifact_copy(contract_artifacts, tmp_path):
    return shutil.copytree(contract_artifacts, tmp_path / "art")


def _frames(b=1, t=5, h=64, w=96):
    return np.random.default_rng(0).integers(0, 255, (b, t, h, w, 3), dtype=np.uint8)


def test_onnxruntime_outputs_follow_contract(contract_artifacts):
    with OnnxRuntimeBackend(load_manifest(contract_artifacts), device="cpu") as backend:
        out = backend.infer(_frames(b=2, t=3))
        assert backend.providers == ["CPUExecutionProvider"]
        level = backend.session.get_session_options().graph_optimization_level
        assert level == ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        assert backend.last_inference_ms > 0
    assert not backend.is_active
    assert out["scores"].shape == (2, 3) and out["labels"].dtype == np.int32
    assert out["masks"].shape == (2, 3, 3, 16, 24) and out["boxes"].shape == (2, 3, 3, 4)
    assert np.allclose(np.linalg.norm(out["embeddings"], axis=-1), 1)


def test_an_engine_failure_is_reported_as_a_runtime_engine_error(contract_artifacts):
    """onnxruntime raises its own ``Fail`` (a plain Exception subclass); the runtime reports it
    as EngineError (a RuntimeError) so the CLI writes the finished frames and exits 1."""
    backend = OnnxRuntimeBackend(load_manifest(contract_artifacts), device="cpu")
    with backend:
        real = backend.session

        class Failing:
            def run(self, *args):
                raise ort.capi.onnxruntime_pybind11_state.Fail("kernel failed")

        backend.session = Failing()
        with pytest.raises(EngineError, match=r"onnxruntime failed on a window of shape \(1, 5, 64, 96, 3\): Fail: kernel failed"):
            backend.infer(_frames())
        backend.session = real


def test_contract_graph_masks_follow_colours(contract_artifacts):
    frames, masks = F.make_clip(4, size=(64, 96), objects={2: ((8, 8), (0, 4))})
    with open_backend(load_manifest(contract_artifacts), device="cpu") as backend:
        out = backend.infer(frames[None])
    assert out["scores"][0].round(2).tolist() == [0.0, 0.0, 1.0]
    low = masks[2, 0].reshape(16, 4, 24, 4).mean(axis=(1, 3))
    assert np.abs(out["masks"][0, 2, 0] - low).max() < 0.05
    assert out["boxes"][0, 2, 0].tolist() == [8, 8, 28, 28]


@pytest.mark.parametrize("frames,match", [
    (np.zeros((1, 5, 64, 96, 3), np.float32), "dtype float32"),
    (np.zeros((1, 5, 60, 96, 3), np.uint8), "got shape"),
    (np.zeros((5, 64, 96, 3), np.uint8), "got shape"),
    (np.zeros((1, 13, 64, 96, 3), np.uint8), "T=13"),
    (np.zeros((3, 5, 64, 96, 3), np.uint8), "B=3"),
])
def test_input_checked_against_manifest(contract_artifacts, frames, match):
    with open_backend(load_manifest(contract_artifacts), device="cpu") as backend:
        with pytest.raises(BackendInputError, match=match):
            backend.infer(frames)


def test_infer_before_activate_is_refused(contract_artifacts):
    backend = open_backend(load_manifest(contract_artifacts), device="cpu")
    with pytest.raises(RuntimeError, match="not active"):
        backend.infer(_frames())


def test_sha256_mismatch_is_refused(artifact_copy):
    with open(artifact_copy / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch.*re-export"):
        open_backend(load_manifest(artifact_copy), device="cpu").activate()


def test_missing_artifact_file_and_precision(artifact_copy):
    with pytest.raises(ArtifactError, match="no onnx artifact at fp16.*have: onnx/fp32"):
        open_backend(load_manifest(artifact_copy), device="cpu", precision="fp16").activate()
    (artifact_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="artifact missing"):
        open_backend(load_manifest(artifact_copy), device="cpu").activate()


def _rewrite_manifest(directory, edit):
    data = json.loads((directory / "manifest.json").read_text())
    edit(data)
    (directory / "manifest.json").write_text(json.dumps(data))


def test_truncated_onnx_with_matching_checksum_is_refused(artifact_copy):
    path = artifact_copy / "model.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _rewrite_manifest(artifact_copy, lambda d: d["artifacts"][0].update(sha256=sha256_file(path)))
    with pytest.raises(ArtifactError, match="cannot load.*re-export"):
        open_backend(load_manifest(artifact_copy), device="cpu").activate()


def test_engine_io_disagreeing_with_manifest_is_refused(artifact_copy):
    _rewrite_manifest(artifact_copy, lambda d: d["input"].update(height=96))
    with pytest.raises(ArtifactError, match="manifest says uint8 \\[B, T, 96, 96, 3\\]"):
        open_backend(load_manifest(artifact_copy), device="cpu").activate()


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json.*export"):
        load_manifest(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="tensorrt is installed; the refusal cannot be observed")
def test_tensorrt_without_the_package_is_a_clear_error(contract_artifacts):
    assert "tensorrt" in BACKENDS
    with pytest.raises(BackendUnavailableError, match="TensorRT backend.*--backend onnxruntime"):
        open_backend(load_manifest(contract_artifacts), "tensorrt")


def test_unknown_backend_and_device(contract_artifacts):
    manifest = load_manifest(contract_artifacts)
    with pytest.raises(ConfigError, match="unknown backend 'tflite'"):
        open_backend(manifest, "tflite")
    with pytest.raises(ConfigError, match="unknown device"):
        select_providers("npu", ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="optimization"):
        OnnxRuntimeBackend(manifest, optimization="max")


def test_provider_selection():
    cpu_only = ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", cpu_only) == cpu_only
    assert select_providers("auto", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("tensorrt", gpu) == gpu
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu.*--device cpu"):
        select_providers("cuda", cpu_only)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="this onnxruntime has CUDA; the refusal cannot be observed")
def test_cuda_without_gpu_is_refused_at_activation(contract_artifacts):
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        open_backend(load_manifest(contract_artifacts), device="cuda").activate()


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                    reason="needs onnxruntime-gpu and an NVIDIA GPU")
def test_cuda_matches_cpu(contract_artifacts):
    manifest = load_manifest(contract_artifacts)
    frames = _frames()
    with open_backend(manifest, device="cpu") as cpu, open_backend(manifest, device="cuda") as gpu:
        a, b = cpu.infer(frames), gpu.infer(frames)
    assert np.abs(a["masks"] - b["masks"]).max() < 1e-4


# -- issue 20 item 4: output shapes, dtypes and declared inputs are checked on activation ------
def _save_graph(directory, model):
    import onnx

    onnx.save(model, directory / "model.onnx")
    _rewrite_manifest(directory, lambda d: d["artifacts"][0].update(
        sha256=sha256_file(directory / "model.onnx")))


def _int64_labels(model):
    from onnx import TensorProto

    cast = next(n for n in model.graph.node if n.output[0] == "labels")
    cast.attribute[0].i = TensorProto.INT64
    next(o for o in model.graph.output if o.name == "labels").type.tensor_type.elem_type = \
        TensorProto.INT64
    return model


def _with_content_hw_input(model):
    from onnx import TensorProto, helper

    model.graph.input.append(helper.make_tensor_value_info("content_hw", TensorProto.INT32,
                                                           ["B", 2]))
    return model


@pytest.mark.parametrize("graph,manifest_edit,match", [
    (None, lambda d: d["outputs"].update(K=5), r"scores .*\[B, 3\].*K=5"),
    (None, lambda d: d["outputs"].update(embedding_dim=8), r"embeddings .*D=8"),
    (lambda: F.build_contract_graph(64, 96, mask_stride=8), None,
     r"masks .*\[B, 3, \S+, 8, 12\].*\[B, K, T, 16, 24\]"),
    (lambda: _int64_labels(F.build_contract_graph(64, 96)), None, r"labels is tensor\(int64\)"),
    (None, lambda d: d["artifacts"][0].update(inputs=["frames", "content_hw"]),
     "manifest declares inputs \\['frames', 'content_hw'\\].*engine takes \\['frames'\\]"),
    (lambda: _with_content_hw_input(F.build_contract_graph(64, 96)), None,
     "manifest declares inputs \\['frames'\\].*engine takes \\['frames', 'content_hw'\\]"),
])
def test_engine_outputs_disagreeing_with_manifest_are_refused_on_activation(
        artifact_copy, graph, manifest_edit, match):
    if graph is not None:
        _save_graph(artifact_copy, graph())
    if manifest_edit is not None:
        _rewrite_manifest(artifact_copy, manifest_edit)
    with pytest.raises(ArtifactError, match=match):
        open_backend(load_manifest(artifact_copy), device="cpu").activate()


def test_declared_content_hw_is_accepted_and_fed(artifact_copy):
    _save_graph(artifact_copy, _with_content_hw_input(F.build_contract_graph(64, 96)))
    _rewrite_manifest(artifact_copy,
                      lambda d: d["artifacts"][0].update(inputs=["frames", "content_hw"]))
    with open_backend(load_manifest(artifact_copy), device="cpu") as backend:
        out = backend.infer(_frames(t=2), np.array([[40, 96]], np.int32))
    assert out["masks"].shape == (1, 3, 2, 16, 24)


def test_spin_wait_off_reaches_the_sessions(contract_artifacts):
    """``spin_wait=False`` (benchmarks interleaving runtimes) sets onnxruntime's
    ``session.intra_op.allow_spinning`` to 0; the default leaves onnxruntime's spinning on."""
    from runtime.backends.onnxrt import session_options

    key = "session.intra_op.allow_spinning"
    assert session_options(spin_wait=False).get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):
        session_options().get_session_config_entry(key)  # unset: onnxruntime's default (spin)
    backend = OnnxRuntimeBackend(load_manifest(contract_artifacts), device="cpu", spin_wait=False)
    with backend:
        assert backend.session.get_session_options().get_session_config_entry(key) == "0"
