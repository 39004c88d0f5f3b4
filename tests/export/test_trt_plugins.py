"""plugins/: which ONNX ops need which TensorRT plugin (and version), custom-op declarations, the
lint accepting only declared custom ops, and the loader against a stand-in ``tensorrt`` module
(TensorRT cannot be installed here; its real behaviour is cited in plugins/loader.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.trt_support import lint_model, load_support_table
from plugins import (
    STANDARD_PLUGINS,
    CustomPlugin,
    PluginDeclarationError,
    PluginLoadError,
    libraries_of,
    load_custom_plugins,
    missing_plugins,
    plugins_of_onnx,
    register_plugins,
    resolve_versions,
)

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    opsets = [helper.make_opsetid("", 19)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model


def _t(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def _roi_deform_scatter():
    nodes = [helper.make_node("RoiAlign", ["x", "rois", "idx"], ["r"], output_height=2,
                              output_width=2, coordinate_transformation_mode="half_pixel"),
             helper.make_node("DeformConv", ["x", "w", "off"], ["d"], kernel_shape=[1, 1]),
             helper.make_node("ScatterElements", ["x", "i4", "x"], ["s"], reduction="add"),
             helper.make_node("ScatterElements", ["x", "i4", "x"], ["s2"])]
    inits = [numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.int64), "i4"),
             numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")]
    return _model(nodes, [_t("x", [1, 1, 4, 4]), _t("rois", [3, 4]),
                          _t("idx", [3], TensorProto.INT64), _t("off", [1, 2, 4, 4])],
                  [_t("r", None), _t("d", None), _t("s", None), _t("s2", None)], inits)


def test_standard_ops_map_to_their_plugins_per_tensorrt_version():
    found = plugins_of_onnx(_roi_deform_scatter(), custom=[])
    assert found == [{"op": "DeformConv", "plugin": "ModulatedDeformConv2d"},
                     {"op": "RoiAlign", "plugin": "ROIAlign_TRT"},
                     {"op": "ScatterElements", "plugin": "ScatterElements"}]  # only with reduction
    versions = {p["plugin"]: p.get("version") for p in resolve_versions(found, "10.0.1.6")}
    assert versions == {"ROIAlign_TRT": "1", "ModulatedDeformConv2d": None, "ScatterElements": "1"}
    versions = {p["plugin"]: p["version"] for p in resolve_versions(found, "10.3.0.30")}
    assert versions == {"ROIAlign_TRT": "2", "ModulatedDeformConv2d": "1", "ScatterElements": "1"}
    assert resolve_versions(found, "11.4.0.106")[0]["version"] == "2"
    assert all(p.source for p in STANDARD_PLUGINS)


def _custom_model():
    node = helper.make_node("MyOp", ["x"], ["y"], domain="com.example", plugin_version="3")
    return _model([node], [_t("x", [2])], [_t("y", None)], domains=["com.example"])


def test_custom_ops_pass_the_lint_only_when_declared(tmp_path):
    model = _custom_model()
    errors = lint_model(model, load_support_table(10), custom=[]).errors
    assert len(errors) == 1 and "plugins/custom.json does not declare" in errors[0].message
    declared = [CustomPlugin("com.example", "MyOp", "1", "", "plugins/lib/libmyop.so")]
    report = lint_model(model, load_support_table(11), custom=declared)
    assert report.ok and "libmyop.so" in str(report.warnings[0])
    # the parser's fallback importer: plugin <op type>, version = the node's plugin_version
    assert plugins_of_onnx(model, custom=declared) == [
        {"op": "MyOp", "domain": "com.example", "plugin": "MyOp", "version": "3",
         "namespace": "", "library": "plugins/lib/libmyop.so"}]
    assert plugins_of_onnx(model, custom=[]) == []


def test_declaration_file_is_validated_and_the_repository_one_is_empty(tmp_path):
    assert load_custom_plugins() == []  # plugins/custom.json: the models need no custom op
    path = tmp_path / "custom.json"
    path.write_text(json.dumps({"format": "visdeploy.plugins/1",
                                "plugins": [{"domain": "com.example", "op": "MyOp"}]}))
    with pytest.raises(PluginDeclarationError, match=r"plugins\[0\] lacks \['library'\]"):
        load_custom_plugins(path)
    path.write_text("{")
    with pytest.raises(PluginDeclarationError, match="cannot read"):
        load_custom_plugins(path)


def test_loader_registers_standard_plugins_then_custom_libraries(fake_tensorrt, tmp_path):
    lib = tmp_path / "libmyop.so"
    lib.write_bytes(b"\x7fELF")
    trt = fake_tensorrt(libraries={str(lib): [("MyOp", "3", "")]})
    need = [{"plugin": "ROIAlign_TRT", "version": "2", "namespace": ""},
            {"plugin": "MyOp", "version": "3", "namespace": "", "library": str(lib)}]
    assert missing_plugins(trt, need) == ["ROIAlign_TRT version 2", "MyOp version 3"]
    assert register_plugins(trt, trt.Logger(), libraries_of(need)) == [str(lib)]
    assert trt.calls[0] == "init_libnvinfer_plugins" and missing_plugins(trt, need) == []
    with pytest.raises(PluginLoadError, match="does not exist"):
        register_plugins(trt, trt.Logger(), [tmp_path / "nope.so"])
    other = tmp_path / "libother.so"
    other.write_bytes(b"")
    with pytest.raises(PluginLoadError, match="could not load"):
        register_plugins(trt, trt.Logger(), [other])
