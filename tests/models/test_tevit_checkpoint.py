"""TeViT's official key layout loads strictly; bad checkpoints fail with the keys named."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from models import available, build_model
from models.errors import CheckpointError, UnknownModelError

MSGSHIFT_PARAMS = 161_832_616  # README "161.83 M"; hustvl/TeViT README model table


def _mmcv_checkpoint(shapes: dict[str, tuple[int, ...]], path: Path) -> Path:
    """An mmcv-style checkpoint with every key; stride-0 tensors keep the file a few KB."""
    state = {k: torch.full((1,), 0.01).expand(s) if s else torch.tensor(0) for k, s in shapes.items()}
    torch.save({"meta": {"mmdet_version": "2.23.0"}, "state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def msgshift():
    return build_model("tevit", "msgshift")


def test_presets_are_listed():
    assert available()["tevit"] == ["msgshift", "tiny"]


def test_msgshift_has_every_official_key_and_shape(msgshift, key_table):
    expected = key_table("tevit_msgshift")[0]
    ours = {k: tuple(v.shape) for k, v in msgshift.state_dict().items()}
    assert len(expected) == 623
    assert ours == expected


def test_msgshift_parameter_count(msgshift):
    assert sum(p.numel() for p in msgshift.parameters()) == MSGSHIFT_PARAMS


def test_official_checkpoint_file_loads_strictly(tmp_path, key_table):
    ckpt = _mmcv_checkpoint(key_table("tevit_msgshift")[0], tmp_path / "tevit_msgshift.pth")
    model = build_model("tevit", "msgshift", checkpoint=ckpt)
    assert torch.all(model.backbone.msg_tokens == 0.01)
    assert not model.training


def test_ddp_prefix_is_stripped(tmp_path):
    model = build_model("tevit", "tiny")
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": state}, tmp_path / "ddp.pth")
    build_model("tevit", "tiny", checkpoint=tmp_path / "ddp.pth")


def test_missing_and_unexpected_keys_are_listed(tmp_path, key_table):
    shapes = key_table("tevit_msgshift")[0]
    del shapes["neck.fpn_convs.3.conv.bias"]
    shapes["roi_head.extra.weight"] = (2,)
    ckpt = _mmcv_checkpoint(shapes, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: neck\.fpn_convs\.3\.conv\.bias") as err:
        build_model("tevit", "msgshift", checkpoint=ckpt)
    assert "unexpected keys: roi_head.extra.weight" in str(err.value)


def test_wrong_shaped_tensor_is_named(tmp_path):
    model = build_model("tevit", "tiny")
    state = model.state_dict()
    state["rpn_head.init_proposal_bboxes.weight"] = torch.zeros(7, 4)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"init_proposal_bboxes\.weight: checkpoint \(7, 4\) vs model \(20, 4\)"):
        build_model("tevit", "tiny", checkpoint=tmp_path / "shape.pth")


class _Custom:
    pass


def test_pickled_objects_are_refused_unless_trusted(tmp_path):
    model = build_model("tevit", "tiny")
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"obj": _Custom()}}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        build_model("tevit", "tiny", checkpoint=path)
    build_model("tevit", "tiny", checkpoint=path, trust_checkpoint=True)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_model("tevit", "tiny", checkpoint=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read|unpickling"):
        build_model("tevit", "tiny", checkpoint=tmp_path / "junk.pth")


def test_unknown_model_and_preset():
    with pytest.raises(UnknownModelError, match="available models: .*tevit"):
        build_model("maskformer")
    with pytest.raises(UnknownModelError, match="presets: msgshift, tiny"):
        build_model("tevit", "huge")


def test_wrong_frames_are_refused():
    model = build_model("tevit", "tiny")
    with pytest.raises(ValueError, match=r"uint8 frames \[B, T, 192, 320, 3\]"):
        model(torch.zeros(1, 2, 192, 320, 3))
    with pytest.raises(ValueError, match="got torch.uint8 \\[1, 2, 100, 320, 3\\]"):
        model(torch.zeros(1, 2, 100, 320, 3, dtype=torch.uint8))
