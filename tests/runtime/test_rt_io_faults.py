"""``python -m runtime.stream`` under faults: outputs never destroy inputs or each other, one
failing output costs the others nothing, every finalisation failure and bad setting exits
non-zero, earlier outputs survive a failed start (issue 20, items 1-4, 6, 7)."""

from __future__ import annotations

import contextlib
import importlib.abc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rt_fixtures as F

from runtime.stream import main


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    frames, _ = F.make_clip(12)
    return F.write_mp4(tmp_path_factory.mktemp("faults") / "clip.mp4", frames)


def _run(source, artifacts, *extra) -> int:
    return main([str(source), "--artifacts", str(artifacts), "--device", "cpu", "--quiet",
                 *map(str, extra)])


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _frame_count(path: Path) -> int:
    return int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))


# -- item 1: an output that is the source, an artifact or another output ---------------------
@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("flag", ["--out", "--json", "--events"])
def test_output_onto_the_source_is_refused_and_the_source_kept(clip_mp4, contract_artifacts,
                                                                tmp_path, capsys, flag, link):
    source = shutil.copy(clip_mp4, tmp_path / "self.mp4")
    before = Path(source).read_bytes()
    target = tmp_path / "alias.mp4"
    if link == "same":
        target = Path(source)
    elif link == "symlink":
        target.symlink_to(source)
    else:
        os.link(source, target)
    assert _run(source, contract_artifacts, flag, target) == 2
    err = capsys.readouterr().err
    assert f"{flag} {target} is the source" in err and "choose another" in err
    assert Path(source).read_bytes() == before


def test_output_onto_an_image_of_the_source_folder_is_refused(contract_artifacts, tmp_path,
                                                              capsys):
    frames, _ = F.make_clip(4)
    folder = F.write_folder(tmp_path / "imgs", frames)
    before = (folder / "2.png").read_bytes()
    assert _run(folder, contract_artifacts, "--events", folder / "2.png") == 2
    assert "is the source" in capsys.readouterr().err
    assert (folder / "2.png").read_bytes() == before


def test_output_onto_an_artifact_file_is_refused(clip_mp4, contract_artifacts, tmp_path, capsys):
    artifacts = shutil.copytree(contract_artifacts, tmp_path / "art")
    before = (artifacts / "model.onnx").read_bytes()
    assert _run(clip_mp4, artifacts, "--out", artifacts / "model.onnx") == 2
    assert "artifact directory" in capsys.readouterr().err
    assert (artifacts / "model.onnx").read_bytes() == before


@pytest.mark.parametrize("first,second,second_name", [
    ("--json", "--events", "r.json"),
    ("--events", "--out", "r.json"),
    ("--json", "--events", "r.json.tmp"),  # the JSON's temporary file
])
def test_two_outputs_on_one_file_are_refused(clip_mp4, contract_artifacts, tmp_path, capsys,
                                             first, second, second_name):
    (tmp_path / "r.json").write_text("earlier results")
    code = _run(clip_mp4, contract_artifacts, first, tmp_path / "r.json",
                second, tmp_path / second_name)
    err = capsys.readouterr().err
    assert code == 2 and first in err and second in err and "its own file" in err
    assert (tmp_path / "r.json").read_text() == "earlier results"
    assert not (tmp_path / "r.json.tmp").exists()


# -- item 2: one failing output, the others get every frame ---------------------------------
def test_a_failing_output_costs_the_others_nothing(contract_artifacts, tmp_path, capsys, caplog):
    """YTVIS JSON refuses the size change at frame 3; events and overlay still get all 5
    frames; the run exits 1 naming the failed output, which keeps frames 0-2."""
    frames, _ = F.make_clip(3)
    folder = F.write_folder(tmp_path / "mixed", frames)
    big, _ = F.make_clip(2, size=(120, 200))
    for i, image in enumerate(big, start=3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = {n: tmp_path / n for n in ("r.json", "e.jsonl", "o.mp4")}
    code = main([str(folder), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--json", str(out["r.json"]), "--events", str(out["e.jsonl"]),
                 "--out", str(out["o.mp4"])])
    err = capsys.readouterr().err
    assert code == 1
    assert [line["frame"] for line in _lines(out["e.jsonl"])] == [0, 1, 2, 3, 4]
    assert _frame_count(out["o.mp4"]) == 5
    assert all(len(e["segmentations"]) == 3 for e in json.loads(out["r.json"].read_text()))
    assert f"--json {out['r.json']} failed at frame 3" in err and "one size per video" in err
    assert "Done: 5 frames" in err and "Stopped by an error" not in err
    failures = [r for r in caplog.records if "failed at frame 3" in r.getMessage()]
    assert len(failures) == 1  # reported once, then closed


def test_when_every_output_failed_the_run_stops(contract_artifacts, tmp_path, capsys):
    frames, _ = F.make_clip(3)
    folder = F.write_folder(tmp_path / "mixed", frames)
    big, _ = F.make_clip(20, size=(120, 200))
    for i, image in enumerate(big, start=3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert _run(folder, contract_artifacts, "--json", tmp_path / "r.json") == 1
    err = capsys.readouterr().err
    assert "Stopped by an error: 3 frames" in err and "3 frames (FAILED at frame 3)" in err
    assert all(len(e["segmentations"]) == 3 for e in json.loads((tmp_path / "r.json").read_text()))


def test_overlay_that_cannot_be_written_is_refused_up_front(clip_mp4, contract_artifacts,
                                                            tmp_path, capsys):
    events = tmp_path / "e.jsonl"
    code = _run(clip_mp4, contract_artifacts, "--out", tmp_path / "x.txt", "--events", events)
    err = capsys.readouterr().err
    assert code == 2 and "x.txt" in err and "--fourcc" in err
    assert not events.exists() and not (tmp_path / "x.txt").exists()


def test_fourcc_option_writes_another_codec(clip_mp4, contract_artifacts, tmp_path, capsys):
    assert _run(clip_mp4, contract_artifacts, "--out", tmp_path / "o.avi", "--fourcc", "MJPG") == 0
    capture = cv2.VideoCapture(str(tmp_path / "o.avi"))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert fourcc == "MJPG" and _frame_count(tmp_path / "o.avi") == 12
    assert _run(clip_mp4, contract_artifacts, "--out", tmp_path / "o.mp4", "--fourcc", "MP4") == 2
    assert "--fourcc must be 4 characters" in capsys.readouterr().err


# -- item 3: temp files and finalisation ------------------------------------------------------
@contextlib.contextmanager
def _read_only_folder(folder: Path):
    """``folder`` refuses new entries while its existing files stay writable (chmod, or
    ``chattr +i`` where the tests run as root)."""
    folder.chmod(0o555)
    immutable = False
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            yield folder
            return
        probe.unlink()
        folder.chmod(0o755)
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only folder here (root without chattr)")
        immutable = True
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_json_in_a_read_only_folder_is_refused_before_the_first_frame(
        clip_mp4, contract_artifacts, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "r.json").write_text("earlier results")
    (folder / "r.json").chmod(0o666)
    with _read_only_folder(folder):
        assert _run(clip_mp4, contract_artifacts, "--json", folder / "r.json") == 2
    err = capsys.readouterr().err
    assert "r.json.tmp" in err and "folder" in err
    assert (folder / "r.json").read_text() == "earlier results"


def test_a_failed_final_write_exits_non_zero(clip_mp4, contract_artifacts, tmp_path, capsys,
                                             monkeypatch):
    """The JSON is written at the end: when that fails (disk full, folder gone), the run says
    so and exits 1; the events (written as they come) are complete."""
    from runtime.sinks import ytvis

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ytvis.os, "replace", full_disk)
    events = tmp_path / "e.jsonl"
    code = _run(clip_mp4, contract_artifacts, "--json", tmp_path / "r.json", "--events", events)
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "--json" in err
    assert len(_lines(events)) == 12
    assert not (tmp_path / "r.json.tmp").exists()


# -- item 4: a failed start keeps earlier outputs ---------------------------------------------
def _earlier_outputs(folder: Path) -> dict[str, Path]:
    outputs = {n: folder / n for n in ("r.json", "e.jsonl", "o.mp4")}
    for path in outputs.values():
        path.write_text(f"earlier {path.name}")
    return outputs


def _flags(outputs: dict[str, Path]) -> list:
    return ["--json", outputs["r.json"], "--events", outputs["e.jsonl"], "--out", outputs["o.mp4"]]


@pytest.mark.parametrize("field,value,match", [
    ("K", 4, "scores"), ("embedding_dim", 7, "embeddings")])
def test_outputs_disagreeing_with_the_manifest_fail_at_start_keeping_earlier_outputs(
        clip_mp4, contract_artifacts, tmp_path, capsys, field, value, match):
    artifacts = shutil.copytree(contract_artifacts, tmp_path / "art")
    manifest = json.loads((artifacts / "manifest.json").read_text())
    manifest["outputs"][field] = value
    (artifacts / "manifest.json").write_text(json.dumps(manifest))
    earlier = _earlier_outputs(tmp_path)
    assert _run(clip_mp4, artifacts, *_flags(earlier)) == 2
    err = capsys.readouterr().err
    assert match in err and "manifest" in err and "re-export" in err
    assert all(p.read_text() == f"earlier {p.name}" for p in earlier.values())


def test_a_source_with_no_decodable_frame_keeps_earlier_outputs(contract_artifacts, tmp_path,
                                                                 capsys):
    frames, _ = F.make_clip(3)
    folder = F.write_folder(tmp_path / "imgs", frames)
    (folder / "0.png").write_bytes(b"\x89PNG broken")
    earlier = _earlier_outputs(tmp_path)
    assert _run(folder, contract_artifacts, *_flags(earlier)) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert all(p.read_text() == f"earlier {p.name}" for p in earlier.values())


# -- item 6: settings out of range -------------------------------------------------------------
@pytest.mark.parametrize("extra,match", [
    (["--score", "-1"], "--score must be a number in [0, 1]"),
    (["--score", "1.5"], "--score must be a number in [0, 1]"),
    (["--score", "nan"], "--score must be a number in [0, 1]"),
    (["--max-frames", "-3"], "--max-frames must be at least 1"),
    (["--max-frames", "0"], "--max-frames must be at least 1"),
    (["--fps", "-5"], "--fps must be a positive"),
    (["--fps", "inf"], "--fps must be a positive"),
    (["--threads", "-2"], "--threads must be 0"),
    (["--reconnect", "-1"], "--reconnect must be 0 or more"),
])
def test_settings_out_of_range_exit_2_before_loading(clip_mp4, tmp_path, capsys, extra, match):
    """The artifact directory does not exist: a setting error must come first."""
    events = tmp_path / "e.jsonl"
    code = main([str(clip_mp4), "--artifacts", str(tmp_path / "not-loaded"), "--events",
                 str(events), *extra])
    err = capsys.readouterr().err
    assert code == 2 and match in err and "manifest" not in err
    assert not events.exists()


# -- item 7: Ctrl-C during start-up, honest summary ------------------------------------------
class _InterruptImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("runtime.stream_cli", "runtime.stream_loop", "runtime.pipeline"):
            raise KeyboardInterrupt
        return None


def test_ctrl_c_during_imports_exits_130_without_traceback(clip_mp4, contract_artifacts,
                                                           tmp_path, capsys, monkeypatch):
    for name in ("runtime.stream_cli", "runtime.stream_loop", "runtime.pipeline"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptImport(), *sys.meta_path])
    code = _run(clip_mp4, contract_artifacts, "--events", tmp_path / "e.jsonl")
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "nothing was written" in err
    assert not (tmp_path / "e.jsonl").exists()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_ctrl_c_during_model_load_exits_130_without_traceback(clip_mp4, contract_artifacts,
                                                              tmp_path, capsys, monkeypatch,
                                                              backend):
    """Ctrl-C while the named backend loads its model (each backend's own loading function
    raises): exit 130, no traceback, the user's earlier file untouched."""
    from runtime.backends import onnxrt, openvino

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if backend == "openvino" and not openvino.openvino_installed():
        pytest.fail("OpenVINO is not installed; `make setup` installs the openvino extra")
    loader = {"onnxruntime": (onnxrt, "open_session"), "openvino": (openvino, "compile_entry")}
    monkeypatch.setattr(*loader[backend], interrupted)
    (tmp_path / "e.jsonl").write_text("earlier")
    code = _run(clip_mp4, contract_artifacts, "--backend", backend, "--events",
                tmp_path / "e.jsonl")
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "nothing was written" in err
    assert (tmp_path / "e.jsonl").read_text() == "earlier"


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _lines_in(path: Path) -> int:
    """Lines in a file another process is writing; 0 while it does not exist. The run probes
    its outputs for writability at start (creating, then removing, a file that was not there),
    so an exists-then-read check can lose that race: read and treat "gone" as "not yet"."""
    try:
        return path.read_text().count("\n")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("moment", ["importing OpenCV", "importing onnxruntime", "streaming"])
def test_ctrl_c_at_any_moment_of_a_real_run_exits_130_cleanly(contract_artifacts, tmp_path,
                                                               moment):
    """SIGINT once the run reaches a moment (a library mapped into the process, or 20 event
    lines written) of a run long enough to be alive then: exit 130, never a traceback."""
    import signal
    import time

    frames, _ = F.make_clip(40)
    long_clip = F.write_mp4(tmp_path / "long.mp4", np.concatenate([frames] * 75))  # 3000 frames
    events = tmp_path / "e.jsonl"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.stream", str(long_clip), "--artifacts",
         str(contract_artifacts), "--device", "cpu", "--quiet", "--events", str(events)],
        cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)), stderr=subprocess.PIPE, text=True)
    reached = {"importing OpenCV": lambda: "cv2" in _maps(proc.pid),
               "importing onnxruntime": lambda: "onnxruntime" in _maps(proc.pid),
               "streaming": lambda: _lines_in(events) >= 20}[moment]
    deadline = time.monotonic() + 120
    while proc.poll() is None and not reached() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before the moment was reached"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    if moment == "streaming":
        assert f"Stopped (Ctrl-C): {len(_lines(events))} frames" in stderr


def test_summary_after_an_error_counts_written_frames_only(contract_artifacts, tmp_path, capsys):
    frames, _ = F.make_clip(7)
    folder = F.write_folder(tmp_path / "mixed", frames)
    cv2.imwrite(str(folder / "7.png"), np.zeros((120, 200, 3), np.uint8))
    code = main([str(folder), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--on-size-change", "error", "--events", str(tmp_path / "e.jsonl")])
    err = capsys.readouterr().err
    written = len(_lines(tmp_path / "e.jsonl"))
    assert code == 1 and written == 7
    assert f"Stopped by an error: {written} frames" in err and "Done:" not in err
