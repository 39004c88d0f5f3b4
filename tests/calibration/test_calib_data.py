"""Calibration windows come from real frames, prepared exactly like the runtime prepares them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.calibrate import calibrate_artifacts
from calibration.data import collect_windows, letterbox_fill
from calibration.errors import CalibrationDataError
from runtime.manifest import load_manifest
from runtime.windows import Letterbox


def _frames(n: int, h: int = 48, w: int = 80) -> np.ndarray:
    """Distinct RGB frames: a moving bright square on a gradient."""
    out = np.zeros((n, h, w, 3), np.uint8)
    out[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, None, :]
    out[..., 2] = 90
    for i in range(n):
        out[i, 10:20, 5 + 4 * i:15 + 4 * i] = (250, 250, 30)
    return out


def _letterboxed(frames: np.ndarray, manifest) -> np.ndarray:
    box = Letterbox.fit(frames.shape[1:3], manifest.input_hw)
    return np.stack([box.apply(f, letterbox_fill(manifest)) for f in frames])


def test_image_folder_windows_equal_runtime_letterbox(tmp_path, small_manifest_dir):
    manifest = load_manifest(small_manifest_dir)
    frames = _frames(9)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(frames):  # natural order: 2.png before 10.png
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    calib = collect_windows(folder, manifest, max_windows=8, progress=False)
    assert calib.windows.frames.dtype == np.uint8 and calib.windows.shape[1:] == (4, 64, 96, 3)
    expected = _letterboxed(frames, manifest)
    # window 4, stride 3 (least overlap): frames 0-3, 3-6, then the end-aligned 5-8
    np.testing.assert_array_equal(calib.windows.frames[0], expected[0:4])
    np.testing.assert_array_equal(calib.windows.frames[1], expected[3:7])
    np.testing.assert_array_equal(calib.windows.frames[-1], expected[5:9])
    assert calib.frames == 9 and len(calib) == 3
    # padding is the manifest mean colour, below the 48x80 -> 58x96 content
    assert (calib.windows.frames[0, 0, 60:] == letterbox_fill(manifest)).all()
    # every window carries the letterbox's content size, the engine's content_hw row
    box = Letterbox.fit(frames.shape[1:3], manifest.input_hw)
    assert calib.windows.content_hw.tolist() == [list(box.content_hw)] * 3


def test_video_file_and_window_options(tmp_path, small_manifest_dir):
    manifest = load_manifest(small_manifest_dir)
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (80, 48))
    for f in _frames(12):
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    calib = collect_windows(path, manifest, max_windows=2, length=3, stride=2, progress=False)
    assert calib.windows.shape == (2, 3, 64, 96, 3)
    calib_all = collect_windows(path, manifest, max_windows=50, length=3, stride=2,
                                progress=False)
    assert len(calib_all) == 6  # starts 0, 2, 4, 6, 8 and the end-aligned 9..11
    train, held = calib_all.split(2)
    assert len(train) == 4 and len(held) == 2


def test_synthetic_and_dataset_sources(tmp_path, small_manifest_dir):
    from evaluation.synthetic import generate_dataset

    manifest = load_manifest(small_manifest_dir)
    mem = collect_windows("synthetic:tiny:2", manifest, max_windows=4, progress=False)
    assert mem.videos == 2 and len(mem) == 4 and mem.windows.frames.std() > 10
    generate_dataset(tmp_path / "ds", preset="tiny", videos=2, png=True)
    disk = collect_windows(tmp_path / "ds", manifest, max_windows=3, progress=False)
    assert disk.videos == 2 and len(disk) == 3
    assert "dataset" in disk.summary()["source"]


@pytest.mark.parametrize("source", ["missing.mp4", "synthetic:nopreset", "emptydir"])
def test_bad_sources_raise_clear_errors(tmp_path, small_manifest_dir, source):
    manifest = load_manifest(small_manifest_dir)
    (tmp_path / "emptydir").mkdir()
    spec = source if source.startswith("synthetic") else tmp_path / source
    with pytest.raises(CalibrationDataError):
        collect_windows(spec, manifest, progress=False)


def test_no_data_is_refused_before_anything_runs(small_manifest_dir):
    with pytest.raises(CalibrationDataError, match="never uses random"):
        calibrate_artifacts(small_manifest_dir, precision="int8", data=None)


def test_cli_without_data_exits_with_message(small_manifest_dir, capsys):
    from calibration.__main__ import main

    assert main([str(small_manifest_dir), "--precision", "fp16", "--quiet"]) == 2
    assert "--data SOURCE" in capsys.readouterr().err


def test_cli_flags_map_to_options():
    from calibration.__main__ import options_from, parse_args

    opts = options_from(parse_args(["art", "--precision", "int8", "--data", "x.mp4", "--method",
                                    "entropy", "--windows", "3", "--mask-tol", "0.5",
                                    "--no-fallback", "--ap-data", "val", "--budget-ap", "1.0"]))
    assert (opts.method, opts.windows, opts.fallback, opts.ap_data, opts.budget_ap) == (
        "entropy", 3, False, "val", 1.0)
    assert opts.parity.mask_mae == 0.5 and opts.parity.scores_max_abs == 0.02
    assert opts.rank_by == "parity"  # blocks ranked cheaply; the AP budget only on fallback steps
    assert options_from(parse_args(["art", "--precision", "int8", "--rank-by", "check"])).rank_by == "check"


def test_progress_bar_prints_plain_lines_off_a_terminal():
    import io

    from calibration.progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar("windows", total=4, stream=stream)
    for done in range(1, 5):
        bar.update(done)
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("windows [######") and lines[-1].startswith("windows [####")
    assert "4/4" in lines[-1] and "\r" not in stream.getvalue()
    silent = io.StringIO()
    ProgressBar("x", total=None, enabled=False, stream=silent).finish()
    assert silent.getvalue() == ""
