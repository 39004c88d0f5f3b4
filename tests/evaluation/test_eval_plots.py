"""PNG charts from the report and benchmark tables (evaluation.plots)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from evaluation.plots import main, plot_accuracy, plot_speed, read_table
from evaluation.report import Row, format_table

pytest.importorskip("matplotlib", reason="matplotlib missing: pip install -e '.[plots]'")

LATENCY = """Some text first.

| preset | backend | ms / window | frames/s | speed vs ORT fp32 | speed vs eager |
|---|---|---|---|---|---|
| tiny | torch_fp32 | 1228 | 4.07 | 0.35x | 1.00x |
| tiny | ort_fp32 | 428 | 11.68 | 1.00x | 2.87x |
| msgshift | torch_fp32 | 7913 | 0.63 | 0.58x | 1.00x |
| msgshift | ort_int8 | 4650 | 1.08 | 0.98x | 1.70x |

after the table
"""


def _png(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
    return image


def test_report_table_round_trips_and_draws(tmp_path):
    rows = [Row("tevit", v, m, "T=5, S=3", ap, ap + 0.2, 3, idf1, 10.0)
            for v, m, ap, idf1 in (("fp32", "streaming", 0.319, 0.603),
                                   ("int8", "streaming", 0.327, 0.592),
                                   ("fp32", "offline", 0.202, 0.381))]
    table = read_table(format_table(rows))
    assert [(r["variant"], r["mode"], r["AP"]) for r in table] == [
        ("fp32", "streaming", "0.319"), ("int8", "streaming", "0.327"),
        ("fp32", "offline", "0.202")]
    image = _png(plot_accuracy(table, tmp_path / "a.png", title="t"))
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # bars, text: not a blank canvas


def test_speed_chart_one_panel_per_preset(tmp_path):
    rows = read_table(LATENCY)
    assert len(rows) == 4 and rows[3]["frames/s"] == "1.08"
    wide = _png(plot_speed(rows, tmp_path / "s.png"))
    narrow = _png(plot_speed(rows[:2], tmp_path / "one.png"))
    assert wide.shape[1] > 1.5 * narrow.shape[1]  # two presets, two panels


def test_cli_and_errors(tmp_path, capsys, monkeypatch):
    (tmp_path / "t.md").write_text(LATENCY)
    assert main(["speed", str(tmp_path / "t.md"), "--out", str(tmp_path / "s.png")]) == 0
    _png(tmp_path / "s.png")
    assert main(["accuracy", str(tmp_path / "t.md"), "--out", str(tmp_path / "a.png")]) == 2
    assert "no column 'model'" in capsys.readouterr().err
    (tmp_path / "none.md").write_text("no table here")
    assert main(["speed", str(tmp_path / "none.md"), "--out", str(tmp_path / "x.png")]) == 2
    assert "no markdown table" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"visdeploy\[plots\]"):
        plot_speed(read_table(LATENCY), tmp_path / "y.png")
