"""``python -m export.triton``: model repositories whose config.pbtxt parses with Triton's own
schema (``tritonclient.grpc.model_config_pb2`` + protobuf ``text_format``) for every kind, with
the contract's inputs and outputs, batching, instances and the files each kind needs.

The server-side tests (a real tritonserver on these repositories) are in
tests/runtime/test_rt_triton.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

import rt_fixtures  # noqa: E402

from export.triton.__main__ import main  # noqa: E402
from runtime.manifest import sha256_file, write_manifest  # noqa: E402

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2",
    reason="needs tritonclient[grpc]: pip install -e '.[serve]' (make test installs it)")
from google.protobuf import text_format  # noqa: E402

OUTPUTS = {"scores": "TYPE_FP32", "labels": "TYPE_INT32", "masks": "TYPE_FP32",
           "boxes": "TYPE_FP32", "embeddings": "TYPE_FP32", "query_index": "TYPE_INT32"}


def parse(folder: Path):
    """config.pbtxt -> Triton's ModelConfig message (raises on anything off-schema)."""
    return text_format.Parse((folder / "config.pbtxt").read_text(),
                             model_config_pb2.ModelConfig())


def tensors(config, field: str) -> dict[str, tuple[str, list[int]]]:
    return {t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims))
            for t in getattr(config, field)}


def write(artifacts: Path, repository: Path, *args: str) -> Path:
    assert main([str(artifacts), "--repository", str(repository), *args]) == 0
    name = args[args.index("--name") + 1] if "--name" in args else "contract"
    return repository / name


def test_python_kind_lists_the_contract_and_copies_what_it_runs(tmp_path):
    art = rt_fixtures.build_contract_artifacts(tmp_path / "a")
    folder = write(art, tmp_path / "repo", "--max-queue-delay-us", "500", "--instances", "2")
    config = parse(folder)
    assert (config.name, config.backend, config.max_batch_size) == ("contract", "python", 2)
    assert tensors(config, "input") == {"frames": ("TYPE_UINT8", [-1, 64, 96, 3])}
    outputs = tensors(config, "output")
    assert {n: t for n, (t, _) in outputs.items()} == OUTPUTS
    assert outputs["masks"][1] == [3, -1, 16, 24] and outputs["embeddings"][1] == [3, 4]
    assert list(config.dynamic_batching.preferred_batch_size) == [2]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    group = config.instance_group[0]
    assert (group.count, model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind)) == (2, "KIND_CPU")
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["visdeploy_manifest_sha256"] == sha256_file(art / "manifest.json")
    assert params["stages"] == "one"
    assert sorted(p.name for p in (folder / "1").iterdir()) == ["manifest.json", "model.onnx",
                                                                "model.py"]
    assert (folder / "manifest.json").read_bytes() == (art / "manifest.json").read_bytes()


def test_python_kind_declares_content_hw_and_runs_two_stages(tmp_path):
    art = rt_fixtures.build_two_stage_contract_artifacts(tmp_path / "a", clip_content_hw=True)
    folder = write(art, tmp_path / "repo")
    config = parse(folder)
    assert tensors(config, "input")["content_hw"] == ("TYPE_INT32", [2])
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["stages"] == "two" and int(params["feature_cache_frames"]) >= 10
    assert {"frame_stage.onnx", "clip_stage.onnx"} <= {p.name for p in (folder / "1").iterdir()}


def test_fixed_t_artifact_serves_its_one_t(tmp_path):
    art = rt_fixtures.build_contract_artifacts(tmp_path / "a", fixed_frames=8)
    config = parse(write(art, tmp_path / "repo"))
    assert tensors(config, "input")["frames"][1] == [8, 64, 96, 3]
    assert tensors(config, "output")["boxes"][1] == [3, 8, 4]


def test_onnxruntime_kind(tmp_path):
    art = rt_fixtures.build_contract_artifacts(tmp_path / "a")
    folder = write(art, tmp_path / "repo", "--kind", "onnxruntime", "--name", "contract_ort")
    config = parse(folder)
    assert (config.name, config.backend) == ("contract_ort", "onnxruntime")
    assert config.optimization.graph.level == 1  # basic + extended, as the runtime
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (folder / "1" / "model.onnx").read_bytes() == (art / "model.onnx").read_bytes()


def _add_plans(art: Path, plans: dict[str, tuple[int, int]]) -> None:
    """Manifest entries of TensorRT plans (compute capability -> profile (max B, fixed T)) as
    export.tensorrt writes them. TensorRT cannot be installed here: the plan files hold bytes
    that only the repository writer copies (it never reads a plan)."""
    data = json.loads((art / "manifest.json").read_text())
    for cc, (max_b, t) in plans.items():
        file = f"model.fp16.sm{cc.replace('.', '')}.trt.plan"
        (art / file).write_bytes(b"plan bytes " + cc.encode())
        data["artifacts"].append({
            "file": file, "kind": "tensorrt", "precision": "fp16", "tensorrt": "10.5.0",
            "compute_capability": cc, "gpu": f"sm{cc}", "inputs": ["frames"],
            "profiles": [{"frames": {"min": [1, t, 64, 96, 3], "opt": [1, t, 64, 96, 3],
                                     "max": [max_b, t, 64, 96, 3]}}],
            "sha256": sha256_file(art / file), "size_bytes": (art / file).stat().st_size})
    write_manifest(art, data)


def test_tensorrt_plan_kind_maps_each_gpu_to_its_plan(tmp_path):
    art = rt_fixtures.build_contract_artifacts(tmp_path / "a")
    _add_plans(art, {"8.6": (2, 5), "8.9": (1, 5)})
    folder = write(art, tmp_path / "repo", "--kind", "tensorrt", "--precision", "fp16")
    config = parse(folder)
    assert config.platform == "tensorrt_plan"
    assert config.max_batch_size == 1  # the smaller profile of the two plans
    assert dict(config.cc_model_filenames) == {"8.6": "model.fp16.sm86.trt.plan",
                                               "8.9": "model.fp16.sm89.trt.plan"}
    assert tensors(config, "input")["frames"][1] == [5, 64, 96, 3]  # the profiles fix T
    assert sorted(p.name for p in (folder / "1").iterdir()) == sorted(config.cc_model_filenames
                                                                      .values())


def test_refusals_name_the_next_step(tmp_path, capsys):
    art = rt_fixtures.build_contract_artifacts(tmp_path / "a")
    assert main([str(art), "--repository", str(tmp_path / "r"), "--kind", "tensorrt"]) == 2
    assert "python -m export.tensorrt" in capsys.readouterr().err
    write(art, tmp_path / "r")
    assert main([str(art), "--repository", str(tmp_path / "r")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([str(art), "--repository", str(tmp_path / "r"), "--preferred-batch", "3"]) == 2
    assert "batch maximum 2" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "r")
    assert main([str(tmp_path / "nowhere"), "--repository", str(tmp_path / "r")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
