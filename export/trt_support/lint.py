"""Static lint of an ONNX graph against the TensorRT ONNX parser's documented operator support.

Every node (subgraphs included) is looked up in a ``SupportTable``; the row's machine rules
(``checks`` column) are then applied to the node's attributes, inputs and shapes. Tensor types
and the opset are checked against the table's notes. No TensorRT is needed.

Rules (tokens of the ``checks`` column):

=========================  ===============================================================
``attr:NAME=V1|V2``        attribute (or its ONNX default) is one of the values
``absent:A|B``             these attributes are not set
``ones:NAME``              the ints attribute is empty or all ones
``need:I``                 input I is given (only where the op's schema has input I)
``noinput:I|J``            inputs I, J are not given
``const:I``                input I is an initializer, a Constant, or computed only from those
``zero:I``                 constant input I is all zeros
``lt:I=N``                 constant input I is below N
``rank:I=4|5``             input I has one of these ranks
``static:I``               input I has only fixed dimensions
``outputs:N``              at most N outputs are used
``dtype:I=INT8|FP8``       input I has one of these element types
=========================  ===============================================================

Tensor types: UINT8 only as a graph input consumed by nothing but ``Cast`` (or as a graph output);
INT8 only as Q/DQ data or zero points (explicit quantization); no STRING, complex or wide unsigned
types. Sources: NVIDIA/TensorRT issue 3985 (UINT8 inputs must feed a Cast directly) and the
QuantizeLinear/DequantizeLinear importer of onnx-tensorrt 10.1 (``onnxOpImporters.cpp``
``QuantDequantLinearHelper``: INT8/FP8/INT4 zero points, which must be all zeros).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from export.trt_support.rules import RULES, TABLE_TYPE, GraphFacts
from export.trt_support.table import SupportTable
from plugins import CustomPlugin, load_custom_plugins

STANDARD_DOMAINS = ("", "ai.onnx")
NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                    "Multinomial", "Bernoulli"}
UNSUPPORTED_TYPES = {"STRING", "COMPLEX64", "COMPLEX128", "UINT16", "UINT32", "UINT64", "INT16"}
DATA_INPUT = {"Where": 1}  # ops whose typed data input is not input 0


@dataclass(frozen=True)
class LintIssue:
    """One finding: ``severity`` is ``error`` (the parser will refuse) or ``warning``."""

    severity: str
    op: str
    node: str
    message: str

    def __str__(self) -> str:
        where = (f"tensor {self.node!r}" if self.op == "tensor" else
                 f"{self.op} node {self.node!r}" if self.node else self.op)
        return f"[{self.severity}] {where}: {self.message}"


@dataclass
class LintReport:
    """All findings for one graph and one TensorRT version."""

    table: SupportTable
    opset: int
    op_counts: Counter = field(default_factory=Counter)
    issues: list[LintIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One line: version, nodes, op types, error and warning counts."""
        return (f"{self.table.name} lint: {sum(self.op_counts.values())} nodes, "
                f"{len(self.op_counts)} op types, opset {self.opset}: "
                f"{len(self.errors)} errors, {len(self.warnings)} warnings")

    def format(self, limit: int = 20) -> str:
        """The summary and the first ``limit`` issues, errors first."""
        ordered = self.errors + self.warnings
        lines = [self.summary()] + [f"  {issue}" for issue in ordered[:limit]]
        if len(ordered) > limit:
            lines.append(f"  ... and {len(ordered) - limit} more")
        return "\n".join(lines)


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
            return np.asarray(onnx.helper.get_attribute_value(attr))
    return None


def _collect(graph: onnx.GraphProto, facts: GraphFacts, depth: int = 0) -> list:
    """Fill ``facts`` (types, constants) from ``graph``; return ``[(node, depth)]`` incl. subgraphs."""
    for init in graph.initializer:
        facts.constants.add(init.name)
        facts.values[init.name] = numpy_helper.to_array(init)
        facts.types[init.name] = onnx.helper.make_tensor_type_proto(init.data_type, init.dims)
    for info in (*graph.input, *graph.output, *graph.value_info):
        facts.types.setdefault(info.name, info.type)
    for output in graph.output:
        facts.consumers[output.name] += 1
    nodes = []
    for node in graph.node:
        nodes.append((node, depth))
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant":
            facts.constants.update(node.output)
            value = _constant_value(node)
            if value is not None:
                facts.values[node.output[0]] = value
        elif (inputs and node.op_type not in NONDETERMINISTIC
              and all(name in facts.constants for name in inputs)):
            facts.constants.update(name for name in node.output if name)
        for name in node.input:
            facts.consumers[name] += 1
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                nodes.extend(_collect(sub, facts, depth + 1))
    return nodes


def _check_custom(node: onnx.NodeProto, custom: list[CustomPlugin]) -> list[LintIssue]:
    """A custom-domain op passes only when ``plugins/custom.json`` declares it (with its library)."""
    declared = next((c for c in custom if (c.domain, c.op) == (node.domain, node.op_type)), None)
    where = f"{node.domain}::{node.op_type}"
    if declared is None:
        return [LintIssue("error", where, node.name, "custom-domain op that plugins/custom.json "
                          "does not declare: the TensorRT parser needs a plugin registered under "
                          "this name; export a standard ONNX form instead or declare the plugin "
                          "and its library there")]
    return [LintIssue("warning", where, node.name, f"needs the plugin library {declared.library} "
                      "(plugins/custom.json) at build and run time")]


def _check_node(node: onnx.NodeProto, table: SupportTable, facts: GraphFacts,
                custom: list[CustomPlugin]) -> list[LintIssue]:
    op, name = node.op_type, node.name
    if node.domain not in STANDARD_DOMAINS:
        return _check_custom(node, custom)
    row = table.ops.get(op)
    if row is None or not row.supported:
        later = table.added_later.get(op)
        why = (f"supported only from TensorRT {later}" if later else
               f"not supported by the {table.major}.x parser" + (f" ({row.restriction})"
                                                                   if row and row.restriction else ""))
        return [LintIssue("error", op, name, f"{why}; rewrite it with supported ops "
                          "(see docs/tensorrt.md)")]
    issues = _check_input_type(node, row, facts)
    for token in row.checks:
        rule, _, arg = token.partition(":")
        for severity, message in RULES[rule](node, arg, facts):
            hint = f" (TensorRT {table.major}.x: {row.restriction})" if row.restriction else ""
            issues.append(LintIssue(severity, op, name, message + hint))
    return issues


def _check_input_type(node: onnx.NodeProto, row, facts: GraphFacts) -> list[LintIssue]:
    """Warn when the data input's type is not among the documented ``types`` of the op."""
    index = DATA_INPUT.get(node.op_type, 0)
    name = node.input[index] if index < len(node.input) else ""
    tproto = facts.types.get(name)
    if not row.types or tproto is None or not tproto.HasField("tensor_type"):
        return []
    onnx_type = onnx.TensorProto.DataType.Name(tproto.tensor_type.elem_type)
    if onnx_type in ("DOUBLE", "UNDEFINED") or TABLE_TYPE.get(onnx_type) in row.types:
        return []
    return [LintIssue("warning", node.op_type, node.name, f"input {name!r} is {onnx_type}; the "
                      f"documented types are {' '.join(row.types)}")]


def _qdq_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors explicit quantization may hold in INT8: Q outputs, DQ data inputs and the zero
    points (input 2) of both."""
    names = set()
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            names.update(node.output[:1])
        if node.op_type == "DequantizeLinear":
            names.update(node.input[:1])
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            names.update(node.input[2:3])
    return names


def _check_uint8_inputs(model: onnx.ModelProto) -> list[LintIssue]:
    """A uint8 graph input may feed only Cast nodes (NVIDIA/TensorRT issue 3985)."""
    issues = []
    for value in model.graph.input:
        if value.type.tensor_type.elem_type != onnx.TensorProto.UINT8:
            continue
        others = [n for n in model.graph.node if value.name in n.input and n.op_type != "Cast"]
        for node in others:
            issues.append(LintIssue("error", node.op_type, node.name, f"reads the UINT8 network "
                                    f"input {value.name!r}; TensorRT lets UINT8 inputs feed only a "
                                    "Cast: read the Cast's output instead (export.graph_fixes)"))
    return issues


def _check_types(model: onnx.ModelProto, facts: GraphFacts) -> list[LintIssue]:
    graph_io = {v.name for v in (*model.graph.input, *model.graph.output)}
    quantized = _qdq_tensors(model)
    issues = _check_uint8_inputs(model)
    for name, tproto in sorted(facts.types.items()):
        if not tproto.HasField("tensor_type"):
            continue
        dtype = onnx.TensorProto.DataType.Name(tproto.tensor_type.elem_type)
        if dtype in UNSUPPORTED_TYPES:
            issues.append(LintIssue("error", "tensor", name, f"type {dtype} is not a TensorRT type"))
        elif dtype == "UINT8" and name not in graph_io and facts.consumers[name]:
            issues.append(LintIssue("error", "tensor", name, "UINT8 is only supported as a "
                                    "network input or output; cast right after the input"))
        elif dtype == "INT8" and name not in quantized:
            issues.append(LintIssue("error", "tensor", name, "INT8 tensors must come from "
                                    "QuantizeLinear or be DequantizeLinear weights or Q/DQ zero "
                                    "points (explicit Q/DQ)"))
        elif dtype == "DOUBLE":
            issues.append(LintIssue("warning", "tensor", name, "DOUBLE is cast down to FLOAT"))
    return issues


def lint_model(model: onnx.ModelProto, table: SupportTable,
               custom: list[CustomPlugin] | None = None) -> LintReport:
    """Lint ``model`` (shape inference is run on a copy) against ``table``; custom-domain ops
    pass when ``custom`` (default: ``plugins/custom.json``) declares them."""
    custom = load_custom_plugins() if custom is None else custom
    opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), 0)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError:
        inferred = model
    facts = GraphFacts(opset=opset)
    nodes = _collect(inferred.graph, facts)
    report = LintReport(table=table, opset=opset, op_counts=Counter(n.op_type for n, _ in nodes))
    lo, hi = table.opset_range
    if not lo <= opset <= hi:
        report.issues.append(LintIssue("error", "model", "", f"opset {opset} is outside "
                                       f"{lo}..{hi} that {table.name} parses; re-export at opset 18"))
    for node, _ in nodes:
        report.issues.extend(_check_node(node, table, facts, custom))
    report.issues.extend(_check_types(inferred, facts))
    return report


def lint_onnx(path: str, table: SupportTable,
              custom: list[CustomPlugin] | None = None) -> LintReport:
    """Load ``path`` (with external data) and lint it against ``table``."""
    return lint_model(onnx.load(str(path)), table, custom)
