"""OpenVINO's INT8 kernel family of a CPU, and the warning when an INT8 graph's budget was
measured on another runtime or another family than the one this CPU runs."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from runtime.backends.cpu_isa import int8_check_warning, int8_kernel_family
from runtime.backends.openvino import OpenVINOBackend, openvino_installed
from runtime.manifest import load_manifest

SAPPHIRE_RAPIDS = ("flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni "
                   "avx_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n")
ICE_LAKE = "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni\n"
SKYLAKE_SP = "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512bw\n"
ALDER_LAKE = "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx_vnni\n"
HASWELL = "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma\n"


@pytest.mark.parametrize("cpuinfo, cap, family", [
    (SAPPHIRE_RAPIDS, None, "AMX"),
    (SAPPHIRE_RAPIDS, "DEFAULT", "AMX"),
    (SAPPHIRE_RAPIDS, "AVX512_CORE_AMX", "AMX"),
    (SAPPHIRE_RAPIDS, "AVX512_CORE_VNNI", "AVX-512 VNNI"),
    (SAPPHIRE_RAPIDS, "AVX10_1_512", "AVX-512 VNNI"),
    (SAPPHIRE_RAPIDS, "AVX512_CORE", "AVX-512"),  # AVX2_VNNI is not below AVX512_CORE
    (SAPPHIRE_RAPIDS, "AVX2_VNNI", "AVX-VNNI"),
    (SAPPHIRE_RAPIDS, "avx2", "AVX2"),
    (SAPPHIRE_RAPIDS, "SSE41", "SSE4.1"),
    (ICE_LAKE, None, "AVX-512 VNNI"),
    (ICE_LAKE, "AVX2_VNNI", "AVX2"),  # a cap above what the CPU has
    (SKYLAKE_SP, None, "AVX-512"),
    (ALDER_LAKE, None, "AVX-VNNI"),
    (HASWELL, None, "AVX2"),
])
def test_int8_kernel_family(cpuinfo, cap, family):
    environ = {"ONEDNN_MAX_CPU_ISA": cap} if cap else {}
    assert int8_kernel_family(cpuinfo, environ) == family


def test_no_family_without_x86_flags():
    assert int8_kernel_family("", {}) is None  # no /proc/cpuinfo flags (macOS, Windows)
    assert int8_kernel_family("Features\t: fp asimd crc32\n", {}) is None  # aarch64 (Jetson)


def test_the_warning_names_both_families_and_the_command():
    warning = int8_check_warning({"check_backend": "openvino", "check_cpu": "AMX"}, "AVX2")
    assert "OpenVINO's AMX kernels" in warning and "runs AVX2 kernels" in warning
    assert "--check-backend openvino" in warning
    ort = int8_check_warning({"check_backend": "onnxruntime", "check_cpu": None}, "AMX")
    assert "measured on onnxruntime" in ort and "--check-backend openvino" in ort


@pytest.mark.parametrize("calibration, family", [
    ({"check_backend": "openvino", "check_cpu": "AMX"}, "AMX"),  # measured here
    ({"check_backend": "openvino", "check_cpu": "AMX"}, None),  # this CPU unknown
    ({"check_backend": "openvino", "check_cpu": None}, "AMX"),  # measured where unknown
    ({"check_backend": None, "check_cpu": None}, "AMX"),  # a metric that does not say
    ({}, "AMX"),  # a record written before these fields
])
def test_no_warning_without_evidence_of_another_family(calibration, family):
    assert int8_check_warning(calibration, family) is None


def _with_int8_entry(contract_artifacts, dest, calibration):
    """The contract artifacts plus an ``int8`` entry (the same graph file) whose calibration
    record is ``calibration``."""
    shutil.copytree(contract_artifacts, dest, ignore=shutil.ignore_patterns("openvino_cache"))
    data = json.loads((dest / "manifest.json").read_text())
    int8 = dict(data["artifacts"][0], precision="int8", calibration=calibration)
    data["artifacts"].append(int8)
    (dest / "manifest.json").write_text(json.dumps(data))
    return load_manifest(dest)


@pytest.mark.skipif(not openvino_installed(), reason="openvino not installed (make test installs it)")
@pytest.mark.parametrize("measured, warns", [("elsewhere", True), ("here", False)])
def test_the_openvino_backend_warns_when_the_budget_was_measured_with_another_family(
        contract_artifacts, tmp_path, caplog, measured, warns):
    here = int8_kernel_family()
    if here is None:
        pytest.skip("this CPU has no x86 /proc/cpuinfo flags: no family to compare")
    other = "SSE4.1" if here != "SSE4.1" else "AVX2"
    family = other if measured == "elsewhere" else here
    manifest = _with_int8_entry(contract_artifacts, tmp_path / "art",
                                {"check_backend": "openvino", "check_cpu": family})
    with caplog.at_level(logging.WARNING, "runtime.backends"):
        with OpenVINOBackend(manifest, precision="int8"):
            pass
    warnings = [r.getMessage() for r in caplog.records if "accuracy budget" in r.getMessage()]
    assert len(warnings) == (1 if warns else 0), warnings
    if warns:
        assert f"OpenVINO's {other} kernels" in warnings[0] and f"runs {here} kernels" in warnings[0]
