"""Static-shape OpenVINO compiles are measured per artifact (calibration/openvino_static.py).

Compiled for one window shape, OpenVINO ran msgshift's NNCF INT8 graph 26 % faster within its
budget but VisTR tiny's NNCF INT8 graph into wrong outputs, so calibration with
``--check-backend openvino`` measures the written graph compiled static and records the shape
in the manifest only when it holds the budget; the runtime then compiles that shape.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from calibration.__main__ import options_from, parse_args
from calibration.calibrate import CalibrationOptions, calibrate_artifacts
from calibration.checks import ParityCheck
from calibration.data import Windows
from calibration.openvino_static import (
    check_static_compile,
    manifest_fields,
    manifest_record,
    window_shapes,
)
from calibration.parity import ParityBudget

pytest.importorskip("openvino", reason="the openvino extra is not installed")

# the manifest's window length (T=5 for the tiny TeViT): the shape the runtime feeds
FAST = dict(windows=2, eval_windows=1, reference_windows=1, threads=1, progress=False)


def _calibrate(directory, **options):
    return calibrate_artifacts(directory, precision="fp16", data="synthetic:tiny:2",
                               options=CalibrationOptions(**{**FAST, **options}))


def _entry(directory, precision="fp16"):
    data = json.loads((directory / "manifest.json").read_text())
    return next(a for a in data["artifacts"] if a["precision"] == precision)


def test_window_shapes_are_one_batch_1_window():
    frames = np.zeros((3, 4, 16, 24, 3), np.uint8)
    shapes = window_shapes(Windows.unpadded(frames), ["frames", "content_hw"])
    assert shapes == {"frames": [1, 4, 16, 24, 3], "content_hw": [1, 2]}
    assert window_shapes(Windows.unpadded(frames), ["frames"]) == {"frames": [1, 4, 16, 24, 3]}


def test_a_static_compile_within_budget_is_recorded_and_run_by_the_runtime(
        tiny_tevit_artifacts_copy, monkeypatch):
    """Every measurement of an OpenVINO-checked calibration runs on OpenVINO; the written graph
    compiled static holds the budget, so the manifest records its shape and the runtime runs it."""
    from calibration import openvino_session
    from runtime.backends import OpenVINOBackend
    from runtime.manifest import load_manifest

    compiled = []
    real_init = openvino_session.OpenVINOSession.__init__

    def recording_init(self, model, **kwargs):
        compiled.append(kwargs)
        real_init(self, model, **kwargs)

    monkeypatch.setattr(openvino_session.OpenVINOSession, "__init__", recording_init)
    art = tiny_tevit_artifacts_copy
    section = _calibrate(art, check_backend="openvino")
    assert section["check"]["backend"] == "openvino"
    assert section["final"]["within_budget"], section["final"]
    # the FP32 reference and the FP16 candidate dynamic, the candidate static in two forms
    assert sum(not k.get("shapes") for k in compiled) >= 2
    assert sum(bool(k.get("shapes")) for k in compiled) == 2
    static = section["openvino_static"]
    h, w = load_manifest(art).input_hw
    assert static["inputs"] == {"frames": [1, 5, h, w, 3], "content_hw": [1, 2]}
    assert static["within_budget"] and static["as_deployed"]["within_budget"], static
    # the static compile measured like the dynamic one: the same windows, budget and form
    assert static["as_checked"]["windows"] == section["final"]["windows"]
    assert _entry(art)["openvino_static"] == manifest_record(static)
    # where the budget was measured: OpenVINO, with this CPU's INT8 kernel family
    from runtime.backends.cpu_isa import int8_kernel_family

    assert section["check"]["cpu"] == int8_kernel_family()
    recorded = _entry(art)["calibration"]
    assert (recorded["check_backend"], recorded["check_cpu"]) == ("openvino", int8_kernel_family())
    from visdeploy.info import describe

    assert f"OpenVINO static shape frames [1, 5, {h}, {w}, 3]" in describe(art)[0]
    smoke = section["runtime_check"]["openvino"]
    assert smoke["static_shapes"] == static["inputs"] and smoke["within_budget"], smoke

    frames = np.random.default_rng(1).integers(0, 255, (1, 5, h, w, 3), np.uint8)
    manifest = load_manifest(art)
    with OpenVINOBackend(manifest, precision="fp16", threads=1) as backend:
        static_out = backend.infer(frames)
        assert backend.dynamic is None  # the window had the recorded shape
        backend.infer(frames[:, :3])  # another frame count runs the dynamic compile
        assert backend.dynamic is not None
    with OpenVINOBackend(manifest, precision="fp16", threads=1, static_shapes=False) as dynamic:
        dynamic_out = dynamic.infer(frames)
    # the same FP16 graph: static and dynamic kernels agree far inside the parity budget
    assert np.abs(static_out["scores"] - dynamic_out["scores"]).max() < 2e-3


def test_a_static_compile_beyond_the_budget_is_not_recorded(tiny_tevit_artifacts, tmp_path):
    """The calibration's static check, a real measurement of a candidate that differs from FP32
    (every float weight scaled by 1.01), judged by a budget no differing graph can hold: the
    report keeps the measurement, the manifest gets nothing (the runtime stays dynamic)."""
    from onnx import numpy_helper

    from calibration.calibrate import calibration_job, openvino_static_check

    candidate = onnx.load(str(tiny_tevit_artifacts / "model.onnx"))
    for init in candidate.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32 and value.size > 1:
            init.CopyFrom(numpy_helper.from_array(value * np.float32(1.01), init.name))
    onnx.save(candidate, str(tmp_path / "candidate.onnx"))
    impossible = ParityBudget(scores_max_abs=1e-9, mask_mae=1e-9, box_max_abs=1e-9)
    options = CalibrationOptions(**FAST, check_backend="openvino", parity=impossible)
    job = calibration_job(tiny_tevit_artifacts, "synthetic:tiny:2", options)
    record = openvino_static_check(job, tmp_path / "candidate.onnx")
    assert record["inputs"]["frames"][1] == 5 and not record["within_budget"]
    assert record["value"] > 1 and record["as_deployed"]["windows"] == 1
    assert manifest_fields(record) == {}


def test_an_ap_budget_measures_the_static_compile_as_deployed(tiny_tevit_artifacts, tmp_path,
                                                              monkeypatch):
    """With ``--ap-data`` the static compile is judged by the AP budget: the AP metric streams
    the videos through the runtime with the shape in the staged manifest entry, so the OpenVINO
    backend compiles it, as it would for the deployed artifact. FP32 against itself: drop 0."""
    from calibration.ap_metric import YtvisApMetric
    from calibration.calibrate import calibration_job, openvino_static_check
    from evaluation.synthetic import generate_dataset
    from runtime.backends.openvino import OpenVINOBackend

    generate_dataset(tmp_path / "val", preset="tiny", videos=1, frames=6, height=96, width=160,
                     png=True)
    compiled = []
    real_activate = OpenVINOBackend.activate_impl

    def recording_activate(self):
        real_activate(self)
        compiled.append(dict(self.static_shapes))

    monkeypatch.setattr(OpenVINOBackend, "activate_impl", recording_activate)
    options = CalibrationOptions(**FAST, check_backend="openvino", ap_data=str(tmp_path / "val"))
    job = calibration_job(tiny_tevit_artifacts, "synthetic:tiny:2", options)
    assert job.check.kind == "metric" and job.check.measures_static_shapes
    record = openvino_static_check(job, tiny_tevit_artifacts / "model.onnx")
    assert record["check"] == "AP" and record["inputs"]["frames"][1] == 5
    assert record["within_budget"] and record["value"] == 0.0, record
    assert compiled == [{}, {k: tuple(v) for k, v in record["inputs"].items()}]  # FP32, static
    assert manifest_fields(record) == {"openvino_static": {"inputs": record["inputs"],
                                                           "AP_drop": 0.0}}
    from visdeploy.info import _notes

    assert "OpenVINO static shape frames [1, 5" in _notes(manifest_fields(record))
    assert "(AP drop 0.0)" in _notes(manifest_fields(record))
    on_onnxruntime = YtvisApMetric(tmp_path / "val", tiny_tevit_artifacts, backend="onnxruntime")
    with pytest.raises(ValueError, match="OpenVINO compile"):
        on_onnxruntime.results(tiny_tevit_artifacts / "model.onnx", record["inputs"])


def test_a_metric_that_cannot_run_static_shapes_is_not_measured(tiny_tevit_artifacts):
    from calibration.calibrate import calibration_job, openvino_static_check

    options = CalibrationOptions(**FAST, check_backend="openvino", metric=lambda path: 50.0)
    job = calibration_job(tiny_tevit_artifacts, "synthetic:tiny:2", options)
    record = openvino_static_check(job, tiny_tevit_artifacts / "model.onnx")
    assert "cannot run a graph compiled for a static shape" in record["skipped"]
    assert manifest_fields(record) == {}
    with pytest.raises(ValueError, match="static shapes"):
        job.check.measure(onnx.load(str(tiny_tevit_artifacts / "model.onnx")),
                          shapes={"frames": [1, 5, 8, 8, 3]})


def test_wrong_outputs_fail_the_static_check(tiny_tevit_artifacts):
    """A static compile whose outputs are not the reference's (here: the reference of other
    windows, as if the compile had computed something else) is beyond the budget."""
    from calibration.data import collect_windows
    from runtime.manifest import load_manifest

    manifest = load_manifest(tiny_tevit_artifacts)
    fp32 = onnx.load(str(tiny_tevit_artifacts / "model.onnx"))
    windows = collect_windows("synthetic:tiny:2", manifest, max_windows=2, length=3,
                              progress=False).windows
    check = ParityCheck(fp32, windows[:1], threads=1, backend="openvino")
    check.windows = windows[1:]  # (the same windows pass: the within-budget test above)
    record = check_static_compile(fp32, check)
    assert not record["within_budget"] and manifest_fields(record) == {}


def test_a_window_length_the_runtime_does_not_feed_is_not_measured(tiny_tevit_artifacts):
    """T=3 calibration windows, the runtime feeds the manifest's T=5: a static compile for T=3
    would never run, so it is neither measured nor recorded, and the report says why."""
    from calibration.calibrate import calibration_job, openvino_static_check

    options = CalibrationOptions(**FAST, check_backend="openvino", window_length=3)
    job = calibration_job(tiny_tevit_artifacts, "synthetic:tiny:2", options)
    record = openvino_static_check(job, tiny_tevit_artifacts / "model.onnx")
    assert "T=3" in record["skipped"] and "--window-length" in record["skipped"]
    assert manifest_fields(record) == {}


def test_only_openvino_checks_measure_a_static_compile(tiny_tevit_artifacts):
    """Off by option here; with an onnxruntime check: test_calib_tevit.py's manifest test."""
    from types import SimpleNamespace

    from calibration.calibrate import openvino_static_check
    from runtime.manifest import load_manifest

    art = tiny_tevit_artifacts
    off = CalibrationOptions(check_backend="openvino", openvino_static=False)
    assert openvino_static_check(SimpleNamespace(options=off), art / "model.onnx") is None
    fp32 = onnx.load(str(art / "model.onnx"))
    h, w = load_manifest(art).input_hw
    check = ParityCheck(fp32, Windows.unpadded(np.zeros((1, 3, h, w, 3), np.uint8)), threads=1)
    with pytest.raises(ValueError, match="measured on OpenVINO"):
        check_static_compile(fp32, check)


def test_fp32_converts_nothing_and_records_its_static_compile(tiny_tevit_artifacts_copy, capsys):
    """``--precision fp32``: model.onnx compiled static against its dynamic compile, held to FP32
    rounding; the FP32 entry gets the record (its file and checksum unchanged) and the runtime's
    FP32 graph runs on it."""
    from calibration.__main__ import main
    from runtime.backends import OpenVINOBackend
    from runtime.manifest import load_manifest

    art = tiny_tevit_artifacts_copy
    before = _entry(art, "fp32")
    assert main([str(art), "--precision", "fp32", "--data", "synthetic:tiny:2", "--windows", "1",
                 "--eval-windows", "1", "--check-backend", "openvino", "--threads", "1",
                 "--quiet"]) == 0
    assert "within the FP32 budget" in capsys.readouterr().out
    entry = _entry(art, "fp32")
    assert {k: v for k, v in entry.items() if k != "openvino_static"} == before
    assert entry["openvino_static"]["inputs"]["frames"][1] == 5
    report = json.loads((art / "calibration_report.json").read_text())["fp32"]
    assert report["check"]["budget"]["scores_max_abs"] == 1e-4  # FP32_STATIC_BUDGET
    assert report["runtime_check"]["openvino"]["static_shapes"] == entry["openvino_static"][
        "inputs"]
    with OpenVINOBackend(load_manifest(art), threads=1) as backend:
        assert backend.static_shapes["frames"][1] == 5
    assert not list(art.glob("model.fp32*.onnx"))  # nothing converted, nothing written


def test_fp32_without_an_openvino_check_is_refused(tiny_tevit_artifacts_copy):
    from calibration.errors import CalibrationError

    with pytest.raises(CalibrationError, match="--check-backend openvino"):
        calibrate_artifacts(tiny_tevit_artifacts_copy, precision="fp32", data="synthetic:tiny:1",
                            options=CalibrationOptions(**FAST))


def test_cli_turns_the_static_check_off():
    assert options_from(parse_args(["A", "--precision", "int8"])).openvino_static
    args = parse_args(["A", "--precision", "int8", "--no-openvino-static"])
    assert not options_from(args).openvino_static
