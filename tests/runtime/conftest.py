"""Fixtures for the runtime tests; the generators themselves live in rt_fixtures.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rt_fixtures  # noqa: E402


@pytest.fixture(scope="session")
def contract_artifacts(tmp_path_factory) -> Path:
    """Contract ONNX graph (dynamic T, input 64x96) + manifest."""
    return rt_fixtures.build_contract_artifacts(tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="session")
def fixed_t_artifacts(tmp_path_factory) -> Path:
    """VisTR-like artifact: T fixed to 8 in the graph and the manifest (frames min == max)."""
    return rt_fixtures.build_contract_artifacts(tmp_path_factory.mktemp("fixed"), fixed_frames=8)


@pytest.fixture(params=["contract", "tiny_tevit"])
def artifacts_dir(request, contract_artifacts) -> Path:
    """End-to-end artifact directories: our contract graph, and the lead's tiny TeViT export
    once tests/conftest.py provides the session fixture ``tiny_tevit_artifacts``."""
    if request.param == "contract":
        return contract_artifacts
    try:
        return Path(request.getfixturevalue("tiny_tevit_artifacts"))
    except pytest.FixtureLookupError:
        pytest.skip("tiny_tevit_artifacts fixture not provided yet (tests/conftest.py)")
