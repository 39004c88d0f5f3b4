"""The machine rules of the support tables' ``checks`` column (see ``lint.py`` for the list).

Each rule is ``rule(node, arg, facts) -> [(severity, message)]``; an empty list means the node
passes. ``facts`` carries what the lint learned about the graph (types, constants, consumers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx

# ONNX element type -> the names of the tables' ``types`` column
TABLE_TYPE = {"FLOAT": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16", "INT32": "INT32",
              "INT64": "INT64", "INT8": "INT8", "UINT8": "UINT8", "BOOL": "BOOL", "INT4": "INT4",
              "FLOAT8E4M3FN": "FP8", "FLOAT4E2M1": "FP4"}


@dataclass
class GraphFacts:
    """What a rule may ask about the graph: tensor types, constant tensors and their values."""

    opset: int
    types: dict[str, onnx.TypeProto] = field(default_factory=dict)
    constants: set[str] = field(default_factory=set)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    consumers: Counter = field(default_factory=Counter)

    def rank(self, name: str) -> int | None:
        tproto = self.types.get(name)
        if tproto is None or not tproto.tensor_type.HasField("shape"):
            return None
        return len(tproto.tensor_type.shape.dim)

    def table_type(self, name: str) -> str | None:
        """The tables' name of ``name``'s element type (``INT8``, ``FP32``), None if unknown."""
        tproto = self.types.get(name)
        if tproto is None or not tproto.HasField("tensor_type"):
            return None
        onnx_type = onnx.TensorProto.DataType.Name(tproto.tensor_type.elem_type)
        return TABLE_TYPE.get(onnx_type, onnx_type)

    def dims(self, name: str) -> list | None:
        tproto = self.types.get(name)
        if tproto is None or not tproto.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in tproto.tensor_type.shape.dim]


def _schema(node: onnx.NodeProto, opset: int):
    try:
        return onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return None


def attribute(node: onnx.NodeProto, name: str, opset: int):
    """The node's attribute value, else the schema default at ``opset``, else ``None``."""
    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    schema = _schema(node, opset)
    default = schema.attributes[name].default_value if schema and name in schema.attributes else None
    if default is None or default.type == onnx.AttributeProto.UNDEFINED:
        return None
    value = onnx.helper.get_attribute_value(default)
    return value.decode() if isinstance(value, bytes) else value


def _input(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if index < len(node.input) else ""


def _label(node: onnx.NodeProto, index: int, opset: int) -> str:
    """``input 1 (axes)`` with the schema's input name where known."""
    schema = _schema(node, opset)
    name = schema.inputs[index].name if schema and index < len(schema.inputs) else ""
    return f"input {index} ({name})" if name else f"input {index}"


def _has_input_slot(node: onnx.NodeProto, index: int, opset: int) -> bool:
    schema = _schema(node, opset)
    return schema is None or index < len(schema.inputs)


def rule_attr(node, arg, facts):
    name, _, allowed = arg.partition("=")
    value = attribute(node, name, facts.opset)
    if value is None or str(value) in allowed.split("|"):
        return []
    return [("error", f"attribute {name}={value!r}; TensorRT needs {' or '.join(allowed.split('|'))}")]


def rule_absent(node, arg, facts):
    present = sorted({a.name for a in node.attribute} & set(arg.split("|")))
    return [("error", f"attribute(s) {', '.join(present)} are not supported")] if present else []


def rule_ones(node, arg, facts):
    value = attribute(node, arg, facts.opset)
    if not value or all(v == 1 for v in value):
        return []
    return [("error", f"{arg}={list(value)}; TensorRT needs all ones")]


def rule_need(node, arg, facts):
    index = int(arg)
    if not _has_input_slot(node, index, facts.opset) or _input(node, index):
        return []
    return [("error", f"{_label(node, index, facts.opset)} is omitted; TensorRT needs it given")]


def rule_noinput(node, arg, facts):
    given = [i for i in map(int, arg.split("|")) if _input(node, i)]
    return [("error", f"input(s) {given} are not supported")] if given else []


def rule_const(node, arg, facts):
    name = _input(node, int(arg))
    if not name or name in facts.constants:
        return []
    return [("error", f"{_label(node, int(arg), facts.opset)} is computed at run time "
             f"({name!r}); TensorRT needs a build-time constant (an initializer or Constant)")]


def _const_value(node, arg, facts):
    """(name, value) of constant input ``arg``; value ``None`` when it cannot be read statically."""
    name = _input(node, int(arg))
    return name, facts.values.get(name) if name else None


def rule_zero(node, arg, facts):
    name, value = _const_value(node, arg, facts)
    if not name:
        return []
    if value is None:
        return [("warning", f"cannot read input {arg} ({name!r}) statically to check it is zero")]
    label = _label(node, int(arg), facts.opset)
    return [] if not np.any(value) else [("error", f"{label} = {name!r} must be all zeros")]


def rule_lt(node, arg, facts):
    index, _, bound = arg.partition("=")
    name, value = _const_value(node, index, facts)
    if not name:
        return []
    if value is None:
        return [("warning", f"cannot read input {index} ({name!r}) statically to check it is < {bound}")]
    worst = int(np.max(value))
    return [] if worst < int(bound) else [("error", f"input {index} is {worst}; TensorRT needs "
                                                   f"< {bound}")]


def rule_rank(node, arg, facts):
    index, _, allowed = arg.partition("=")
    name = _input(node, int(index))
    rank = facts.rank(name) if name else None
    if not name:
        return []
    if rank is None:
        return [("warning", f"rank of input {index} ({name!r}) is unknown after shape inference; "
                 f"TensorRT needs rank {' or '.join(allowed.split('|'))}")]
    if str(rank) in allowed.split("|"):
        return []
    return [("error", f"input {index} has rank {rank}; TensorRT needs rank "
             f"{' or '.join(allowed.split('|'))}")]


def rule_static(node, arg, facts):
    name = _input(node, int(arg))
    dims = facts.dims(name) if name else None
    if dims is None or all(isinstance(d, int) and d > 0 for d in dims):
        return []
    return [("error", f"input {arg} has dynamic dimensions {dims}; TensorRT needs static ones")]


def rule_outputs(node, arg, facts):
    named = [(i, o) for i, o in enumerate(node.output) if o]
    used = [i for i, o in named if facts.consumers[o] or i == 0]
    limit = int(arg)
    if len(used) > limit:
        return [("error", f"output(s) {used[limit:]} are used; TensorRT supports only the first {limit}")]
    if len(named) > limit:
        return [("warning", f"declares {len(named)} outputs (unused beyond the first {limit}); "
                 "drop the optional outputs if the parser refuses them")]
    return []


def rule_dtype(node, arg, facts):
    index, _, allowed = arg.partition("=")
    name = _input(node, int(index))
    dtype = facts.table_type(name) if name else None
    if dtype is None or dtype in allowed.split("|"):
        return []
    return [("error", f"{_label(node, int(index), facts.opset)} ({name!r}) is {dtype}; TensorRT "
             f"takes {' or '.join(allowed.split('|'))} here")]


RULES = {
    "attr": rule_attr, "absent": rule_absent, "ones": rule_ones, "need": rule_need,
    "noinput": rule_noinput, "const": rule_const, "zero": rule_zero, "lt": rule_lt,
    "rank": rule_rank, "static": rule_static, "outputs": rule_outputs, "dtype": rule_dtype,
}
