"""``python -m runtime.stream SRC [SRC ...] --out-dir DIR``: per-stream outputs equal the
single-source command line's, Ctrl-C drains every stream, start-up refusals (issue 22)."""

from __future__ import annotations

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

from runtime.stream import main

REPO = Path(__file__).resolve().parents[2]
COMMON = ["--device", "cpu", "--quiet", "--window", "4", "--stride", "2"]


@pytest.fixture(scope="module")
def batch4_artifacts(tmp_path_factory) -> Path:
    return F.build_contract_artifacts(tmp_path_factory.mktemp("batch4"), batch_max=4)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    """Two videos with the same name in different folders, and an image folder."""
    root = tmp_path_factory.mktemp("srcs")
    (root / "x").mkdir()
    (root / "y").mkdir()
    a, _ = F.make_clip(20)
    b, _ = F.make_clip(11, size=(120, 100), side=25)
    c, _ = F.make_clip(7, size=(60, 200))
    return [F.write_mp4(root / "x" / "cam.mp4", a), F.write_mp4(root / "y" / "cam.mp4", b),
            F.write_folder(root / "frames", c)]


def _frame_count(path: Path) -> int:
    return int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_stream_writes_what_a_single_source_run_writes(batch4_artifacts, sources,
                                                             tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*map(str, sources), "--artifacts", str(batch4_artifacts), "--out-dir",
                 str(out), *COMMON])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["cam", "cam-2", "frames"]
    assert "Done: 38 frames" in err and "engine batches:" in err
    for name, source in zip(["cam", "cam-2", "frames"], sources, strict=True):
        single = tmp_path / f"single-{name}"
        single.mkdir()
        assert main([str(source), "--artifacts", str(batch4_artifacts), *COMMON,
                     "--events", str(single / "e.jsonl"), "--json", str(single / "r.json"),
                     "--out", str(single / "o.mp4")]) == 0
        folder = out / name
        assert (folder / "events.jsonl").read_text() == (single / "e.jsonl").read_text()
        entries = json.loads((folder / "results.json").read_text())
        reference = json.loads((single / "r.json").read_text())
        for entry in entries + reference:
            entry.pop("video_id")
        assert entries == reference and entries
        assert _frame_count(folder / "overlay.mp4") == _frame_count(single / "o.mp4") > 0


def test_outputs_and_names_options(batch4_artifacts, sources, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*map(str, sources[:2]), "--artifacts", str(batch4_artifacts), "--out-dir",
                 str(out), "--names", "front,back", "--outputs", "events", "--max-frames", "5",
                 "--max-batch", "1", *COMMON])
    assert code == 0, capsys.readouterr().err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == \
        ["back/events.jsonl", "front/events.jsonl"]
    assert all(len(_lines(out / n / "events.jsonl")) == 5 for n in ("front", "back"))


@pytest.mark.parametrize("extra,match", [
    (["--names", "a"], "--names gives 1 name(s) for 3 source(s)"),
    (["--names", "a,A,b"], "unique"),
    (["--names", "a,../b,c"], "not a safe folder name"),
    (["--max-batch", "5"], "batch.max=4"),
    (["--max-batch-wait-ms", "-1"], "--max-batch-wait-ms must be a finite number >= 0"),
    (["--outputs", "overlay,video"], "--outputs takes a comma list"),
    (["--score", "2"], "--score must be a number in [0, 1]"),
])
def test_bad_settings_exit_2_and_create_nothing(batch4_artifacts, sources, tmp_path, capsys,
                                                extra, match):
    out = tmp_path / "out"
    code = main([*map(str, sources), "--artifacts", str(batch4_artifacts), "--out-dir",
                 str(out), *COMMON, *extra])
    assert code == 2 and match in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_source_or_a_file_as_out_dir_exit_2(batch4_artifacts, sources, tmp_path,
                                                      capsys):
    out = tmp_path / "out"
    code = main([str(sources[0]), str(tmp_path / "nope.mp4"), "--artifacts",
                 str(batch4_artifacts), "--out-dir", str(out), *COMMON])
    assert code == 2 and "nope.mp4 does not exist" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "file").write_text("earlier")
    code = main([str(sources[0]), "--artifacts", str(batch4_artifacts), "--out-dir",
                 str(tmp_path / "file"), *COMMON])
    assert code == 2 and "is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "earlier"


def test_an_output_onto_a_source_is_refused(batch4_artifacts, tmp_path, capsys):
    """A source that is a stream's own earlier output (DIR/<stream>/overlay.mp4)."""
    frames, _ = F.make_clip(6)
    (tmp_path / "out" / "overlay").mkdir(parents=True)
    source = F.write_mp4(tmp_path / "out" / "overlay" / "overlay.mp4", frames)
    before = source.read_bytes()
    code = main([str(source), "--artifacts", str(batch4_artifacts), "--out-dir",
                 str(tmp_path / "out"), *COMMON])
    assert code == 2 and "is the source" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_a_failing_source_exits_1_and_the_others_are_complete(batch4_artifacts, sources,
                                                              tmp_path, capsys):
    """One stream's frames change size under --on-size-change error: that stream stops with
    its frames before the change written, the others are complete, exit 1 naming it."""
    frames, _ = F.make_clip(6)
    mixed = F.write_folder(tmp_path / "mixed", frames)
    cv2.imwrite(str(mixed / "6.png"), np.zeros((120, 200, 3), np.uint8))
    out = tmp_path / "out"
    code = main([str(sources[0]), str(mixed), "--artifacts", str(batch4_artifacts),
                 "--out-dir", str(out), "--on-size-change", "error", *COMMON])
    err = capsys.readouterr().err
    assert code == 1 and "stream mixed" in err and "frame 6 is 200x120" in err
    assert len(_lines(out / "mixed" / "events.jsonl")) == 6
    assert len(_lines(out / "cam" / "events.jsonl")) == 20


def test_ctrl_c_drains_every_stream(batch4_artifacts, tmp_path):
    frames, _ = F.make_clip(40)
    long_a = F.write_mp4(tmp_path / "a.mp4", np.concatenate([frames] * 75))  # 3000 frames
    long_b = F.write_folder(tmp_path / "b", np.concatenate([frames] * 25))  # 1000 frames
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.stream", str(long_a), str(long_b), "--artifacts",
         str(batch4_artifacts), "--out-dir", str(out), "--device", "cpu", "--quiet"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE, text=True)
    events = out / "a" / "events.jsonl"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if events.exists() and events.read_text().count("\n") >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    total = 0
    for name, length in (("a", 3000), ("b", 1000)):
        written = len(_lines(out / name / "events.jsonl"))
        assert 0 < written < length
        assert [line["frame"] for line in _lines(out / name / "events.jsonl")] == \
            list(range(written))
        entries = json.loads((out / name / "results.json").read_text())
        assert entries and all(len(e["segmentations"]) == written for e in entries)
        assert _frame_count(out / name / "overlay.mp4") == written
        assert f"stream {name} (" in stderr and f"stopped, {written} frames" in stderr
        total += written
    assert f"Stopped (Ctrl-C): {total} frames" in stderr
