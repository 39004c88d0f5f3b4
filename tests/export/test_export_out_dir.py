"""A refused checkpoint leaves no trace: the artifact directory is created only once the model
is built (issue 20 item 7)."""

from __future__ import annotations

import pytest

from export.artifacts import export_artifacts
from models.errors import CheckpointError


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_refused_checkpoint_creates_no_artifact_directory(tmp_path, content):
    checkpoint = tmp_path / "bad.pth"
    if content is not None:
        checkpoint.write_bytes(content)
    out = tmp_path / "artifacts" / "tevit"
    with pytest.raises(CheckpointError):
        export_artifacts("tevit", "tiny", out, checkpoint=checkpoint)
    assert not out.exists() and not out.parent.exists()
