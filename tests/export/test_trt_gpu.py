"""GPU + TensorRT: build real plans, read their layer precisions back, reuse the timing cache.

Run with ``make test-gpu`` on a machine with an NVIDIA GPU and TensorRT 10 or 11.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.tensorrt import BuildOptions, build_engine
from runtime.manifest import MANIFEST_FORMAT, load_manifest, sha256_file, write_manifest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def trt():
    pytest.importorskip("polygraphy")
    pytest.importorskip("cuda.bindings.runtime")
    return pytest.importorskip("tensorrt", reason="needs TensorRT 10 or 11 (pip install -e '.[trt]')")


def _conv_net(path, dtype):
    """uint8 frames [B, T, 32, 32, 3] -> Cast(dtype) -> 2 x (Conv + Relu) -> Cast(float)."""
    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array([-1, 32, 32, 3], np.int64), "shape"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np_dtype), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8, 8, 3, 3)).astype(np_dtype), "w2")]
    nodes = [helper.make_node("Cast", ["frames"], ["x"], to=dtype),
             helper.make_node("Reshape", ["x", "shape"], ["x4"]),
             helper.make_node("Transpose", ["x4"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Cast", ["c2"], ["scores"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info(
        "frames", TensorProto.UINT8, ["B", "T", 32, 32, 3])], [helper.make_tensor_value_info(
            "scores", TensorProto.FLOAT, ["N", 8, 32, 32])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)


@pytest.fixture()
def toy_artifacts(tmp_path):
    _conv_net(tmp_path / "model.onnx", TensorProto.FLOAT)
    _conv_net(tmp_path / "model.fp16.onnx", TensorProto.FLOAT16)
    entries = [{"file": f, "kind": "onnx", "precision": p, "sha256": sha256_file(tmp_path / f)}
               for f, p in (("model.onnx", "fp32"), ("model.fp16.onnx", "fp16"))]
    write_manifest(tmp_path, {
        "format": MANIFEST_FORMAT, "model": "toy", "preset": "tiny", "classes": ["a"],
        "input": {"height": 32, "width": 32, "frames": {"min": 1, "opt": 4, "max": 8},
                  "batch": {"min": 1, "opt": 1, "max": 2}, "mean": [0, 0, 0], "std": [1, 1, 1]},
        "outputs": {"K": 1, "embedding_dim": 1}, "window": {"length": 4, "stride": 2},
        "artifacts": entries})
    return tmp_path


def test_fp32_and_fp16_plans_are_built_verified_and_recorded(trt, toy_artifacts):
    cache = toy_artifacts / "shared.cache"
    fp32 = build_engine(toy_artifacts, BuildOptions("fp32", workspace_mb=256, timing_cache=cache))
    assert cache.is_file() and cache.stat().st_size > 0
    fp16 = build_engine(toy_artifacts, BuildOptions("fp16", workspace_mb=256, timing_cache=cache))
    assert fp32.layers.counts["fp16"] == 0 and fp16.layers.counts["fp16"] > 0
    manifest = load_manifest(toy_artifacts)
    plans = {e["precision"]: e for e in manifest.data["artifacts"] if e["kind"] == "tensorrt"}
    assert set(plans) == {"fp32", "fp16"}
    for precision, entry in plans.items():
        assert entry["tensorrt"] == trt.__version__
        assert entry["file"].startswith(f"model.{precision}.") and entry["file"].endswith(".trt.plan")
        assert entry["profiles"][0]["frames"]["max"] == [2, 8, 32, 32, 3]
        manifest.verified_path(entry)


def test_tiny_tevit_fp32_plan_with_its_roi_align_plugin(trt, tiny_tevit_artifacts_copy):
    """The CPU lint passes on this export (tests/export/test_trt_lint.py); its RoiAlign ops need
    the ROIAlign_TRT plugin, which the builder registers and records."""
    result = build_engine(tiny_tevit_artifacts_copy,
                          BuildOptions("fp32", workspace_mb=1024, frames=(1, 5, 5),
                                       batch=(1, 1, 1)))
    assert result.plan_path.is_file() and result.layers.counts["fp32"] > 0
    assert [p["plugin"] for p in result.entry["tensorrt_plugins"]] == ["ROIAlign_TRT"]
    assert result.entry["profiles"][0]["frames"]["max"][1] == 5
