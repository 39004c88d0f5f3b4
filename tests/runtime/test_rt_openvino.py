"""OpenVINO backend on the contract graph: outputs equal onnxruntime's, the compiled-model cache
(reuse and every invalidation), the refusal without the package, ``--backend auto``'s choice,
and the command line. The real model exports are in test_rt_openvino_models.py."""

from __future__ import annotations

import importlib.abc
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openvino
import pytest
import rt_fixtures as F

from export.parity import FP32_TOLERANCES, ParityReport, compare
from runtime import Pipeline
from runtime.backends import (
    BACKEND_CHOICES,
    OnnxRuntimeBackend,
    OpenVINOBackend,
    open_backend,
)
from runtime.backends.auto import Choice, Environment, choose_backend, tensorrt_plan_fits
from runtime.backends.cpu_isa import ISA_CAP_VARIABLES, cpu_isa_fingerprint
from runtime.backends.openvino import compile_config, openvino_installed
from runtime.backends.openvino_cache import CACHE_DIR, cache_key
from runtime.errors import ArtifactError, BackendUnavailableError, ConfigError
from runtime.manifest import load_manifest, sha256_file
from runtime.stream import main
from runtime.stream_cli import build_parser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def art(contract_artifacts, tmp_path):
    """A private copy without a compiled-model cache (other tests run the shared artifacts with
    ``--backend auto``, which compiles into them): these tests write and break their own."""
    return shutil.copytree(contract_artifacts, tmp_path / "art",
                           ignore=shutil.ignore_patterns(CACHE_DIR))


def _frames(b=1, t=5, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (b, t, 64, 96, 3), dtype=np.uint8)


def _blobs(directory):
    return sorted(p.name for p in (directory / CACHE_DIR).glob("*.blob"))


def test_openvino_equals_onnxruntime_on_the_contract_graph(art):
    manifest = load_manifest(art)
    frames, _ = F.make_clip(4, size=(64, 96), objects={2: ((8, 8), (0, 4))})
    batch = np.concatenate([frames[None], _frames(t=4)])
    with OnnxRuntimeBackend(manifest, device="cpu") as ort_b, OpenVINOBackend(manifest) as ov_b:
        expected, got = ort_b.infer(batch), ov_b.infer(batch)
        assert ov_b.config["INFERENCE_PRECISION_HINT"] == "f32"
        assert str(ov_b.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    report = ParityReport()
    compare(expected, got, report, FP32_TOLERANCES)
    assert not report.failures and report.index_mismatches == 0, report
    assert all(report.max_abs[k] <= tol for k, tol in FP32_TOLERANCES.items()), report.max_abs
    assert got["labels"].dtype == np.int32 and got["masks"].shape == (2, 3, 4, 16, 24)
    assert got["boxes"][0, 2, 0].tolist() == [8, 8, 28, 28]  # the blue square, as onnxruntime


def test_threads_reach_the_compiled_model(art):
    assert "INFERENCE_NUM_THREADS" not in compile_config(0)
    with OpenVINOBackend(load_manifest(art), threads=1) as backend:
        assert backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_cache_is_reused_with_the_same_outputs(art):
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest) as first:
        out_first = first.infer(_frames())
    assert first.cache_status == ["compiled"] and len(_blobs(art)) == 1
    with OpenVINOBackend(manifest) as second:
        out_second = second.infer(_frames())
    assert second.cache_status == ["cache"]
    for name, value in out_first.items():
        np.testing.assert_array_equal(value, out_second[name])
    with OpenVINOBackend(manifest, cache=False) as off:
        assert off.cache_status == ["compiled, cache off"]


def test_other_compile_settings_get_their_own_blob(art):
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest):
        pass
    with OpenVINOBackend(manifest, threads=1) as other:
        assert other.cache_status == ["compiled"]
    assert len(_blobs(art)) == 2  # same ONNX file and version: both settings stay cached


def test_a_new_onnx_file_invalidates_and_replaces_the_blob(art):
    with OpenVINOBackend(load_manifest(art)):
        pass
    old = _blobs(art)
    model = F.build_contract_graph(64, 96)
    model.doc_string = "re-exported"  # same graph, another file: another sha256
    path = art / "model.onnx"
    path.write_bytes(model.SerializeToString())
    data = json.loads((art / "manifest.json").read_text())
    data["artifacts"][0]["sha256"] = sha256_file(path)
    (art / "manifest.json").write_text(json.dumps(data))
    with OpenVINOBackend(load_manifest(art)) as backend:
        assert backend.cache_status == ["compiled"]
    new = _blobs(art)
    assert len(new) == 1 and new != old  # the stale blob of model.onnx was removed


def test_another_openvino_version_invalidates_the_blob(art, monkeypatch):
    with OpenVINOBackend(load_manifest(art)):
        pass
    old = _blobs(art)
    monkeypatch.setattr(openvino, "__version__", "2099.1.0-1-test")
    with OpenVINOBackend(load_manifest(art)) as backend:
        assert backend.cache_status == ["compiled"]
    new = _blobs(art)
    assert len(new) == 1 and new != old and "ov2099.1.0" in new[0]


def test_a_damaged_blob_is_recompiled_not_loaded(art, caplog):
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest) as backend:
        expected = backend.infer(_frames())
    blob = art / CACHE_DIR / _blobs(art)[0]
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, "runtime.backends"), OpenVINOBackend(manifest) as backend:
        assert backend.cache_status == ["compiled"]
        np.testing.assert_array_equal(backend.infer(_frames())["masks"], expected["masks"])
    assert "ignoring the OpenVINO cache" in caplog.text
    with OpenVINOBackend(manifest) as backend:  # the rewritten blob loads again
        assert backend.cache_status == ["cache"]


def test_a_sidecar_from_an_older_key_format_is_replaced_quietly(art, caplog):
    """Sidecars written before the key had static shapes: recompiled without a warning (it is
    not damage), then cached under the current key."""
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest):
        pass
    sidecar = next((art / CACHE_DIR).glob("*.json"))
    meta = json.loads(sidecar.read_text())
    del meta["key"]["shapes"]
    sidecar.write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, "runtime.backends"), OpenVINOBackend(manifest) as backend:
        assert backend.cache_status == ["compiled"]
    assert "written for another key" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with OpenVINOBackend(manifest) as backend:
        assert backend.cache_status == ["cache"]


def test_the_cpu_fingerprint_is_the_instruction_sets_and_the_isa_cap():
    cpuinfo = ("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma hypervisor avx512f amx_tile\n"
               "processor\t: 1\nflags\t\t: fpu sse4_2 avx2 fma hypervisor avx512f amx_tile\n")
    assert cpu_isa_fingerprint(cpuinfo, {}) == "amx_tile avx2 avx512f fma sse4_2"
    capped = cpu_isa_fingerprint(cpuinfo, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert capped == "amx_tile avx2 avx512f fma sse4_2; ONEDNN_MAX_CPU_ISA=AVX2"
    assert cpu_isa_fingerprint("flags : fpu sse4_2 avx2 fma\n", {}) == "avx2 fma sse4_2"
    assert cpu_isa_fingerprint("", {})  # no /proc/cpuinfo (macOS, Windows): the processor name
    entry = {"file": "model.onnx", "sha256": "0" * 64}
    stems = {cache_key(entry, "2026.4.1", {}, cpu=cpu).stem for cpu in ("avx2 fma", "amx avx2 fma")}
    assert len(stems) == 2


def _activate_in_a_process(art, environ):
    """cache_status of an OpenVINO backend activated on ``art`` in a fresh interpreter."""
    code = ("import sys; from runtime.backends import OpenVINOBackend; from runtime.manifest "
            "import load_manifest\nwith OpenVINOBackend(load_manifest(sys.argv[1])) as b: "
            "print(b.cache_status[0])")
    run = subprocess.run([sys.executable, "-c", code, str(art)], capture_output=True, text=True,
                         cwd=REPO, env=environ, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="ONEDNN_MAX_CPU_ISA caps x86 instruction sets only")
def test_machines_with_other_cpus_keep_their_own_blobs(art, caplog):
    """OpenVINO refuses a blob compiled for another instruction set (measured both ways, AMX vs
    AVX2). A CPU limited to SSE4.1 (oneDNN's cap, which OpenVINO honours) stands in for a second
    machine sharing the artifact directory: each keeps its blob instead of replacing the
    other's at every start."""
    environ = {k: v for k, v in os.environ.items() if k not in ISA_CAP_VARIABLES}
    sse41 = {**environ, "ONEDNN_MAX_CPU_ISA": "SSE41"}
    assert _activate_in_a_process(art, sse41) == "compiled"
    assert _activate_in_a_process(art, environ) == "compiled"
    assert len(_blobs(art)) == 2
    with caplog.at_level(logging.WARNING, "runtime.backends"):
        assert _activate_in_a_process(art, sse41) == "cache"
        assert _activate_in_a_process(art, environ) == "cache"
    assert len(_blobs(art)) == 2


def test_blobs_keyed_before_the_cpu_was_in_the_key_are_removed(art):
    """A blob an older visdeploy stored without the CPU in its key is never looked up again; the
    next compile removes it."""
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest):
        pass
    [sidecar] = (art / CACHE_DIR).glob("*.json")
    meta = json.loads(sidecar.read_text())
    del meta["key"]["cpu"]
    old = sidecar.with_name("model.ov2026.old.json")
    old.write_text(json.dumps(meta))
    sidecar.with_suffix(".blob").rename(old.with_suffix(".blob"))
    sidecar.unlink()
    with OpenVINOBackend(manifest) as backend:
        assert backend.cache_status == ["compiled"]
    assert not old.exists() and not old.with_suffix(".blob").exists()
    assert len(_blobs(art)) == 1


def test_an_unwritable_cache_only_costs_speed(art, caplog):
    (art / CACHE_DIR).write_text("not a directory")  # mkdir fails even for root
    with caplog.at_level(logging.WARNING, "runtime.backends"), \
            OpenVINOBackend(load_manifest(art)) as backend:
        assert backend.cache_status == ["compiled, not cached"]
        assert backend.infer(_frames())["scores"].shape == (1, 3)
    assert "cannot write the OpenVINO cache" in caplog.text


def _record_static_shapes(art, shapes):
    """Write the ``openvino_static`` record calibration writes when a static compile held its
    budget (calibration/openvino_static.py)."""
    data = json.loads((art / "manifest.json").read_text())
    data["artifacts"][0]["openvino_static"] = {"inputs": shapes, "parity_loss": 0.0}
    (art / "manifest.json").write_text(json.dumps(data))


def _assert_fp32_equal(expected, got):
    report = ParityReport()
    compare(expected, got, report, FP32_TOLERANCES)
    assert not report.failures and report.index_mismatches == 0, report


def test_a_recorded_static_shape_is_compiled_and_other_windows_run_dynamic(art):
    _record_static_shapes(art, {"frames": [1, 5, 64, 96, 3]})
    manifest = load_manifest(art)
    batch = np.concatenate([_frames(t=5), _frames(t=5, seed=1)])
    with OpenVINOBackend(manifest, static_shapes=False) as dynamic:
        expected = [dynamic.infer(_frames(t=5)), dynamic.infer(batch),
                    dynamic.infer(_frames(t=3))]
        assert dynamic.static_shapes == {} and dynamic.cache_status == ["compiled"]
    with OpenVINOBackend(manifest) as backend:
        assert backend.static_shapes == {"frames": (1, 5, 64, 96, 3)}
        assert backend.compiled.input("frames").get_partial_shape().is_static
        got = [backend.infer(_frames(t=5))]
        got.append(backend.infer(batch))  # two streams' windows: row by row, static
        assert backend.dynamic is None and backend.cache_status == ["compiled"]
        got.append(backend.infer(_frames(t=3)))  # another window shape: the dynamic compile
        assert backend.cache_status == ["compiled", "cache"]  # blob of the first backend
        got.append(backend.infer(_frames(t=5)))
        assert len(backend.cache_status) == 2  # nothing compiled again
    assert got[1]["masks"].shape[0] == 2
    for e, g in zip([*expected, expected[0]], got, strict=True):
        _assert_fp32_equal(e, g)
    assert len(_blobs(art)) == 2 and sum(".static" in b for b in _blobs(art)) == 1
    with OpenVINOBackend(manifest) as again:  # the static blob is reused too
        assert again.cache_status == ["cache"]


def test_a_static_record_that_does_not_fit_the_graph_is_refused(art):
    _record_static_shapes(art, {"frames": [1, 5, 32, 32, 3]})
    with pytest.raises(ArtifactError, match="openvino_static.*calibrate it again"):
        with OpenVINOBackend(load_manifest(art)):
            pass
    with OpenVINOBackend(load_manifest(art), static_shapes=False) as dynamic:
        assert dynamic.infer(_frames())["scores"].shape[0] == 1


def test_sha256_is_checked_before_the_cache(art):
    with OpenVINOBackend(load_manifest(art)):
        pass
    with open(art / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        OpenVINOBackend(load_manifest(art)).activate()


def test_graph_disagreeing_with_the_manifest_is_refused(art):
    data = json.loads((art / "manifest.json").read_text())
    data["input"]["height"] = 96
    (art / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="manifest says uint8 \\[B, T, 96, 96, 3\\]"):
        OpenVINOBackend(load_manifest(art), cache=False).activate()


def test_unreadable_onnx_is_an_artifact_error(art):
    path = art / "model.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    data = json.loads((art / "manifest.json").read_text())
    data["artifacts"][0]["sha256"] = sha256_file(path)
    (art / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="OpenVINO cannot compile.*--backend onnxruntime"):
        OpenVINOBackend(load_manifest(art)).activate()


def test_gpu_devices_are_refused(art):
    with pytest.raises(ConfigError, match="runs on the CPU.*--device cpu"):
        open_backend(load_manifest(art), "openvino", device="cuda")


class _HideOpenVINO(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "openvino":
            raise ImportError(f"{name} is hidden in this test")
        return None


@pytest.fixture()
def without_openvino(monkeypatch):
    """openvino as on a machine without it: every import of it fails."""
    for name in [m for m in sys.modules if m.split(".")[0] == "openvino"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_HideOpenVINO(), *sys.meta_path])


def test_without_openvino_the_backend_says_how_to_install_it(art, without_openvino):
    assert not openvino_installed()
    with pytest.raises(BackendUnavailableError, match=r'openvino package.*\.\[openvino\]'):
        open_backend(load_manifest(art), "openvino")
    with pytest.raises(BackendUnavailableError, match="--backend onnxruntime"):
        OpenVINOBackend(load_manifest(art)).activate()


def test_without_openvino_auto_takes_onnxruntime(art, without_openvino):
    backend = open_backend(load_manifest(art), "auto", device="cpu")
    assert type(backend) is OnnxRuntimeBackend
    assert backend.selection == "auto -> onnxruntime (CPU; openvino is not installed)"


# -- --backend auto ---------------------------------------------------------------------------
ENV = {"tensorrt_plan": False, "cuda_onnxruntime": False, "openvino": False}


@pytest.mark.parametrize("device,env,expected", [
    ("auto", {}, ("onnxruntime", "auto")),
    ("auto", {"openvino": True}, ("openvino", "cpu")),
    ("cpu", {"openvino": True}, ("openvino", "cpu")),
    ("cpu", {"openvino": True, "tensorrt_plan": True}, ("openvino", "cpu")),  # CPU asked for
    ("auto", {"openvino": True, "cuda_onnxruntime": True}, ("onnxruntime", "auto")),  # GPU EP
    ("auto", {"openvino": True, "cuda_onnxruntime": True, "tensorrt_plan": True},
     ("tensorrt", "auto")),
    ("cuda", {"openvino": True}, ("onnxruntime", "cuda")),  # never OpenVINO for a GPU device
    ("cuda", {"tensorrt_plan": True}, ("tensorrt", "cuda")),
    ("tensorrt", {"tensorrt_plan": True}, ("tensorrt", "auto")),
    ("tensorrt", {"openvino": True}, ("onnxruntime", "tensorrt")),  # onnxruntime's TRT EP
])
def test_auto_choice(device, env, expected):
    choice = choose_backend(device, Environment(**(ENV | env)))
    assert isinstance(choice, Choice) and (choice.backend, choice.device) == expected
    assert choice.reason


def test_auto_skips_openvino_for_a_graph_it_cannot_run():
    from runtime.backends.openvino_cache import openvino_cannot_run

    env = Environment(**(ENV | {"openvino": True}), openvino_cannot="the ONNX DeformConv op")
    choice = choose_backend("auto", env)
    assert (choice.backend, choice.device) == ("onnxruntime", "auto")
    assert choice.reason == "CPU; openvino cannot run this graph: the ONNX DeformConv op"
    manifest = SimpleNamespace(data={"model_extra": {"deform_conv": "onnx"}})
    assert "DeformConv" in openvino_cannot_run(manifest)
    assert openvino_cannot_run(SimpleNamespace(data={"model_extra": {"deform_conv":
                                                                     "grid_sample"}})) == ""
    assert openvino_cannot_run(SimpleNamespace(data={})) == ""


def test_auto_reason_names_why_no_plan_was_taken():
    env = Environment(**(ENV | {"openvino": True}), why_no_plan="no TensorRT plan at fp32")
    assert choose_backend("auto", env).reason == ("CPU; openvino is installed (no TensorRT plan "
                                                 "at fp32)")


def test_plan_check_without_a_plan_imports_nothing(art):
    fits, why = tensorrt_plan_fits(load_manifest(art), "fp32", "auto")
    assert not fits and why == "no TensorRT plan at fp32" and "tensorrt" not in sys.modules


def test_auto_takes_openvino_on_this_cpu_and_says_so(art):
    with Pipeline(art, backend="auto", device="cpu") as pipeline:
        assert type(pipeline.backend) is OpenVINOBackend
        summary = pipeline.summary()
    assert summary["backend"] == "auto -> openvino (CPU; openvino is installed)"
    with Pipeline(art, backend="onnxruntime", device="cpu") as pipeline:  # overridable
        assert type(pipeline.backend) is OnnxRuntimeBackend
        assert pipeline.summary()["backend"] == "onnxruntime"


# -- command line ---------------------------------------------------------------------------------
def test_cli_backend_choices_are_the_registry():
    action = next(a for a in build_parser()._actions if a.dest == "backend")
    assert tuple(action.choices) == BACKEND_CHOICES and action.default == "auto"


@pytest.mark.parametrize("backend,says", [("openvino", "Backend: openvino"),
                                          ("auto", "Backend: auto -> openvino"),
                                          ("onnxruntime", "Backend: onnxruntime")])
def test_cli_runs_the_chosen_backend_with_the_same_tracks(art, tmp_path, capsys, backend, says):
    frames, _ = F.make_clip(14)
    F.write_folder(tmp_path / "clip", frames)
    out = tmp_path / f"{backend}.json"
    code = main([str(tmp_path / "clip"), "--artifacts", str(art), "--backend", backend,
                 "--device", "cpu", "--quiet", "--json", str(out)])
    assert code == 0
    assert says in capsys.readouterr().err
    entries = json.loads(out.read_text())
    assert sorted(e["category_id"] for e in entries) == [1, 2]  # red and green squares
    assert all(sum(s is not None for s in e["segmentations"]) == 14 for e in entries)


def test_streams_run_the_static_compile_and_a_clip_shorter_than_a_window_dynamic(art, tmp_path,
                                                                                 caplog):
    """A 15-frame clip (windows of 5, the last one end-aligned): every window has the recorded
    shape and the tracks equal the dynamic compile's. A 3-frame clip's one window does not: it
    runs on the dynamic compile, made when it arrives."""
    def stream(name, num_frames):
        F.write_folder(tmp_path / name, F.make_clip(num_frames)[0])
        out = tmp_path / f"{name}.json"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="runtime.backends"):
            assert main([str(tmp_path / name), "--artifacts", str(art), "--backend", "openvino",
                         "--quiet", "--json", str(out)]) == 0
        return json.loads(out.read_text())

    dynamic = stream("dynamic", 15)
    _record_static_shapes(art, {"frames": [1, 5, 64, 96, 3]})
    static = stream("static", 15)
    assert "for shapes {'frames': (1, 5, 64, 96, 3)}" in caplog.text
    assert "with dynamic shapes" not in caplog.text
    assert sorted(e["category_id"] for e in static) == [1, 2]
    assert [e["segmentations"] for e in static] == [e["segmentations"] for e in dynamic]
    short = stream("short", 3)
    assert "compiling model.onnx with dynamic shapes" in caplog.text
    assert all(sum(s is not None for s in e["segmentations"]) == 3 for e in short)


def test_make_test_installs_the_openvino_extra():
    """``make test`` runs ``setup``, whose pip line installs the ``openvino`` extra."""
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^openvino = \["openvino>=', pyproject, re.MULTILINE)
    if shutil.which("make") is None:
        pytest.fail("make is not installed; the README's commands need it")
    done = subprocess.run(["make", "-n", "-B", "setup"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if "pip install" in x and " -e " in x)
    assert "openvino" in line.split(" -e ", 1)[1], line


def test_deformconv_form_is_refused_with_the_fix_and_auto_takes_onnxruntime(tiny_exports):
    """OpenVINO 2026.4 has no conversion for ONNX DeformConv-19 (VisTR ``--deform-conv onnx``)."""
    art = tiny_exports("vistr", deform_conv="onnx").directory
    with pytest.raises(ArtifactError, match="--deform-conv grid_sample"):
        OpenVINOBackend(load_manifest(art), cache=False).activate()
    with Pipeline(art, backend="auto", device="cpu") as pipeline:
        assert type(pipeline.backend) is OnnxRuntimeBackend
        assert "DeformConv" in pipeline.summary()["backend"]
