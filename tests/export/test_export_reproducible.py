"""Exports do not depend on where the source tree lives: two copies of a model's source in two
directories export byte-identical ONNX files (the manifest's sha256 is reproducible)."""

from __future__ import annotations

import hashlib
import importlib.util
import textwrap
from pathlib import Path

import onnx
import torch

from export.onnx_export import export_onnx
from export.reproducible import STACK_TRACE_KEY

MODEL_SOURCE = textwrap.dedent('''
    import torch
    from torch import nn

    from models.base import ModelSpec, VISModel


    class Small(VISModel):
        """A contract-shaped model small enough to export in a second."""

        def __init__(self):
            super().__init__(ModelSpec(name="small", preset="t", classes=("a", "b"), input_hw=(32, 64),
                                       num_outputs=2, embedding_dim=4, frames=(1, 2, 4)))
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, frames):
            b, t = frames.shape[:2]
            x = self.conv(self.normalize(frames)).reshape(b, t, 4, 32, 64)
            pooled = x.mean(dim=(1, 3, 4))  # [B, 4]
            scores, query = torch.topk(pooled.sigmoid(), 2, dim=1)
            masks = x[:, :, :2, ::4, ::4].sigmoid().transpose(1, 2)
            return {"scores": scores, "labels": query.to(torch.int32),
                    "masks": masks, "boxes": masks.new_zeros(b, 2, t, 4),
                    "embeddings": pooled[:, None].expand(b, 2, 4),
                    "query_index": query.to(torch.int32)}
''')


def _export_from(directory: Path, name: str) -> bytes:
    directory.mkdir(parents=True)
    source = directory / f"{name}.py"
    source.write_text(MODEL_SOURCE)
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)  # same weights: only the source location differs
    return export_onnx(module.Small().eval(), directory / "model.onnx").read_bytes()


def test_two_source_directories_export_identical_bytes(tmp_path):
    first = _export_from(tmp_path / "clone_a" / "src", "clone_model")
    second = _export_from(tmp_path / "elsewhere" / "b" / "src", "clone_model")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert b"clone_a" not in first and b"elsewhere" not in second


def test_real_export_holds_no_source_paths_but_keeps_module_scopes(tiny_tevit_export):
    data = tiny_tevit_export.onnx_path.read_bytes()
    repo = str(Path(__file__).resolve().parents[2]).encode()
    assert repo not in data and b"site-packages" not in data
    model = onnx.load_from_string(data)
    keys = {p.key for n in model.graph.node for p in n.metadata_props}
    assert STACK_TRACE_KEY not in keys
    assert "pkg.torch.onnx.name_scopes" in keys  # calibration keep-lists match these
