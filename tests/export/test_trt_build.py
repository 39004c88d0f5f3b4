"""Engine builder on CPU: what runs without TensorRT (preflight, refusal, exit codes), the pure
parts (names, profiles, manifest entry, layer precisions) and the Polygraphy loader chain."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from export.tensorrt import (
    PlanConfigError,
    PrecisionMismatchError,
    UnsupportedTensorRTError,
    build_loaders,
    check_precision,
    flavor_for,
    gpu_slug,
    parse_layer_information,
    parse_range,
    plan_file_name,
    profile_shapes,
)
from export.tensorrt.__main__ import main
from export.tensorrt.plan import plan_entry, record_plan
from runtime.backends.tensorrt import RunningPlatform, select_plan
from runtime.manifest import MANIFEST_FORMAT, load_manifest, sha256_file, write_manifest

REPO = Path(__file__).resolve().parents[2]
no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                                 reason="TensorRT is installed: the build would really run")


def _artifacts(directory: Path, op: str = "Relu") -> Path:
    """A small artifact directory: uint8 frames [B, T, 32, 32, 3] -> Cast -> ``op``."""
    directory.mkdir(parents=True)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["frames"], ["x"], to=TensorProto.FLOAT),
         helper.make_node(op, ["x"], ["scores"])], "g",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["B", "T", 32, 32, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", "T", 32, 32, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, directory / "model.onnx")
    write_manifest(directory, {
        "format": MANIFEST_FORMAT, "model": "toy", "preset": "tiny", "classes": ["a"],
        "input": {"height": 32, "width": 32, "frames": {"min": 1, "opt": 5, "max": 8},
                  "batch": {"min": 1, "opt": 1, "max": 2}, "mean": [0, 0, 0], "std": [1, 1, 1]},
        "outputs": {"K": 2, "embedding_dim": 4}, "window": {"length": 5, "stride": 3},
        "artifacts": [{"file": "model.onnx", "kind": "onnx", "precision": "fp32",
                       "sha256": sha256_file(directory / "model.onnx")}]})
    return directory


@no_tensorrt
def test_without_tensorrt_the_build_says_what_was_checked(tmp_path, capsys):
    art = _artifacts(tmp_path / "toy")
    assert main([str(art), "--precision", "fp32"]) == 2
    err = capsys.readouterr().err
    for part in ("tensorrt package cannot be imported", "Checked without TensorRT",
                 "sha256 matches manifest.json", "onnx.checker (full) and strict shape inference",
                 "TensorRT 10.3 lint: 2 nodes", "TensorRT 11.4 lint: 2 nodes", "0 errors",
                 "--extra-index-url https://pypi.nvidia.com", "python3-libnvinfer",
                 f"python -m export.tensorrt {art} --precision fp32"):
        assert part in err
    assert json.loads((art / "manifest.json").read_text())["artifacts"][-1]["kind"] == "onnx"


def test_lint_errors_stop_the_build_before_tensorrt(tmp_path, capsys):
    art = _artifacts(tmp_path / "toy", op="Bernoulli")
    assert main([str(art), "--precision", "fp32"]) == 2
    err = capsys.readouterr().err
    assert "does not support" in err and "Bernoulli" in err and "--ignore-lint" in err


@no_tensorrt
def test_tiny_tevit_runs_the_whole_preflight(tiny_tevit_artifacts_copy, capsys):
    """The lint gate is on: the real export passes it for 10.3 and 11.4 (issue 21 items 1-2)."""
    assert main([str(tiny_tevit_artifacts_copy), "--precision", "fp32", "--frames", "1,5,5"]) == 2
    err = capsys.readouterr().err
    assert "Checked without TensorRT" in err and err.count("0 errors") == 2
    assert "TensorRT plugins the graph needs: ROIAlign_TRT (for RoiAlign)" in err
    assert "'content_hw': ((1, 2), (1, 2), (" in err  # the second input is profiled too


def test_missing_precision_and_corrupt_onnx_are_named(tmp_path, capsys):
    art = _artifacts(tmp_path / "toy")
    assert main([str(art), "--precision", "fp16"]) == 2
    assert "python -m calibration" in capsys.readouterr().err
    with open(art / "model.onnx", "ab") as fh:
        fh.write(b"junk")
    assert main([str(art), "--precision", "fp32"]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err


def test_gpu_names_and_plan_file_names():
    assert gpu_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert gpu_slug("NVIDIA GeForce RTX 4090") == "rtx4090"
    assert gpu_slug("NVIDIA A100-SXM4-40GB") == "a100"
    assert gpu_slug("Orin (nvgpu)") == "orin"
    assert plan_file_name("fp16", "h100") == "model.fp16.h100.trt.plan"
    with pytest.raises(PlanConfigError, match="precision"):
        plan_file_name("bf16", "h100")
    with pytest.raises(PlanConfigError, match="lower-case"):
        plan_file_name("fp16", "H 100")


def test_profile_from_manifest_ranges(tmp_path):
    manifest = load_manifest(_artifacts(tmp_path / "toy"))
    shapes = profile_shapes([("frames", ["B", "T", 32, 32, 3])], manifest)
    assert shapes == {"frames": ((1, 1, 32, 32, 3), (1, 5, 32, 32, 3), (2, 8, 32, 32, 3))}
    with pytest.raises(PlanConfigError, match="axis 2 is dynamic"):
        profile_shapes([("frames", ["B", "T", "H", 32, 3])], manifest)


def test_plan_entry_is_recorded_and_found_by_the_runtime(tmp_path):
    art = _artifacts(tmp_path / "toy")
    (art / "model.fp32.h100.trt.plan").write_bytes(b"plan bytes")
    manifest = load_manifest(art)
    source = manifest.artifact("onnx", "fp32")
    shapes = profile_shapes([("frames", ["B", "T", 32, 32, 3])], manifest)
    entry = plan_entry(art, "model.fp32.h100.trt.plan", precision="fp32", tensorrt="10.16.1.11",
                       compute_capability="9.0", gpu="NVIDIA H100", source=source,
                       profiles=shapes, workspace_mb=512, layers={"fp32": 3},
                       plugins=[{"op": "RoiAlign", "plugin": "ROIAlign_TRT", "version": "2",
                                 "namespace": ""}])
    record_plan(art, entry)
    record_plan(art, entry)  # rebuilding replaces, never duplicates
    manifest = load_manifest(art)
    plans = [e for e in manifest.data["artifacts"] if e["kind"] == "tensorrt"]
    assert len(plans) == 1 and plans[0]["profiles"][0]["frames"]["max"] == [2, 8, 32, 32, 3]
    assert plans[0]["source"] == {"file": "model.onnx", "sha256": source["sha256"]}
    assert plans[0]["tensorrt_plugins"][0]["plugin"] == "ROIAlign_TRT"
    assert plans[0]["inputs"] == ["frames"] and "dla" not in plans[0]
    found = select_plan(manifest, "fp32", RunningPlatform("10.16.1.11", "9.0", "NVIDIA H100"))
    assert manifest.verified_path(found).name == "model.fp32.h100.trt.plan"


def _layer(name, key, *types):
    return {"Name": name, "LayerType": "CaskConvolution",
            "Outputs": [{"Name": f"{name}_out", key: t} for t in types]}


def test_layer_precisions_in_10x_and_11x_inspector_json():
    v10, v11 = flavor_for("10.3.0.30"), flavor_for("11.4.0.106")
    doc10 = {"Layers": [_layer("conv1", "Format/Datatype", "Channel major FP16 format where "
                                                         "channel % 8 == 0"),
                        _layer("head", "Format/Datatype", "Row major linear FP32")],
             "Bindings": ["frames", "scores"]}
    found = parse_layer_information(doc10, v10.inspector_type_keys)
    assert found.counts == {"fp16": 1, "fp32": 1}
    check_precision(found, "fp16")
    with pytest.raises(PrecisionMismatchError, match="fp16.*in an fp32 engine"):
        check_precision(found, "fp32")
    doc11 = {"Layers": [_layer("conv1", "Datatype", "Float"), _layer("mm", "Datatype", "Float")],
             "I/O Tensors": [{"Name": "frames", "DataType": "UInt8"}]}
    found = parse_layer_information(doc11, v11.inspector_type_keys)
    assert found.counts == {"fp32": 2}
    check_precision(found, "fp32")
    with pytest.raises(PrecisionMismatchError, match="no layer runs in FP16.*model.fp16.onnx"):
        check_precision(found, "fp16")
    q = parse_layer_information({"Layers": [_layer("q", "Datatype", "Int8")]}, v11.inspector_type_keys)
    check_precision(q, "int8")
    with pytest.raises(PrecisionMismatchError, match="DETAILED"):
        parse_layer_information({"Layers": ["conv1", "head"]}, v10.inspector_type_keys)
    # the key the 11.1 OSS tools read (Polygraphy backend/trt/util.py) is parsed on 11.x too
    doc11 = {"Layers": [_layer("conv1", "Format/Datatype", "Half")]}
    assert parse_layer_information(doc11, v11.inspector_type_keys).counts == {"fp16": 1}


def test_missing_type_keys_mark_the_read_back_unverified_instead_of_failing():
    """Issue 21 item 9: an inspector JSON without any known type key is not a mismatch."""
    doc = {"Layers": [_layer("conv1", "Precision", "Half"), _layer("head", "Precision", "Float")]}
    found = parse_layer_information(doc, flavor_for("11.4.0.106").inspector_type_keys)
    assert not found.verified and "keys seen: ['Name', 'Precision']" in found.unverified
    check_precision(found, "fp16")  # nothing to contradict: the build keeps the plan
    assert found.as_manifest() == {"unverified": found.unverified}
    assert found.describe().startswith("unverified: ")


def test_version_differences_live_in_the_flavor():
    assert flavor_for("10.3.0.30").network_options() == {"strongly_typed": True}
    assert flavor_for("11.4.0.106").network_options() == {}
    assert flavor_for("11.4.0.106").inspector_type_keys[0] == "Format/Datatype"
    with pytest.raises(UnsupportedTensorRTError, match="TensorRT 8.6.1 is not supported"):
        flavor_for("8.6.1")


@pytest.mark.parametrize("version,typed", [("10.3.0.30", True), ("11.4.0.106", False)])
def test_loader_chain_is_wired_lazily(tmp_path, version, typed):
    """The loaders are built without TensorRT (Polygraphy loaders are lazy); check the wiring."""
    from polygraphy.backend.trt import CreateConfig, NetworkFromOnnxPath

    shapes = {"frames": ((1, 1, 32, 32, 3), (1, 5, 32, 32, 3), (2, 8, 32, 32, 3)),
              "content_hw": ((1, 2), (1, 2), (2, 2))}
    network, finish = build_loaders(tmp_path / "m.onnx", tmp_path / "p.plan", shapes,
                                    flavor_for(version), timing_cache=tmp_path / "t.cache",
                                    config_options={})
    assert isinstance(network, NetworkFromOnnxPath) and network.strongly_typed is typed
    config = finish.config
    assert isinstance(config, CreateConfig) and config.timing_cache_path == str(tmp_path / "t.cache")
    assert config.profiles[0]["frames"].max == (2, 8, 32, 32, 3)
    assert config.profiles[0]["content_hw"].min == (1, 2)
    assert config.use_dla is False
    _, dla = build_loaders(tmp_path / "m.onnx", tmp_path / "p.plan", shapes, flavor_for(version),
                           timing_cache=tmp_path / "t.cache", config_options={},
                           dla={"use_dla": True, "allow_gpu_fallback": True, "core": 0})
    assert dla.config.use_dla is True and dla.config.allow_gpu_fallback is True


def test_profile_narrowed_by_frames_and_batch_covers_content_hw(tmp_path):
    manifest = load_manifest(_artifacts(tmp_path / "toy"))
    inputs = [("frames", ["B", "T", 32, 32, 3]), ("content_hw", ["B", 2])]
    shapes = profile_shapes(inputs, manifest, frames=(5, 5, 5), batch=(1, 1, 1))
    assert shapes == {"frames": ((1, 5, 32, 32, 3),) * 3, "content_hw": ((1, 2),) * 3}
    assert profile_shapes(inputs, manifest)["content_hw"] == ((1, 2), (1, 2), (2, 2))
    with pytest.raises(PlanConfigError, match=r"--frames 1,5,36 leaves the range 1..8"):
        profile_shapes(inputs, manifest, frames=(1, 5, 36))
    assert parse_range("1,5,8", "frames") == (1, 5, 8) and parse_range("5", "frames") == (5, 5, 5)
    for bad in ("5,1,8", "a,b,c", "0,1,1", "1,2"):
        with pytest.raises(PlanConfigError, match="MIN,OPT,MAX"):
            parse_range(bad, "batch")


@no_tensorrt
def test_narrowed_profile_and_plugins_are_reported_before_tensorrt(tmp_path, capsys):
    art = _artifacts(tmp_path / "toy")
    assert main([str(art), "--precision", "fp32", "--frames", "5,5,5", "--batch", "1,1,1"]) == 2
    err = capsys.readouterr().err
    assert "optimisation profile (min, opt, max): {'frames': ((1, 5, 32, 32, 3)," in err
    assert "TensorRT plugins the graph needs: none" in err
    assert main([str(art), "--precision", "fp32", "--frames", "1,5,9"]) == 2
    assert "leaves the range 1..8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(art), "--precision", "fp32", "--allow-gpu-fallback"])
    assert exit_info.value.code == 2 and "needs --dla" in capsys.readouterr().err


class _ParserError:
    def node(self):
        return 7

    def node_name(self):
        return "node_RoiAlign_7"

    def node_operator(self):
        return "RoiAlign"

    def desc(self):
        return "Plugin not found, are the plugin name, version, and namespace correct?"

    def code(self):
        return "ErrorCode.UNSUPPORTED_NODE"


def test_parser_and_builder_failures_name_the_node_and_map_to_exit_codes(monkeypatch, capsys,
                                                                         tmp_path):
    """Polygraphy raises ``PolygraphyException`` for both; the parser's IParserError fields are
    read back (fake parser: TensorRT cannot run here) and the CLI exits 2 or 1."""
    from polygraphy.exception import PolygraphyException

    import export.tensorrt.__main__ as cli
    from export.tensorrt import EngineBuildError, EngineParseError
    from export.tensorrt.build import _parse_and_build
    from export.tensorrt.failures import parser_errors

    class Parser:
        num_errors = 1

        def get_error(self, index):
            return _ParserError()

    lines = parser_errors(Parser())
    assert lines == ["node 7 'node_RoiAlign_7' (RoiAlign): Plugin not found, are the plugin "
                     "name, version, and namespace correct? [ErrorCode.UNSUPPORTED_NODE]"]

    def refuse():
        raise PolygraphyException("Could not parse ONNX correctly")

    monkeypatch.setattr("export.tensorrt.build.reparse_for_errors", lambda *a: lines)
    with pytest.raises(EngineParseError, match=r"refused m.onnx:\n  - node 7 'node_RoiAlign_7'"):
        _parse_and_build(None, refuse, None, Path("m.onnx"), Path("p.plan"), flavor_for("10.3"))

    def fail_build(parsed):
        raise PolygraphyException("Invalid Engine")

    with pytest.raises(EngineBuildError, match="could not build p.plan .*--workspace-mb"):
        _parse_and_build(None, lambda: "parsed", fail_build, Path("m.onnx"), Path("p.plan"),
                         flavor_for("11.4"))
    art = _artifacts(tmp_path / "toy")
    for error, code in ((EngineParseError("refused"), 2), (EngineBuildError("failed"), 1)):
        def raise_it(*args, error=error):
            raise error
        monkeypatch.setattr(cli, "build_engine", raise_it)
        assert cli.main([str(art), "--precision", "fp32"]) == code
        assert str(error) in capsys.readouterr().err


def test_heavy_packages_are_imported_lazily():
    code = ("import sys, export.tensorrt, export.trt_support, runtime.backends; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorrt', 'polygraphy', 'torch', 'cuda')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_extract_script_runs_on_a_given_wheel(tmp_path):
    """The regeneration script also works offline on a wheel already on disk."""
    import zipfile

    init = "from .tensorrt import *\n__version__ = '99.0'\nBuilder.x = 1\n"
    elf = sorted(Path(onnx.__file__).parent.glob("onnx_cpp2py_export*.so"))[0]  # a pybind11 .so
    wheel = tmp_path / "tensorrt_cu12_bindings-99.0-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tensorrt_bindings/__init__.py", init)
        zf.writestr("tensorrt_bindings/tensorrt.so", elf.read_bytes())
    out = subprocess.run([sys.executable, "-m", "export.trt_support.extract_binding_names",
                          "--wheel", str(wheel), "--out-dir", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "bindings_trt99.0.txt").read_text()
    assert text.startswith("# TensorRT Python binding names, version 99.0")
    assert "\nBuilder\n" in text and "\ncheck_model\n" in text
