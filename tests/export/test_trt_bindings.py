"""Every ``tensorrt`` attribute our code uses exists in the TensorRT 10.x and 11.x Python bindings,
on the class it is used on, with the keyword names it is called with.

The name lists were extracted from the PyPI bindings wheels without importing them
(export/trt_support/extract_binding_names.py), the member tables from the pybind11 sources at the
release tags (extract_binding_members.py); nothing is downloaded here.
"""

from __future__ import annotations

import glob
import sysconfig
from pathlib import Path

import pytest

from export.trt_support.bindings import (
    AttributeUse,
    load_binding_members,
    load_binding_names,
    missing_names,
    tensorrt_attribute_uses,
)
from export.trt_support.extract_binding_members import format_table, init_additions, parse_bindings
from export.trt_support.extract_binding_names import init_names, so_names

REPO = Path(__file__).resolve().parents[2]
TRT_CODE = sorted((REPO / "export" / "tensorrt").glob("*.py")) + [
    REPO / "runtime" / "backends" / "tensorrt.py", REPO / "plugins" / "loader.py"]


@pytest.fixture(scope="module")
def lists():
    return load_binding_names()


@pytest.fixture(scope="module")
def tables():
    return load_binding_members()


def _problems(source, lists, tables):
    uses = tensorrt_attribute_uses(source, "snippet.py")
    return [p for use in uses for p in missing_names(use, lists, tables)]


def test_lists_cover_10_and_11_with_their_sources(lists):
    assert {b.major for b in lists} == {10, 11}
    assert [b.version for b in lists] == ["10.3.0", "10.16.1.11", "11.4.0.106"]
    for b in lists:
        assert "(PyPI), sha256 " in b.source and "bindings" in b.source
        assert len(b.names) > 1000
        header = (Path(REPO / "export/trt_support") / f"bindings_trt{b.version}.txt").read_text()
        assert "# extracted: 2026-11-25" in header


def test_lists_tell_the_versions_apart(lists):
    """TensorRT 11 dropped the precision builder flags and EXPLICIT_BATCH (docs/tensorrt.md)."""
    by_major = {10: [b for b in lists if b.major == 10], 11: [b for b in lists if b.major == 11]}
    for name in ("FP16", "OBEY_PRECISION_CONSTRAINTS", "EXPLICIT_BATCH"):
        assert all(b.has(name) for b in by_major[10]) and not any(b.has(name) for b in by_major[11])
    for name in ("STRONGLY_TYPED", "IProgressMonitor", "execute_async_v3", "__version__", "Runtime"):
        assert all(b.has(name) for b in lists)


def test_every_tensorrt_attribute_we_use_exists_in_10_and_11(lists, tables):
    uses: list[AttributeUse] = []
    for path in TRT_CODE:
        uses += tensorrt_attribute_uses(path.read_text(), str(path.relative_to(REPO)))
    used = {name for use in uses for name in use.names}
    # the collector really sees the builder, the inspector and the runtime
    assert {"MemoryPoolType", "WORKSPACE", "IProgressMonitor", "phase_start", "JSON",
            "execute_async_v3", "set_input_shape", "nptype", "get_tensor_profile_shape",
            "init_libnvinfer_plugins", "get_creator", "load_library"} <= used
    problems = [p for use in uses for p in missing_names(use, lists, tables)]
    assert problems == []
    assert {u.owner for u in uses} >= {"IExecutionContext", "ICudaEngine", "IPluginRegistry",
                                        "IProgressMonitor", "EngineInspector"}


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


def test_member_tables_are_sourced_and_know_owners(tables):
    assert [t.version for t in tables] == ["10.3.0", "10.16.1.11", "11.1"]
    for table in tables:
        assert "NVIDIA/TensorRT python/src at tag v" in table.source
        assert table.lookup("IExecutionContext", "set_input_shape") == ("name", "shape")
        assert table.lookup("ICudaEngine", "get_tensor_profile_shape") == ("name", "profile_index")
        assert table.lookup("Logger", "WARNING") == ()  # exported by ILogger.Severity, inherited
        assert table.lookup("BuilderFlag", "STRONGLY_TYPED") is None
        assert table.lookup("NetworkDefinitionCreationFlag", "STRONGLY_TYPED") is not None
    assert [t.lookup("BuilderFlag", "INT8") is not None for t in tables] == [True, True, False]


def test_class_member_pairs_and_keywords_are_checked(lists, tables):
    """Issue 21 item 11: the flat name lists accept all of these."""
    problems = _problems('''
def build(trt, config, context, flavor):
    config.set_flag(trt.BuilderFlag.STRONGLY_TYPED)
    config.set_flag(trt.BuilderFlag.INT8)
    if flavor.major == 10:
        config.set_flag(trt.BuilderFlag.INT8)
    context.set_input_shape(name="frames", shape=(1, 5))
    context.set_input_shape(tensor="frames", shape=(1, 5))
    trt.init_libnvinfer_plugins(logger=None, namespace="")
    trt.init_libnvinfer_plugins(None, ns="")
    trt.Logger(min_severity=trt.Logger.WARNING)
    trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
''', lists, tables)
    joined = "\n".join(problems)
    assert "snippet.py:3 BuilderFlag.STRONGLY_TYPED: 'BuilderFlag' has no member 'STRONGLY_TYPED'" \
        in joined and "'STRONGLY_TYPED' is not a binding name" not in joined
    assert "snippet.py:4 BuilderFlag.INT8: 'BuilderFlag' has no member 'INT8' in the TensorRT " \
        "11.1 member tables (not inside a version check)" in joined
    assert not any("snippet.py:6" in p for p in problems)  # guarded, and a 10.x member
    assert not any("snippet.py:7" in p for p in problems)
    assert any("snippet.py:8" in p and "takes no keyword ['tensor']" in p for p in problems)
    assert not any("snippet.py:9" in p for p in problems)
    assert any("snippet.py:10" in p and "init_libnvinfer_plugins takes no keyword ['ns']" in p
               for p in problems)
    assert not any(f"snippet.py:{n}" in p for p in problems for n in (11, 12))


def test_member_extraction_reads_pybind11_sources():
    source = '''
    py::class_<ILayer>(m, "ILayer", py::module_local())
        .def_property("name", &ILayer::getName, &ILayer::setName);
    py::class_<IConvolutionLayer, ILayer, std::unique_ptr<IConvolutionLayer>>(m, "IConvolutionLayer")
        .def("set_input", &IConvolutionLayer::setInput, "index"_a, py::arg("tensor"));
    py::class_<ILogger, PyLogger> baseLogger{m, "ILogger", ILoggerDoc::descr};
    py::enum_<ILogger::Severity>(baseLogger, "Severity", py::arithmetic())
        .value("WARNING", ILogger::Severity::kWARNING)
        .export_values();
    baseLogger.def(py::init<>()).def("log", &ILogger::log, "severity"_a, "msg"_a);
    m.def("init_libnvinfer_plugins", &initLibNvInferPlugins, "logger"_a, "namespace"_a);
'''
    parsed = parse_bindings({"x.cpp": source})
    assert parsed["bases"]["IConvolutionLayer"] == ["ILayer"]
    assert parsed["members"]["IConvolutionLayer"]["set_input"] == ["index", "tensor"]
    assert set(parsed["members"]["ILogger"]) == {"WARNING", "__init__", "log"}
    table = format_table(parsed, init_additions("def volume(x):\n    return x\nILayer.x = 1\n"),
                         "99.0", "test")
    assert "base IConvolutionLayer ILayer" in table and "member ILayer.x" in table
    assert "function init_libnvinfer_plugins logger namespace" in table
    assert "function volume" in table
