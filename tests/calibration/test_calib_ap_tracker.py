"""The AP budget is measured with the tracker the graph will be deployed with: ``--ap-tracker
ifc-official`` runs IFC's near-online linking inside the calibration's AP metric."""

from __future__ import annotations

from calibration.__main__ import options_from, parse_args
from calibration.ap_metric import YtvisApMetric
from evaluation.synthetic import generate_dataset
from runtime import pipeline as pipeline_module
from runtime.tracking.ifc_official import NearOnlineTracker


def test_cli_passes_the_tracker_to_the_options():
    args = parse_args(["A", "--precision", "int8", "--ap-data", "D", "--ap-tracker",
                       "ifc-official"])
    assert options_from(args).ap_tracker == "ifc-official"
    assert options_from(parse_args(["A", "--precision", "int8"])).ap_tracker == "default"


def test_ap_metric_streams_with_the_named_tracker(tiny_exports, tmp_path, monkeypatch):
    artifacts = tiny_exports("ifc", two_stage=True).directory
    generate_dataset(tmp_path / "val", preset="tiny", videos=1, frames=8, height=96, width=160,
                     png=True)
    used = []

    class Recording(pipeline_module.Pipeline):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            used.append(type(self.tracker))

    monkeypatch.setattr(pipeline_module, "Pipeline", Recording)
    for tracker in ("ifc-official", "default"):
        ap = YtvisApMetric(tmp_path / "val", artifacts, tracker=tracker)(artifacts / "model.onnx")
        assert 0.0 <= ap <= 100.0
    assert used[0] is NearOnlineTracker and used[1] is not NearOnlineTracker
