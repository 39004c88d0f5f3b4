"""``make export``'s precision variables reach ``python -m calibration`` (dry run, nothing built)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _calibration_line(*variables: str) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed; the README's commands need it")
    done = subprocess.run(["make", "-n", "export", *variables], cwd=REPO, capture_output=True,
                          text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if "-m calibration" in line]
    assert len(lines) <= 1, done.stdout
    return lines[0] if lines else ""


def test_ap_data_makes_the_budget_an_ap_drop():
    line = _calibration_line("MODEL=tevit", "PRECISION=int8", "CALIB=clip.mp4", "AP_DATA=data/val")
    assert "--precision int8 --data clip.mp4 --ap-data data/val" in line


def test_without_ap_data_the_budget_is_parity():
    line = _calibration_line("MODEL=tevit", "PRECISION=fp16")
    assert "--precision fp16 --data synthetic:val:4" in line and "--ap-data" not in line


def test_fp32_runs_no_calibration():
    assert _calibration_line("MODEL=tevit") == ""


def test_fp32_with_openvino_checks_its_static_compile():
    line = _calibration_line("MODEL=tevit", "CHECK_BACKEND=openvino")
    assert "--precision fp32 --data synthetic:val:4" in line
    assert "--check-backend openvino" in line
