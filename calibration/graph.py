"""Where each ONNX node came from, and selections of nodes by op type and module scope.

The dynamo exporter records every node's PyTorch module path in the node's metadata
(``pkg.torch.onnx.name_scopes``, e.g. ``['', 'roi_head', 'roi_head.bbox_head.3', 'sqrt_3']``).
The *module* of a node is the innermost module path (``roi_head.bbox_head.3``; ``""`` for
code in the top-level ``forward``), so the per-model keep-lists can name model parts
("normalisations", "the head's box geometry") without depending on generated node names, and
sensitivity can be measured per block (the first ``depth`` components of the module path).
A rule can also name what a node's output feeds (``feeds``): the attention logits are the
MatMul whose output reaches a Softmax (through a bias Add or a scale Mul), which a module rule
cannot tell from the projections in the same attention module.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass

import onnx

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
TOP_BLOCK = "<top>"  # code of the model's own forward (post-processing)


# ops a node's output passes through on its way to what it "feeds" (NodeInfo.feeds)
PASS_THROUGH_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Reshape", "Cast", "QuantizeLinear",
                              "DequantizeLinear"})


@dataclass(frozen=True)
class NodeInfo:
    """One node: ``name``, ``op_type``, ``module`` (innermost module path, "" for top level,
    None when the exporter left no scope metadata) and ``feeds``: the op types its output
    reaches first once past element-wise arithmetic, reshapes and casts (``PASS_THROUGH_OPS``;
    e.g. ``{"Softmax"}`` for attention logits)."""

    name: str
    op_type: str
    module: str | None
    feeds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Selector:
    """Selects nodes by op type and/or module regex (``re.fullmatch``); both must hold.

    An empty selector selects nothing. ``name`` and ``why`` document the rule in reports.
    """

    name: str
    op_types: tuple[str, ...] = ()
    module: str | None = None
    why: str = ""
    feeds: tuple[str, ...] = ()  # also: the node's output feeds one of these op types

    def matches(self, node: NodeInfo) -> bool:
        if not self.op_types and self.module is None:
            return False
        if self.op_types and node.op_type not in self.op_types:
            return False
        if self.feeds and not node.feeds & set(self.feeds):
            return False
        if self.module is not None:
            return node.module is not None and re.fullmatch(self.module, node.module) is not None
        return True


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            if name:
                consumers[name].append(node)
    return consumers


def _feeds(node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> frozenset[str]:
    """Op types ``node``'s outputs reach first past ``PASS_THROUGH_OPS``."""
    found, seen, todo = set(), set(), list(node.output)
    while todo:
        for user in consumers.get(todo.pop(), []):
            if user.op_type not in PASS_THROUGH_OPS:
                found.add(user.op_type)
            elif id(user) not in seen:
                seen.add(id(user))
                todo.extend(user.output)
    return frozenset(found)


def node_infos(model: onnx.ModelProto) -> list[NodeInfo]:
    """NodeInfo of every top-level node, in graph order."""
    out = []
    consumers = _consumers(model)
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == SCOPES_KEY), None)
        module = None
        if scopes is not None:
            try:
                names = ast.literal_eval(scopes)
            except (ValueError, SyntaxError):
                names = []
            modules = [s for s in names[:-1] if s]
            module = modules[-1] if modules else ""
        out.append(NodeInfo(node.name, node.op_type, module, _feeds(node, consumers)))
    return out


def select(infos: list[NodeInfo], selectors: list[Selector]) -> dict[str, set[str]]:
    """Node names per selector name (nodes matched by any of that name's selectors)."""
    chosen: dict[str, set[str]] = defaultdict(set)
    for selector in selectors:
        chosen[selector.name] |= {n.name for n in infos if selector.matches(n)}
    return dict(chosen)


def block_of(module: str | None, depth: int) -> str:
    """Block name: the first ``depth`` components of the module path (``backbone.layers.2``)."""
    if not module:
        return TOP_BLOCK
    return ".".join(module.split(".")[:depth])


def blocks(infos: list[NodeInfo], depth: int, *, only: set[str] | None = None
           ) -> dict[str, list[str]]:
    """Node names per block, in graph order; ``only`` keeps just those node names."""
    out: dict[str, list[str]] = defaultdict(list)
    for info in infos:
        if only is None or info.name in only:
            out[block_of(info.module, depth)].append(info.name)
    return dict(out)


def has_scopes(infos: list[NodeInfo]) -> bool:
    """True when the exporter recorded module scopes (needed for module selectors and blocks)."""
    return any(info.module is not None for info in infos)


def exact_name_regex(names: set[str] | list[str]) -> str:
    """One regex matching exactly ``names`` (ModelOpt takes node-name regexes)."""
    return "^(?:" + "|".join(re.escape(n) for n in sorted(names)) + ")$"


def topk_score_tensor(model: onnx.ModelProto) -> str | None:
    """Input tensor of the graph's TopK (all candidate scores before selection), if one TopK."""
    topk = [n for n in model.graph.node if n.op_type == "TopK"]
    return topk[0].input[0] if len(topk) == 1 else None


def with_float_output(model: onnx.ModelProto, tensor: str, name: str) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs ``tensor`` cast to float32 as ``name``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    cast = onnx.helper.make_node("Cast", [tensor], [name], to=onnx.TensorProto.FLOAT,
                                 name=f"{name}_cast")
    copy.graph.node.append(cast)
    copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                None))
    return copy
