"""Official checkpoint files in the forms their projects publish, read without running code.

VisTR's ``main.py`` saves ``{"model": state, "args": argparse.Namespace, ...}``; detectron2 (IFC's
framework) publishes ``.pkl`` pickles of numpy arrays with ``__author__`` and
``matching_heuristics``; some ``.pth`` files hold numpy arrays. A pickle that would run code must
never run, with or without the other forms being accepted.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from models import build_model
from models.checkpoint import read_state_dict
from models.errors import CheckpointError


@pytest.fixture(scope="module")
def ifc_tiny_state():
    torch.manual_seed(3)
    return {k: v.clone() for k, v in build_model("ifc", "tiny").state_dict().items()}


def _assert_loaded(model, state):
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)


def test_vistr_main_py_layout_with_args_namespace_loads_without_trust(tmp_path):
    torch.manual_seed(4)
    state = build_model("vistr", "tiny").state_dict()
    args = argparse.Namespace(lr=1e-4, backbone="resnet50", num_frames=36, masks=True,
                              output_dir="r50", dataset_file="ytvos", frozen_weights=None)
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 17, "args": args}, path)
    _assert_loaded(build_model("vistr", "tiny", path), state)


def test_detectron2_pkl_of_numpy_arrays_loads_without_trust(tmp_path, ifc_tiny_state):
    path = tmp_path / "model_final.pkl"
    blob = {"model": {k: v.numpy() for k, v in ifc_tiny_state.items()},
            "__author__": "IFC", "matching_heuristics": True}
    path.write_bytes(pickle.dumps(blob, protocol=2))
    _assert_loaded(build_model("ifc", "tiny", path), ifc_tiny_state)


def test_pth_whose_state_dict_holds_numpy_arrays_loads(tmp_path, ifc_tiny_state):
    path = tmp_path / "numpy_state.pth"
    torch.save({"model": {k: v.numpy() for k, v in ifc_tiny_state.items()}}, path)
    _assert_loaded(build_model("ifc", "tiny", path), ifc_tiny_state)


class _RunsCode:
    """Unpickling this calls os.system, which writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("form", ["pkl", "pth"])
def test_a_pickle_that_would_run_code_never_runs(tmp_path, form):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil.{form}"
    blob = {"model": {"w": np.zeros(2, np.float32)}, "payload": _RunsCode(marker)}
    if form == "pkl":
        path.write_bytes(pickle.dumps(blob))
    else:
        torch.save(blob, path)
    with pytest.raises(CheckpointError, match=r"refused by default.*system.*--trust-checkpoint"):
        read_state_dict(path)
    assert not marker.exists()


def test_truncated_pkl_is_a_clear_error(tmp_path, ifc_tiny_state):
    path = tmp_path / "cut.pkl"
    data = pickle.dumps({"model": {k: v.numpy() for k, v in ifc_tiny_state.items()}})
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*cut\.pkl"):
        read_state_dict(path)


def test_make_export_passes_trust_checkpoint():
    out = subprocess.run(["make", "-n", "export", "MODEL=vistr", "CHECKPOINT=c.pth",
                          "TRUST_CHECKPOINT=1"], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    line = next(ln for ln in out.stdout.splitlines() if " -m export " in ln)
    assert "--checkpoint c.pth" in line and "--trust-checkpoint" in line
    out = subprocess.run(["make", "-n", "export", "MODEL=vistr"], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert "--trust-checkpoint" not in out.stdout
    assert sys.executable  # the make line runs the venv's python, not this one
