"""VisTR backbone pretraining: BatchNorm in and out of FrozenBN, dense targets, a real short run."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from models import build_model
from training.backbone_pretrain import (
    PretrainConfig,
    freeze_batchnorm,
    pretrain,
    semantic_targets,
    unfreeze_batchnorm,
)


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_batchnorm_round_trip_keeps_the_function_and_the_layout():
    torch.manual_seed(0)
    body = build_model("vistr", "tiny", None).vistr.backbone[0]
    frozen_total = _count(body, FrozenBatchNorm2d)
    keys = list(body.state_dict())
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        before = [f.clone() for f in body(images)]
    assert unfreeze_batchnorm(body) == frozen_total > 0
    assert _count(body, FrozenBatchNorm2d) == 0
    body.eval()
    with torch.no_grad():
        for a, b in zip(before, body(images)):
            torch.testing.assert_close(a, b)
    # Training statistics change the running buffers; folding keeps exactly what eval computes.
    body.train()
    with torch.no_grad():
        body(images * 3 + 1)
    body.eval()
    with torch.no_grad():
        trained = [f.clone() for f in body(images)]
    assert freeze_batchnorm(body) == frozen_total
    assert _count(body, nn.BatchNorm2d) == 0
    with torch.no_grad():
        for a, b in zip(trained, body(images)):
            torch.testing.assert_close(a, b)
    assert list(body.state_dict()) == keys  # official FrozenBN keys, no num_batches_tracked


def test_semantic_targets_sample_cell_centres_with_class_plus_one():
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, :4, :4] = True  # top-left quadrant, class 0
    masks[1, 4:, 4:] = True  # bottom-right quadrant, class 3
    target = semantic_targets(np.array([0, 3]), masks, (2, 2))
    np.testing.assert_array_equal(target, [[1, 0], [0, 4]])
    assert semantic_targets(np.zeros(0, dtype=np.int64), masks[:0], (2, 2)).sum() == 0


def test_a_short_run_trains_only_the_backbone_and_loads_strictly(tmp_path):
    cfg = PretrainConfig(iterations=2, frames_per_step=2, pool_size=2, warmup=1)
    out = tmp_path / "vistr_tiny.pth.backbone"
    pretrain(cfg, out, log_every=1)
    torch.manual_seed(cfg.seed)
    init = build_model("vistr", "tiny", None).state_dict()
    trained = build_model("vistr", "tiny", out).state_dict()  # strict load
    changed = {k for k in init if not torch.equal(init[k].half().float(), trained[k].float())}
    assert changed and all(k.startswith("vistr.backbone.0.") for k in changed)
    assert any(k.endswith("running_var") for k in changed)  # the BatchNorm statistics were folded
    meta = torch.load(out, map_location="cpu", weights_only=True)["meta"]
    assert meta["config"]["stage"] == "backbone_pretrain"
    assert [row["step"] for row in meta["curve"]] == [1, 2]
    assert meta["command"].startswith("python -m training.backbone_pretrain")


def test_a_run_continues_from_an_earlier_pretraining_on_a_refreshing_pool(tmp_path):
    first = tmp_path / "first.pth"
    pretrain(PretrainConfig(iterations=1, frames_per_step=2, pool_size=2, warmup=1, video_frames=3), first)
    cfg = PretrainConfig(iterations=2, frames_per_step=2, pool_size=2, warmup=1, video_frames=3,
                         refresh_every=1, seed=1, init=str(first))
    second = tmp_path / "second.pth"
    pretrain(cfg, second, log_every=1)
    before = build_model("vistr", "tiny", first).state_dict()
    after = build_model("vistr", "tiny", second).state_dict()  # strict load
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("vistr.backbone.0.") for k in changed)
    meta = torch.load(second, map_location="cpu", weights_only=True)["meta"]
    assert meta["history"][-1]["config"]["stage"] == "backbone_pretrain"  # the first run, recorded
    assert "--init" in meta["command"] and "--refresh-every 1" in meta["command"]


def _load_probe():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "vistr_backbone_probe.py"
    spec = importlib.util.spec_from_file_location("vistr_backbone_probe", path)
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


def test_the_backbone_probe_pools_features_inside_each_object():
    probe = _load_probe()
    model = build_model("vistr", "tiny", None).eval()
    features, labels = probe.pooled_features(model, seed=3, clips=1, videos=1)
    assert set(features) == set(probe.MAPS) and len(labels) >= 1
    widths = model.cfg.backbone_channels
    assert [features[k].shape for k in probe.MAPS] == [(len(labels), c) for c in
                                                      (widths[1], widths[2], widths[3], model.cfg.hidden_dim)]
