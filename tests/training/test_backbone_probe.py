"""bench/backbone_probe.py (VisTR and IFC) and its VisTR alias: pooled features, content_hw fed,
the probe separates informative features from noise."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from models import build_model
from training.data import ClipSampler

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_probe():
    spec = importlib.util.spec_from_file_location("backbone_probe", BENCH / "backbone_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backbone_probe_separates_informative_features_and_not_noise():
    probe = _load_probe()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 400)
    centres = rng.normal(size=(5, 16)) * 4
    informative = (centres[labels] + rng.normal(size=(400, 16))).astype(np.float32)
    _, unseen = probe.probe_accuracy(informative[:300], labels[:300], informative[300:], labels[300:], 5)
    assert unseen > 0.95
    noise = rng.normal(size=(400, 16)).astype(np.float32)
    _, chance = probe.probe_accuracy(noise[:300], labels[:300], noise[300:], labels[300:], 5)
    assert chance < 0.45


def _widths(model) -> tuple[int, int, int, int]:
    """C3, C4, C5 and memory widths of a tiny model."""
    c = model.cfg.backbone_channels if model.spec.name == "vistr" else model.cfg.stage_channels
    return c[1], c[2], c[3], model.cfg.hidden_dim


@pytest.mark.parametrize("name", ["ifc", "vistr"])
def test_the_backbone_probe_pools_features_inside_each_object(name):
    probe = _load_probe()
    torch.manual_seed(0)
    model = build_model(name, "tiny", None).eval()
    features, labels = probe.pooled_features(model, seed=3, clips=1, videos=1)
    assert set(features) == set(probe.MAPS) and len(labels) >= 1
    assert [features[k].shape for k in probe.MAPS] == [(len(labels), c) for c in _widths(model)]
    assert all(np.isfinite(features[k]).all() for k in probe.MAPS)


@pytest.mark.parametrize("name", ["ifc", "vistr"])
def test_the_probe_feeds_content_hw_so_the_encoder_masks_the_padding(name):
    probe = _load_probe()
    torch.manual_seed(0)
    model = build_model(name, "tiny", None).eval()
    sampler = ClipSampler(input_hw=model.spec.input_hw, mean=model.spec.mean,
                          clip_frames=probe.clip_length(model), pool_size=1, seed=3, verbose=False)
    frames = torch.as_tensor(sampler.sample().frames[None])
    h, w = model.spec.input_hw
    with torch.no_grad():  # the lower half as padding: whole stride-32 rows are masked
        masked = probe.FEATURE_MAPS[name](model, frames, torch.tensor([[h // 2, w]], dtype=torch.int32))
        whole = probe.FEATURE_MAPS[name](model, frames, torch.tensor([[h, w]], dtype=torch.int32))
    for a, b in zip(masked[:3], whole[:3]):  # the backbone is content-free
        torch.testing.assert_close(a, b)
    assert not torch.allclose(masked[3], whole[3], atol=1e-4)  # the encoder is not


def _run_alias(*args: str) -> int:
    """Run bench/vistr_backbone_probe.py as a script with ``args``; its exit code."""
    with mock.patch.object(sys, "argv", ["vistr_backbone_probe.py", *args]), \
            pytest.raises(SystemExit) as stop:
        runpy.run_path(str(BENCH / "vistr_backbone_probe.py"), run_name="__main__")
    return stop.value.code


def test_the_vistr_alias_runs_the_probe_with_model_vistr(tmp_path, capsys):
    missing = str(tmp_path / "missing.pth")
    assert _run_alias(missing) == 2
    assert f"checkpoint {missing!r} does not exist" in capsys.readouterr().err
    probe = _load_probe()
    checkpoint = tmp_path / "vistr_tiny.pth"
    checkpoint.write_bytes(b"")
    with mock.patch.dict(sys.modules, {"backbone_probe": probe}), mock.patch.object(probe, "probe") as run:
        assert _run_alias(str(checkpoint)) == 0
    run.assert_called_once_with("vistr", str(checkpoint))
