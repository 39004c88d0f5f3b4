"""``python -m runtime.stream``: outputs, setup errors (exit 2), mid-stream errors, Ctrl-C."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rt_fixtures as F

from runtime.progress import Progress, format_summary
from runtime.stream import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    frames, _ = F.make_clip(20)
    return F.write_mp4(tmp_path_factory.mktemp("cli") / "clip.mp4", frames)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _frame_count(path: Path) -> int:
    return int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))


def test_cli_writes_every_output(clip_mp4, contract_artifacts, tmp_path, capsys):
    code = main([str(clip_mp4), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--window", "4", "--stride", "2", "--out", str(tmp_path / "o.mp4"),
                 "--json", str(tmp_path / "r.json"), "--events", str(tmp_path / "e.jsonl")])
    assert code == 0
    assert [line["frame"] for line in _lines(tmp_path / "e.jsonl")] == list(range(20))
    entries = json.loads((tmp_path / "r.json").read_text())
    assert len(entries) == 2 and all(len(e["segmentations"]) == 20 for e in entries)
    assert _frame_count(tmp_path / "o.mp4") == 20
    err = capsys.readouterr().err
    assert "Done: 20 frames" in err and "2 tracks" in err and "Latency per frame" in err
    assert "inference" in err and "frames/s" in err


def test_cli_max_frames(clip_mp4, contract_artifacts, tmp_path):
    code = main([str(clip_mp4), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--quiet", "--max-frames", "7", "--events", str(tmp_path / "e.jsonl")])
    assert code == 0 and len(_lines(tmp_path / "e.jsonl")) == 7


@pytest.mark.parametrize("extra,match", [
    (["--backend", "tensorrt"], "TensorRT backend"),
    (["--out", "/nonexistent-dir/o.mp4"], "cannot write output"),
    (["--window", "4", "--stride", "4"], "1 <= stride < window"),
    (["--show"], "GUI support"),
])
def test_cli_setup_errors_exit_2_before_processing(clip_mp4, contract_artifacts, tmp_path,
                                                   capsys, extra, match):
    if extra[0] == "--backend" and importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed; the refusal cannot be observed")
    if extra == ["--show"]:
        try:
            cv2.namedWindow("probe")
            pytest.skip("this OpenCV has GUI support")
        except cv2.error:
            pass
    events = tmp_path / "e.jsonl"
    code = main([str(clip_mp4), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--events", str(events), *extra])
    assert code == 2 and match in capsys.readouterr().err
    assert not events.exists() or events.read_text() == ""


def test_cli_missing_source_and_artifacts(contract_artifacts, tmp_path, capsys):
    assert main([str(tmp_path / "nope.mp4"), "--artifacts", str(contract_artifacts)]) == 2
    assert "does not exist" in capsys.readouterr().err
    frames, _ = F.make_clip(3)
    F.write_folder(tmp_path / "c", frames)
    assert main([str(tmp_path / "c"), "--artifacts", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_cli_truncated_mp4_keeps_outputs_up_to_last_good_frame(clip_mp4, contract_artifacts,
                                                               tmp_path):
    fast = F.make_faststart(clip_mp4, tmp_path / "fast.mp4")
    data = fast.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    capture, decoded = cv2.VideoCapture(str(tmp_path / "cut.mp4")), 0
    while capture.read()[0]:
        decoded += 1
    code = main([str(tmp_path / "cut.mp4"), "--artifacts", str(contract_artifacts), "--quiet",
                 "--device", "cpu", "--events", str(tmp_path / "e.jsonl"),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0 and 0 < decoded < 20
    assert len(_lines(tmp_path / "e.jsonl")) == decoded
    assert all(len(e["segmentations"]) == decoded
               for e in json.loads((tmp_path / "r.json").read_text()))


def test_cli_size_change_error_keeps_frames_before_it(contract_artifacts, tmp_path, capsys):
    small, _ = F.make_clip(7)
    folder = F.write_folder(tmp_path / "mixed", small)
    cv2.imwrite(str(folder / "7.png"), np.zeros((120, 200, 3), np.uint8))
    code = main([str(folder), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--quiet", "--on-size-change", "error", "--events", str(tmp_path / "e.jsonl")])
    assert code == 1 and "frame 7 is 200x120" in capsys.readouterr().err
    assert len(_lines(tmp_path / "e.jsonl")) == 7


def test_ctrl_c_flushes_every_sink(contract_artifacts, tmp_path):
    frames, _ = F.make_clip(40)
    folder = F.write_folder(tmp_path / "long", np.concatenate([frames] * 50))  # 2000 frames
    out = {name: tmp_path / name for name in ("e.jsonl", "r.json", "o.mp4")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.stream", str(folder), "--artifacts",
         str(contract_artifacts), "--device", "cpu", "--quiet", "--events", str(out["e.jsonl"]),
         "--json", str(out["r.json"]), "--out", str(out["o.mp4"])],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out["e.jsonl"].exists() and out["e.jsonl"].read_text().count("\n") >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    written = len(_lines(out["e.jsonl"]))
    assert 20 <= written < 2000 and f"Stopped (Ctrl-C): {written} frames" in stderr
    entries = json.loads(out["r.json"].read_text())
    assert entries and all(len(e["segmentations"]) == written for e in entries)
    assert _frame_count(out["o.mp4"]) == written


def test_progress_bar_and_live_status_line():
    stream = io.StringIO()
    bar = Progress(total=100, label="clip.mp4", stream=stream)
    bar.interval_s = 0
    bar.update(50, tracks=2, latency_ms=12.0)
    live = Progress(total=None, label="camera 0", stream=stream)
    live.interval_s = 0
    live.update(30, tracks=1, latency_ms=80.0)
    first, second = stream.getvalue().splitlines()
    assert first.startswith("[############............]  50% 50/100 frames") and "ETA" in first
    assert second.startswith("camera 0: 30 frames") and "latency 80 ms" in second
    summary = {"frames": 10, "tracks": 2, "latency_mean_ms": 5.0, "latency_p95_ms": 9.0,
               "stages": {"inference": {"total_s": 1.0, "mean_ms": 100.0, "p95_ms": 120.0,
                                        "fps": 10.0}}}
    text = format_summary(summary, wall_s=2.0)
    assert "10 frames in 2.0 s (5.0 frames/s" in text and "p95 9.0 ms" in text
