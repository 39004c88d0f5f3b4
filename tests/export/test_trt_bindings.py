"""Every ``tensorrt`` attribute our code uses exists in the TensorRT 10.x and 11.x Python bindings.

The name lists were extracted from the PyPI bindings wheels without importing them
(export/trt_support/extract_binding_names.py); nothing is downloaded here.
"""

from __future__ import annotations

import glob
import sysconfig
from pathlib import Path

import pytest

from export.trt_support.bindings import (
    AttributeUse,
    load_binding_names,
    missing_names,
    tensorrt_attribute_uses,
)
from export.trt_support.extract_binding_names import init_names, so_names

REPO = Path(__file__).resolve().parents[2]
TRT_CODE = sorted((REPO / "export" / "tensorrt").glob("*.py")) + [
    REPO / "runtime" / "backends" / "tensorrt.py"]


@pytest.fixture(scope="module")
def lists():
    return load_binding_names()


def test_lists_cover_10_and_11_with_their_sources(lists):
    assert {b.major for b in lists} == {10, 11}
    assert [b.version for b in lists] == ["10.3.0", "10.16.1.11", "11.4.0.106"]
    for b in lists:
        assert "(PyPI), sha256 " in b.source and "bindings" in b.source
        assert len(b.names) > 1000
        header = (Path(REPO / "export/trt_support") / f"bindings_trt{b.version}.txt").read_text()
        assert "# extracted: 2026-11-25" in header


def test_lists_tell_the_versions_apart(lists):
    """TensorRT 11 dropped the precision builder flags and EXPLICIT_BATCH (toolchain.md §2)."""
    by_major = {10: [b for b in lists if b.major == 10], 11: [b for b in lists if b.major == 11]}
    for name in ("FP16", "OBEY_PRECISION_CONSTRAINTS", "EXPLICIT_BATCH"):
        assert all(b.has(name) for b in by_major[10]) and not any(b.has(name) for b in by_major[11])
    for name in ("STRONGLY_TYPED", "IProgressMonitor", "execute_async_v3", "__version__", "Runtime"):
        assert all(b.has(name) for b in lists)


def test_every_tensorrt_attribute_we_use_exists_in_10_and_11(lists):
    uses: list[AttributeUse] = []
    for path in TRT_CODE:
        uses += tensorrt_attribute_uses(path.read_text(), str(path.relative_to(REPO)))
    used = {name for use in uses for name in use.names}
    # the collector really sees the builder, the inspector and the runtime
    assert {"MemoryPoolType", "WORKSPACE", "IProgressMonitor", "phase_start", "JSON",
            "execute_async_v3", "set_input_shape", "stream_handle", "nptype"} <= used
    problems = [p for use in uses for p in missing_names(use, lists)]
    assert problems == []


def test_version_specific_names_must_sit_behind_a_version_check(lists):
    source = '''
def configure(trt, flavor, config):
    config.set_flag(trt.BuilderFlag.FP16)
    if flavor.major == 10:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.FP61)
    engine.no_such_method()
'''
    uses = tensorrt_attribute_uses(source, "snippet.py")
    problems = [p for use in uses for p in missing_names(use, lists)]
    assert any("snippet.py:3" in p and "'FP16'" in p and "11.4.0.106" in p
               and "not inside a version check" in p for p in problems)
    assert not any("snippet.py:5" in p for p in problems)  # guarded and a real 10.x name
    assert any("snippet.py:6" in p and "'FP61'" in p for p in problems)  # typo: in no list
    assert any("'no_such_method'" in p for p in problems)


def test_name_extraction_reads_a_real_pybind11_module_and_init_files():
    so = glob.glob(str(Path(sysconfig.get_paths()["purelib"]) / "onnx" / "onnx_cpp2py_export*.so"))
    names = so_names(Path(so[0]).read_bytes())
    assert {"check_model", "infer_shapes", "ValidationError"} <= names
    assert not any(n.startswith("_ZN") for n in names)
    found = init_names("from .tensorrt import *\n__version__ = '1'\nRuntime.__enter__ = f\n"
                       "def volume(x):\n    return x\n")
    assert {"__version__", "Runtime", "__enter__", "volume"} <= found
