"""A CPU backend names the faster export form of a TeViT artifact exported in TensorRT's form."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from runtime.backends import open_backend
from runtime.backends.cpu_forms import cpu_export_form_advice
from runtime.backends.openvino import openvino_installed
from runtime.manifest import load_manifest

CPU_BACKENDS = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    not openvino_installed(), reason="openvino not installed (make test installs it)"))]


def _with_roi_align(source, dest, form: str | None):
    """A copy of the artifact directory whose manifest records ``form`` (None: no record, as
    manifests written before the record existed)."""
    shutil.copytree(source, dest)
    data = json.loads((dest / "manifest.json").read_text())
    extra = data.setdefault("model_extra", {})
    extra.pop("roi_align", None)
    if form is not None:
        extra["roi_align"] = form
    (dest / "manifest.json").write_text(json.dumps(data))
    return dest


def test_the_default_tevit_export_is_tensorrts_form_and_gets_the_advice(tiny_tevit_artifacts):
    manifest = load_manifest(tiny_tevit_artifacts)
    assert manifest.data["model_extra"]["roi_align"] == "onnx"
    advice = cpu_export_form_advice(manifest)
    assert "ROI_ALIGN=onnx_gathered" in advice and "PRESET=tiny" in advice


@pytest.mark.parametrize("form", ["onnx_gathered", "grid_sample", None])
def test_no_advice_for_other_forms_or_an_unrecorded_one(tiny_tevit_artifacts, tmp_path, form):
    directory = _with_roi_align(tiny_tevit_artifacts, tmp_path / "tevit", form)
    assert cpu_export_form_advice(load_manifest(directory)) is None


def test_no_advice_for_models_without_roi_align(contract_artifacts):
    assert load_manifest(contract_artifacts).model != "tevit"
    assert cpu_export_form_advice(load_manifest(contract_artifacts)) is None


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_cpu_backend_logs_the_advice_once_on_activation(tiny_tevit_artifacts, caplog, backend):
    with caplog.at_level(logging.INFO, logger="runtime.backends"):
        with open_backend(load_manifest(tiny_tevit_artifacts), backend, device="cpu"):
            pass
    advice = [r for r in caplog.records if "ROI_ALIGN=onnx_gathered" in r.getMessage()]
    assert len(advice) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_per_level_export_runs_without_advice(tiny_exports, caplog, backend):
    manifest = load_manifest(tiny_exports("tevit", roi_align="onnx_gathered").directory)
    caplog.clear()  # the export's own log names its directory, which says onnx_gathered
    with caplog.at_level(logging.INFO, logger="runtime.backends"):
        with open_backend(manifest, backend, device="cpu"):
            pass
    assert not [r for r in caplog.records if "ROI_ALIGN=onnx_gathered" in r.getMessage()]
