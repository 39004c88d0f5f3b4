"""The runtime never imports torch (nor tensorrt unless that backend is chosen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rt_fixtures as F

REPO = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, sys
BLOCKED = ("torch", "torchvision", "tensorrt", "cuda", "polygraphy")
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"import of {name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""

SCRIPT = BLOCKER + """
import runtime
from runtime import Pipeline
from runtime.stream import main
source, artifacts, out = sys.argv[1:4]
code = main([source, "--artifacts", artifacts, "--device", "cpu", "--quiet",
             "--json", out + "/r.json", "--events", out + "/e.jsonl", "--out", out + "/o.mp4"])
with Pipeline(artifacts, device="cpu") as pipeline:
    frames = sum(1 for _ in pipeline.run(source))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("RESULT", code, frames, heavy)
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stream_runs_with_torch_blocked(contract_artifacts, tmp_path):
    frames, _ = F.make_clip(10)
    F.write_folder(tmp_path / "clip", frames)
    proc = _run(SCRIPT, tmp_path / "clip", contract_artifacts, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT 0 10 []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert len(json.loads((tmp_path / "r.json").read_text())) == 2  # two objects


def test_blocker_really_blocks():
    proc = _run(BLOCKER + "import torch")
    assert proc.returncode != 0 and "blocked" in proc.stderr


def test_manifest_import_stays_light():
    """The exporter imports runtime.manifest: that must not pull in OpenCV or onnxruntime."""
    proc = _run("import sys, runtime.manifest; "
                "print(sorted(m for m in ('cv2', 'onnxruntime', 'scipy') if m in sys.modules))")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_pipeline_import_leaves_scipy_for_the_tracker():
    """``from runtime import Pipeline`` must not pay SciPy's ~0.5 s import (scipy.optimize):
    the tracker imports it at its first assignment."""
    proc = _run("import sys; from runtime import Pipeline; "
                "print('scipy' in sys.modules)")
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_openvino_backend_runs_with_torch_blocked(contract_artifacts, tmp_path):
    frames, _ = F.make_clip(8)
    F.write_folder(tmp_path / "clip", frames)
    script = BLOCKER + """
from runtime import Pipeline
source, artifacts = sys.argv[1:3]
with Pipeline(artifacts, backend="openvino") as pipeline:
    frames = sum(1 for _ in pipeline.run(source))
    kind = type(pipeline.backend).__name__
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("RESULT", kind, frames, heavy)
"""
    proc = _run(script, tmp_path / "clip", contract_artifacts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT OpenVINOBackend 8 []" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_triton_model_imports_neither_opencv_nor_scipy():
    """Triton's Python backend imports runtime.serving.python_model in the server environment,
    which has numpy < 2 and no OpenCV or SciPy (docs/serving.md): keep them off that path, and
    the Triton client (tritonclient) too."""
    proc = _run("import sys, runtime.serving.python_model; print(sorted(m for m in ('cv2', "
                "'scipy', 'tritonclient', 'grpc') if m.split('.')[0] in sys.modules))")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
