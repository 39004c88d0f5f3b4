"""The ``visdeploy`` command: dispatch to the ``python -m`` entry points, ``info``, ``doctor``,
and the extra named when a runtime-only install runs a command that needs torch/onnx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import rt_fixtures as F

from visdeploy.cli import COMMANDS, available_commands, main

REPO = Path(__file__).resolve().parents[2]

# A runtime-only install: these packages are absent (ModuleNotFoundError, as pip leaves it),
# and no socket may connect (doctor must never reach the network).
RUNTIME_ONLY = """
import importlib.abc, socket, sys
ABSENT = ("torch", "torchvision", "onnx", "onnxscript", "modelopt", "tensorrt")
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
def refuse(*args, **kwargs):
    raise OSError("network use is not allowed in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_console_script_and_help_list_every_command(capsys):
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '[project.scripts]\nvisdeploy = "visdeploy.cli:main"' in pyproject
    assert main([]) == 2 and main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("export", "calibrate", "build", "stream", "evaluate", "synth", "bench", "info",
                 "doctor"):
        assert f"  {name} " in out, name
    assert "serve" in available_commands() and (REPO / "runtime" / "serve.py").is_file()
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,module", [
    (["calibrate", "-h"], "python -m calibration"),
    (["build", "-h"], "python -m export.tensorrt"),
    (["evaluate", "-h"], "python -m evaluation.ytvis"),
    (["evaluate", "report", "-h"], "python -m evaluation.report"),
    (["synth", "-h"], "python -m evaluation.synthetic"),
    (["train", "-h"], "--recipe"),
])
def test_subcommands_are_the_python_m_entry_points(argv, module, capsys):
    assert main(argv) == 0
    assert module in capsys.readouterr().out
    assert COMMANDS[argv[0]].module


def test_stream_through_visdeploy(contract_artifacts, tmp_path):
    frames, _ = F.make_clip(6)
    clip = F.write_folder(tmp_path / "clip", frames)
    assert main(["stream", str(clip), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--quiet", "--events", str(tmp_path / "e.jsonl")]) == 0
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 6
    assert main(["stream", str(tmp_path / "none.mp4"), "--artifacts",
                 str(contract_artifacts)]) == 2


def test_bench_lists_and_refuses_unknown_scripts(capsys):
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    assert "runtime_overhead" in out and "soak" in out
    assert main(["bench", "nope"]) == 2 and "no benchmark 'nope'" in capsys.readouterr().err


def test_info_summarises_and_verifies(contract_artifacts, tmp_path, capsys):
    assert main(["info", str(contract_artifacts)]) == 0
    out = capsys.readouterr().out
    assert "contract / test, 3 classes (red, green, blue)" in out
    assert "B 1..2, T 1..12" in out and "| model.onnx | onnx | fp32 | - | frames |" in out
    assert "| ok |" in out
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in contract_artifacts.iterdir():
        if path.is_file():  # not the OpenVINO cache other tests' --backend auto runs compile
            (copy / path.name).write_bytes(path.read_bytes())
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    assert main(["info", str(copy)]) == 1 and "sha256 differs" in capsys.readouterr().out
    (copy / "model.onnx").unlink()
    assert main(["info", str(copy)]) == 1 and "| missing |" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "none")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_doctor_runs_without_torch_or_network():
    proc = _python(RUNTIME_ONLY + "from visdeploy.cli import main\ncode = main(['doctor'])\n"
                   "print('TORCH', 'torch' in sys.modules)\nsys.exit(code)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for fact in ("onnxruntime", "TensorRT", "OpenVINO", "tritonserver", "NVIDIA GPU",
                 "OpenCV GStreamer", "OpenCV GUI", "H.264 overlays", "cameras", "extra [export]"):
        assert fact in proc.stdout, fact
    assert "TORCH False" in proc.stdout
    assert "extra [export]" in proc.stdout and "pip install 'visdeploy[export]'" in proc.stdout


@pytest.mark.parametrize("command", [["-m", "export", "tevit"], ["-m", "visdeploy", "export",
                                                                   "tevit"]])
def test_export_in_a_runtime_only_install_names_the_extra(command):
    code = (RUNTIME_ONLY + "import runpy\nsys.argv = ['x', *sys.argv[1:]]\n"
            f"runpy.run_module({command[1]!r}, run_name='__main__', alter_sys=True)")
    proc = _python(code, *command[2:])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "needs the 'export' extra" in proc.stderr and "visdeploy[export]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_info_says_where_an_int8_budget_was_measured(contract_artifacts, tmp_path, capsys):
    import json
    import shutil

    copy = shutil.copytree(contract_artifacts, tmp_path / "copy",
                           ignore=shutil.ignore_patterns("openvino_cache"))
    data = json.loads((copy / "manifest.json").read_text())
    calibration = {"tool": "nncf", "method": "nncf-performance", "check": "metric", "value": 0.2,
                   "within_budget": True, "check_backend": "openvino", "check_cpu": "AVX2"}
    data["artifacts"].append(dict(data["artifacts"][0], precision="int8", calibration=calibration))
    (copy / "manifest.json").write_text(json.dumps(data))
    assert main(["info", str(copy)]) == 0
    assert ("calibrated: nncf nncf-performance, metric 0.2 (within budget on openvino (AVX2 "
            "kernels))") in capsys.readouterr().out


def test_doctor_names_openvinos_int8_kernel_family(monkeypatch):
    import runtime.backends.cpu_isa as cpu_isa
    from visdeploy import doctor

    monkeypatch.setattr(cpu_isa, "int8_kernel_family", lambda: "AVX-512 VNNI")
    monkeypatch.setattr(doctor, "_version", lambda name: "2026.4.1" if name == "openvino" else None)
    [check] = [c for c in doctor.backend_checks() if c.name == "OpenVINO"]
    assert check.found == "2026.4.1, AVX-512 VNNI INT8 kernels"
