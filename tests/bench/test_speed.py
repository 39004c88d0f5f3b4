"""bench/speed.py's harness: the windows every runner gets, the interleaved order, the budget
text. (The timings themselves are only ever printed by the script, never asserted.)"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS.parent / "bench"))
sys.path.insert(0, str(TESTS / "runtime"))

import rt_fixtures  # noqa: E402
import speed  # noqa: E402
from speed import budget_text, clip_windows, timed_rounds  # noqa: E402
from speed_variants import (  # noqa: E402
    ap_tracker,
    calibrations_to_make,
    delta_text,
    export_dir,
    export_forms,
    nncf_record,
    scores_delta,
)

from runtime.manifest import load_manifest  # noqa: E402


@pytest.fixture(scope="module")
def contract_artifacts(tmp_path_factory):
    """The runtime tests' contract graph (window 5, stride 3, input 64x96)."""
    return rt_fixtures.build_contract_artifacts(tmp_path_factory.mktemp("contract"))


def test_windows_slide_by_the_manifest_stride(contract_artifacts):
    manifest = load_manifest(contract_artifacts)  # window 5, stride 3, input 64x96
    windows, stride = clip_windows(manifest, rounds=3)
    assert stride == 3 and windows.frames.shape == (4, 5, 64, 96, 3)
    np.testing.assert_array_equal(windows.frames[1, :2], windows.frames[0, 3:])  # overlap
    assert not np.array_equal(windows.frames[0, 0], windows.frames[0, 1])  # frames move
    assert windows.content_hw.tolist() == [[64, 96]] * 4


def test_rounds_interleave_every_runner_on_the_same_window(contract_artifacts):
    windows, _ = clip_windows(load_manifest(contract_artifacts), rounds=3)
    calls = []
    runners = {name: (lambda w, n=name: calls.append((n, int(w.frames[0, 0, 0, 0, 0]))))
               for name in ("a", "b", "c")}
    times = timed_rounds(runners, windows)
    assert {n: len(v) for n, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(wall >= 0 and cpu >= 0 for v in times.values() for wall, cpu in v)
    first = [int(w.frames[0, 0, 0, 0, 0]) for w in windows]
    order = [n for n, _ in calls[3:]]
    assert order == ["b", "c", "a", "c", "a", "b", "a", "b", "c"]  # one later each round
    assert [v for _, v in calls[3:]] == [first[1]] * 3 + [first[2]] * 3 + [first[3]] * 3


def test_budget_text():
    assert budget_text(None) == "not measured"
    assert budget_text({"value": 0.62, "within_budget": True}) == "parity loss 0.62 within"
    static_ap = {"value": 0.2, "within_budget": True, "check": "AP", "as_deployed": {}}
    assert budget_text(static_ap) == "AP drop 0.2 within"
    assert budget_text({"value": 0.8, "within_budget": False, "AP_drop": 0.8}) == \
        "AP drop 0.8 OVER"
    nncf = {"value": 0.9, "within_budget": True, "before_fallback": 23.0, "blocks_back_to_fp32": 9}
    assert budget_text(nncf) == ("parity loss 0.9 within (NNCF alone 23; 9 blocks back to FP32)")
    assert budget_text({**nncf, "measured_on": "openvino"}) == (
        "parity loss 0.9 within on openvino (NNCF alone 23; 9 blocks back to FP32)")
    assert budget_text({**nncf, "blocks_back_to_fp32": 2, "blocks_readmitted": 7}) == (
        "parity loss 0.9 within (NNCF alone 23; 2 blocks back to FP32, 7 more tried and kept "
        "INT8)")


def test_tevit_tables_default_to_the_per_level_roi_align_form():
    assert speed.parse_args([]).roi_align == "onnx_gathered"


def test_nncf_alone_skips_modelopts_int8_calibration():
    both = ["modelopt", "nncf"]
    assert calibrations_to_make(["fp32", "fp16", "int8"], both, {"fp32"}) == ["fp16", "int8"]
    assert calibrations_to_make(["fp32", "int8"], ["nncf"], {"fp32"}) == []
    assert calibrations_to_make(["fp32", "fp16", "int8"], ["nncf"], {"fp32"}) == ["fp16"]
    assert calibrations_to_make(["int8"], both, {"fp32", "int8"}) == []  # already made


def test_export_forms_apply_per_model_and_name_the_directory(tmp_path):
    from types import SimpleNamespace

    args = SimpleNamespace(roi_align="onnx", deform_conv="onnx")
    assert export_forms("tevit", args) == {"roi_align": "onnx"}
    assert export_forms("vistr", args) == {"deform_conv": "onnx"}
    assert export_forms("ifc", args) == {}
    assert export_forms("vistr", SimpleNamespace(roi_align="onnx", deform_conv=None)) == {}
    assert export_dir(tmp_path, "vistr", "tiny", (192, 320), "onnx").name == "vistr-tiny-192x320-onnx"
    assert export_dir(tmp_path, "ifc", "tiny", (192, 320), None).name == "ifc-tiny-192x320"


def test_the_ap_budget_streams_each_model_with_its_deployed_tracker():
    assert ap_tracker("ifc", "auto") == "ifc-official"  # near-online T=5 S=1 linking
    assert ap_tracker("tevit", "auto") == "default"
    assert ap_tracker("vistr", "auto") == "default"
    assert ap_tracker("ifc", "default") == "default"  # an explicit choice wins
    assert ap_tracker("tevit", "ifc-official") == "ifc-official"


def test_malloc_keep_reexecutes_the_script_with_the_kept_malloc_environment(monkeypatch):
    """glibc reads its tunables only at start-up, so ``--malloc keep`` must restart the script
    with them set (and not loop once they are)."""
    for key in speed.KEPT_MALLOC_ENV:
        monkeypatch.delenv(key, raising=False)
    assert speed.malloc_mode() == "default"
    calls = []

    def fake_execve(path, argv, env):
        calls.append((path, argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(speed.os, "execve", fake_execve)
    with pytest.raises(SystemExit):
        speed.main(["--malloc", "keep", "--flops-only", "--models", "ifc:tiny"])
    (path, argv, env), = calls
    assert path == sys.executable and argv[1].endswith("bench/speed.py")
    assert argv[2:] == ["--malloc", "keep", "--flops-only", "--models", "ifc:tiny"]
    assert all(env[k] == v for k, v in speed.KEPT_MALLOC_ENV.items())
    for key, value in speed.KEPT_MALLOC_ENV.items():
        monkeypatch.setenv(key, value)
    assert speed.malloc_mode() == "keep"


def test_scores_delta_compares_shared_rows_and_says_when_there_are_none():
    def outputs(scores, queries, labels):
        return {"scores": np.array([scores], np.float32), "query_index": np.array([queries]),
                "labels": np.array([labels])}

    ref = outputs([0.5, 0.4], [3, 7], [1, 1])
    assert scores_delta(ref, outputs([0.45, 0.1], [3, 9], [1, 1])) == pytest.approx(0.05)
    # the same query under another label is not the same row; no shared row: no figure, not 0
    assert scores_delta(ref, outputs([0.5, 0.4], [3, 7], [2, 2])) is None
    assert delta_text(None) == "no shared top-K row" and delta_text(0.05) == "5.0e-02"


def test_the_nncf_record_has_calibrations_fields_and_where_it_was_measured():
    from types import SimpleNamespace

    from calibration.int8 import Int8Result
    from runtime.backends.cpu_isa import int8_kernel_family

    check = SimpleNamespace(describe=lambda: {"kind": "metric", "metric": "AP",
                                              "backend": "openvino"})
    final = {"value": -0.27, "within_budget": True, "measured_on": "openvino"}
    record = nncf_record(Int8Result(Path("model.int8.onnx"), "nncf", "nncf-performance", 16, 12.9),
                         check, final)
    assert record["tool"] == "nncf" and record["method"] == "nncf-performance"
    assert (record["check"], record["value"], record["within_budget"]) == ("metric", -0.27, True)
    assert record["check_backend"] == "openvino" and record["check_cpu"] == int8_kernel_family()
    assert record["final"] == final


def test_a_workdirs_nncf_graph_of_other_settings_is_made_again(tmp_path):
    import json

    from speed_variants import _has_int8

    from calibration.nncf_int8 import nncf_method

    directory = rt_fixtures.build_contract_artifacts(tmp_path / "art")
    assert not _has_int8(directory, nncf_method())
    data = json.loads((directory / "manifest.json").read_text())
    old = {"engine": "nncf", "method": nncf_method(overflow_fix="first_layer")}
    data["artifacts"].append(dict(data["artifacts"][0], precision="int8", calibration=old))
    (directory / "manifest.json").write_text(json.dumps(data))
    assert old["method"] == "nncf-performance"  # what graphs made before the choice record
    assert not _has_int8(directory, nncf_method())
    assert _has_int8(directory, nncf_method(overflow_fix="first_layer"))
