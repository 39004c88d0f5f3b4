"""FP16 and INT8 of the tiny TeViT: graphs, manifest, report, runtime runs and accuracy deltas.

Calibration is done once per module on few, short windows (T=3) to stay fast. What each test
asserts is a property that holds for a sound calibration on any machine (issue 19 §4, measured in
docs/notes/lab-notebook.md "INT8 tests that passed by luck"):
- the fallback loop guarantees its budget on the windows it measured, on the machine it ran on;
  so the runtime backend is checked against the budget on the calibration's own held-out windows
  (same numerics), and on unseen windows of another length only for faithful masks and rankings
  (mask IoU, top-K agreement) — a 2-window calibration cannot promise the budget everywhere, and
  the all-INT8 graph of this fixture sits near the budget edge (loss 1.13 here) so the fallback's
  first decision flips with float rounding between machines;
- an AP budget is asserted only on data whose AP resolution (one instance crossing one of the ten
  IoU thresholds) is finer than the budget, and for INT8 on a graph calibrated under that AP
  budget. 3 val videos (~12 instances, resolution ~0.8 AP) could not resolve a 0.5-point budget.
When a trained tiny checkpoint exists (``checkpoints/tevit_tiny.pth``, which the session export
fixture then uses), the AP tests run too.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from calibration.calibrate import CalibrationOptions, calibrate_artifacts
from calibration.checks import MetricCheck, ParityCheck
from calibration.data import collect_windows
from calibration.graph import Selector, node_infos, select
from calibration.keeplist import load_keep_list
from calibration.parity import ParityBudget, compare_outputs
from calibration.qdq import QDQ_OPS, quantized_nodes
from calibration.sensitivity import block_sensitivity, fallback
from export.trt_support import lint_model, lint_onnx, load_support_table
from runtime.backends import OnnxRuntimeBackend
from runtime.manifest import load_manifest

DATA = "synthetic:tiny:2"
FAST = {"windows": 3, "eval_windows": 2, "reference_windows": 1, "window_length": 3,
        "block_depth": 1, "progress": False}
RUNTIME_T = 4  # unseen windows of a length the calibration never used
AP_BUDGET = 0.5  # points of YouTube-VIS AP (issue 7)
AP_VIDEOS = 16


def _trained_checkpoint() -> bool:
    from export.artifacts import default_checkpoint

    return default_checkpoint("tevit", "tiny") is not None


@pytest.fixture(scope="module")
def calibrated(tiny_tevit_artifacts, tmp_path_factory):
    """(artifact dir with model.fp16.onnx and model.int8.onnx, {precision: report section})."""
    dest = tmp_path_factory.mktemp("calibrated") / "tevit"
    shutil.copytree(tiny_tevit_artifacts, dest)
    sections = {p: calibrate_artifacts(dest, precision=p, data=DATA,
                                       options=CalibrationOptions(**FAST))
                for p in ("fp16", "int8")}
    return dest, sections


def _held_out(directory):
    """The calibration's own held-out windows (``calibrate_artifacts`` splits them the same way)."""
    windows = collect_windows(DATA, load_manifest(directory),
                              max_windows=FAST["windows"] + FAST["eval_windows"],
                              length=FAST["window_length"], progress=False)
    return windows.split(FAST["eval_windows"])[1].windows


def _runtime_outputs(manifest, windows):
    outputs = {}
    for precision in ("fp32", "fp16", "int8"):
        backend = OnnxRuntimeBackend(manifest, device="cpu", precision=precision)
        assert backend.optimization == "extended"  # ENABLE_ALL segfaults on FP16 (docs/runtime.md)
        with backend:
            outputs[precision] = [backend.infer(w.frames, w.content_hw) for w in windows]
    return outputs


@pytest.fixture(scope="module")
def runtime_windows(calibrated):
    return collect_windows("synthetic:tiny:3", load_manifest(calibrated[0]), max_windows=2,
                           length=RUNTIME_T, progress=False).windows


def test_manifest_and_report_record_both_graphs(calibrated):
    directory, sections = calibrated
    manifest = load_manifest(directory)
    for precision in ("fp32", "fp16", "int8"):
        entry = manifest.artifact("onnx", precision)
        assert manifest.verified_path(entry).name == (
            "model.onnx" if precision == "fp32" else f"model.{precision}.onnx")
    int8 = manifest.artifact("onnx", "int8")
    assert int8["calibration"]["within_budget"] and int8["calibration"]["method"] == "max"
    report = json.loads((directory / "calibration_report.json").read_text())
    assert set(report) == {"fp16", "int8"}
    assert report["int8"]["sensitivity"] and report["int8"]["fallback"]["steps"]
    assert {r["block"] for r in report["int8"]["sensitivity"]} >= {"backbone", "roi_head"}
    assert report["fp16"]["final"]["within_budget"] and report["int8"]["final"]["within_budget"]
    for section in sections.values():
        assert section["runtime_check"]["optimization"] == "extended"
        # measured on onnxruntime: no static OpenVINO compile was checked, none is recorded
        assert "openvino_static" not in section
    assert "openvino_static" not in int8


def test_runtime_backend_holds_the_budget_the_calibration_measured(calibrated):
    directory, sections = calibrated
    outputs = _runtime_outputs(load_manifest(directory), _held_out(directory))
    for precision in ("fp16", "int8"):
        stats = compare_outputs(outputs["fp32"], outputs[precision])
        loss = ParityBudget().loss(stats)
        assert loss <= 1.0, (precision, stats)
        # the same numerics as the calibration's measurement, which also compared every candidate
        # score (the TopK input), a superset of the top-K scores the engine outputs
        assert loss <= sections[precision]["final"]["value"] + 1e-3, (precision, stats)


def test_runtime_backend_stays_faithful_on_unseen_windows(calibrated, runtime_windows):
    outputs = _runtime_outputs(load_manifest(calibrated[0]), runtime_windows)
    for precision in ("fp16", "int8"):
        stats = compare_outputs(outputs["fp32"], outputs[precision])
        assert stats.mask_iou > 0.9 and stats.topk_match >= 0.8, (precision, stats)


def test_int8_quantizes_only_linear_layers_outside_the_keep_list(calibrated, tiny_tevit_artifacts):
    directory, _ = calibrated
    fp32 = onnx.load(str(directory / "model.onnx"), load_external_data=False)
    infos = {i.name: i for i in node_infos(fp32)}
    int8 = onnx.load(str(directory / "model.int8.onnx"), load_external_data=False)
    keep = load_keep_list("tevit")
    quantized = quantized_nodes(int8)
    assert quantized and {infos[n].op_type for n in quantized} <= set(keep.int8_op_types)
    excluded = set().union(*select(list(infos.values()), list(keep.int8_exclude)).values())
    assert not quantized & excluded
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    dims = int8.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == ["B", "T"]  # dynamic B and T kept


def test_fp16_keeps_io_and_keep_list_groups_in_fp32(calibrated):
    directory, _ = calibrated
    fp16 = onnx.load(str(directory / "model.fp16.onnx"), load_external_data=False)
    fp32 = onnx.load(str(directory / "model.onnx"), load_external_data=False)
    io = lambda m: [(v.name, v.type.tensor_type.elem_type) for v in [*m.graph.input, *m.graph.output]]  # noqa: E731
    assert io(fp16) == io(fp32)
    types = {v.name: v.type.tensor_type.elem_type for v in fp16.graph.value_info}
    kept = set().union(*select(node_infos(fp32), load_keep_list("tevit").fp16_keep).values())
    assert select(node_infos(fp32), [Selector("ln", op_types=("LayerNormalization",))])["ln"] <= kept
    by_name = {n.name: n for n in fp16.graph.node}
    for name in kept:
        assert all(types.get(out) != onnx.TensorProto.FLOAT16 for out in by_name[name].output), name
    assert any(t == onnx.TensorProto.FLOAT16 for t in types.values())


def test_fallback_returns_blocks_until_the_budget_holds(calibrated):
    directory, _ = calibrated
    fp32 = onnx.load(str(directory / "model.onnx"))
    qmodel = onnx.load(str(directory / "model.int8.onnx"))
    windows = collect_windows(DATA, load_manifest(directory), max_windows=1, length=2,
                              progress=False).windows
    # INT8 anywhere moves scores by ~1e-3; the FP32-equivalent graph stays within 1e-5 (a
    # quantizer's graph rewrites may change onnxruntime's fusions, hence not exactly 0).
    strict = ParityCheck(fp32, windows, budget=ParityBudget(scores_max_abs=1e-5, mask_mae=1e-5,
                                                            box_max_abs=1e-2))
    quantized = quantized_nodes(qmodel)
    infos = node_infos(fp32)
    rows = block_sensitivity(qmodel, fp32, infos, quantized, strict, depth=1, progress=False)
    order = [r.block for r in rows]
    assert order and rows[0].measurement.value >= rows[-1].measurement.value
    model, record = fallback(qmodel, fp32, quantized, rows, strict, readmit=False)
    assert record.excluded == order[:len(record.excluded)] and record.final.within_budget
    assert len(record.steps) == len(record.excluded) + 1 and not record.readmitted
    assert not any(step["within_budget"] for step in record.steps[:-1])
    if record.excluded == order:
        assert not any(n.op_type in QDQ_OPS for n in model.graph.node)
    loose = ParityCheck(fp32, windows, budget=ParityBudget(scores_max_abs=1.0, mask_mae=1.0,
                                                           box_max_abs=1e3))
    same, none_back = fallback(qmodel, fp32, quantized, rows, loose)
    assert none_back.excluded == [] and quantized_nodes(same) == quantized


class _AdditiveCheck:
    """A budget whose value is the sum of fixed per-block costs over the blocks with a node
    still INT8 in the measured graph (budget: value <= 1), counting its measurements."""

    kind = "parity"

    def __init__(self, costs: dict[str, float], nodes: dict[str, list[str]]) -> None:
        self.costs, self.nodes, self.calls = costs, nodes, 0

    def measure(self, model):
        from calibration.checks import Measurement

        self.calls += 1
        int8 = quantized_nodes(model)
        value = sum(c for b, c in self.costs.items() if int8 & set(self.nodes[b]))
        return Measurement(value, value <= 1.0)


def test_fallback_tries_returned_blocks_in_int8_again_and_keeps_those_within_budget(calibrated):
    """Ranked alone, block A looks worst, but in the whole graph it costs little: the worst-first
    pass sends A and B back (1.45 -> 1.40 -> 0.90); A is then tried again (0.95, within) and
    stays INT8. B, the block whose return brought the graph within budget, is not retried."""
    from calibration.checks import Measurement
    from calibration.graph import blocks
    from calibration.sensitivity import BlockRow

    directory, _ = calibrated
    fp32 = onnx.load(str(directory / "model.onnx"))
    qmodel = onnx.load(str(directory / "model.int8.onnx"))
    quantized = quantized_nodes(qmodel)
    groups = blocks(node_infos(fp32), 3, only=quantized)  # e.g. neck.fpn_convs.0
    assert len(groups) >= 3, sorted(groups)
    a, b, c, *rest = sorted(groups)
    costs = {a: 0.05, b: 0.5, c: 0.6, **{r: 0.3 / len(rest) for r in rest}}
    ranked_alone = [a, b, c, *rest]  # what per-block sensitivity said, worst first
    rows = [BlockRow(name, tuple(groups[name]), Measurement(9.0 - i, False))
            for i, name in enumerate(ranked_alone)]
    check = _AdditiveCheck(costs, groups)
    model, record = fallback(qmodel, fp32, quantized, rows, check)
    assert record.excluded == [b] and record.readmitted == [a]
    assert record.final.value == pytest.approx(0.95) and record.final.within_budget
    assert quantized_nodes(model) == quantized - set(groups[b])
    assert [s.get("excluded", s.get("readmitted")) for s in record.steps] == [None, a, b, a]
    assert record.steps[-1]["kept"] is True and check.calls == 4
    as_dict = record.as_dict()
    assert (as_dict["excluded_blocks"], as_dict["readmitted_blocks"]) == ([b], [a])

    costs[a] = 0.2  # now A does not fit back: tried, measured over budget, left in FP32
    check = _AdditiveCheck(costs, groups)
    model, record = fallback(qmodel, fp32, quantized, rows, check)
    assert record.excluded == [a, b] and record.readmitted == []
    assert record.final.value == pytest.approx(0.9) and record.steps[-1]["kept"] is False
    assert quantized_nodes(model) == quantized - set(groups[a]) - set(groups[b])


def test_ap_metric_path_runs_through_the_runtime(calibrated, tmp_path):
    from calibration.ap_metric import YtvisApMetric
    from evaluation.synthetic import generate_dataset

    directory, _ = calibrated
    generate_dataset(tmp_path / "val", preset="tiny", videos=1, png=True)
    check = MetricCheck(YtvisApMetric(tmp_path / "val", directory), directory / "model.onnx",
                        budget_drop=AP_BUDGET)
    assert 0.0 <= check.baseline <= 100.0
    same = check.measure(onnx.load(str(directory / "model.onnx")))
    assert same.value == 0.0 and same.within_budget  # the FP32 graph against itself


@pytest.mark.skipif(not _trained_checkpoint(), reason="no trained checkpoints/tevit_tiny.pth: "
                    "AP deltas of an untrained model are meaningless (parity test covers it)")
def test_ap_drop_within_budget_with_trained_tiny_model(calibrated, tmp_path):
    from calibration.ap_metric import YtvisApMetric
    from evaluation.synthetic import generate_dataset

    directory, _ = calibrated
    # 16 short videos: as many frames as 3 val videos, ~4x the instances (finer AP steps)
    paths = generate_dataset(tmp_path / "val", preset="val", videos=AP_VIDEOS, frames=8, png=False)
    instances = len(json.loads(paths.annotations.read_text())["annotations"])
    resolution = 100.0 / (10 * instances)  # one instance across one of the 10 IoU thresholds
    assert resolution < AP_BUDGET / 2, (instances, resolution)
    check = MetricCheck(YtvisApMetric(tmp_path / "val", directory), directory / "model.onnx",
                        budget_drop=AP_BUDGET)
    assert check.baseline > 5.0, "the trained tiny model should detect the synthetic shapes"
    drop = check.measure(onnx.load(str(directory / "model.fp16.onnx")))
    assert drop.within_budget, ("fp16", drop.as_dict())
    # INT8 under the AP budget: the graph written is within it, re-measured independently
    ap_dir = tmp_path / "int8_ap"
    shutil.copytree(directory, ap_dir)
    section = calibrate_artifacts(ap_dir, precision="int8", data=DATA, options=CalibrationOptions(
        **FAST, ap_data=str(tmp_path / "val"), ap_videos=AP_VIDEOS, rank_by="parity"))
    assert section["final"]["within_budget"], section["final"]
    again = check.measure(onnx.load(str(ap_dir / "model.int8.onnx")))
    # the report rounds to 4 decimals
    assert again.within_budget and again.value == pytest.approx(section["final"]["value"], abs=1e-3)


def test_percentile_runs_on_the_onnxruntime_engine(calibrated, tmp_path):
    from calibration.int8 import quantize_int8
    from calibration.qdq import keep_quantized

    directory, _ = calibrated
    fp32 = onnx.load(str(directory / "model.onnx"))
    infos = node_infos(fp32)
    keep = load_keep_list("tevit")
    exclude = set().union(*select(infos, list(keep.int8_exclude)).values())
    candidates = {i.name for i in infos if i.op_type in keep.int8_op_types} - exclude
    windows = collect_windows(DATA, load_manifest(directory), max_windows=2, length=2,
                              progress=False).windows
    result = quantize_int8(directory / "model.onnx", tmp_path / "pct.onnx", windows[:1],
                           method="percentile", candidates=candidates,
                           op_types=keep.int8_op_types, exclude=exclude)
    assert result.engine == "onnxruntime"
    qmodel = onnx.load(str(tmp_path / "pct.onnx"))
    restricted = keep_quantized(qmodel, fp32, quantized_nodes(qmodel) & candidates)
    assert quantized_nodes(restricted) and quantized_nodes(restricted) <= candidates
    for major in (10, 11):  # onnxruntime's INT8 graph: float biases, INT8 zero points
        report = lint_model(restricted, load_support_table(major))
        assert report.ok, report.format()
    stats = ParityCheck(fp32, windows[1:]).measure(restricted)
    # Every candidate in INT8, one calibration window, no fallback: a sanity bound, not the
    # budget (the fallback test enforces that). Measured: mask IoU 0.82 with the trained
    # checkpoint (0.9+ with random weights, whose masks are nearly constant).
    assert np.isfinite(stats.value) and stats.details["mask_iou"] > 0.7, stats.as_dict()


def test_int8_with_a_task_metric_ranks_blocks_by_parity_and_spends_the_metric_on_fallback_only(
        tiny_tevit_artifacts, tmp_path):
    """The AP budget costs one metric run for the baseline, one per fallback step (and one for
    the quantizer's extra nodes), not one per block: that made the AP loop take > 20 minutes."""
    from calibration.errors import CalibrationError

    dest = tmp_path / "tevit"
    shutil.copytree(tiny_tevit_artifacts, dest)
    calls = []

    def constant_metric(path):  # a pluggable metric (AP x 100); constant: nothing may drop
        calls.append(path)
        return 42.0

    section = calibrate_artifacts(dest, precision="int8", data=DATA, options=CalibrationOptions(
        **FAST, metric=constant_metric))
    assert section["ranked_by"] == "parity" and section["check"]["kind"] == "metric"
    rows = section["sensitivity"]
    assert rows and all("AP" not in row and "scores_max_abs" in row for row in rows)
    steps = section["fallback"]["steps"]
    assert len(steps) == 1 and steps[0]["AP_drop"] == 0.0  # full INT8 holds at once
    assert len(calls) == 1 + (section["outside_keep_list"] is not None) + len(steps)
    with pytest.raises(CalibrationError, match="rank_by"):
        calibrate_artifacts(dest, precision="int8", data=DATA,
                            options=CalibrationOptions(**FAST, rank_by="ap"))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_default_roi_align_graphs_pass_the_tensorrt_lint(calibrated, precision):
    """Issue 21 item 1: the graphs ``python -m export.tensorrt --precision P`` builds from (TeViT's
    RoiAlign form; the GridSample form, IFC and VisTR: tests/export/test_trt_real_graphs.py)."""
    directory, _ = calibrated
    entry = load_manifest(directory).artifact("onnx", precision)
    assert entry["tensorrt_plugins"] == [{"op": "RoiAlign", "plugin": "ROIAlign_TRT"}]
    for major in (10, 11):
        report = lint_onnx(directory / entry["file"], load_support_table(major))
        assert report.ok, report.format()
