"""Exported graphs that do not depend on where the source tree lives.

The dynamo exporter records, per node, the Python stack that produced it
(``pkg.torch.onnx.stack_trace`` metadata): about 3,000 absolute source paths in a tiny TeViT
export, so two clones of the repository wrote different bytes and different sha256 in the
manifest. We drop that one field. The module scopes (``pkg.torch.onnx.name_scopes``), which the
calibration's keep-lists match, and the other metadata hold no paths and stay.
"""

from __future__ import annotations

from pathlib import Path

import onnx

STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def strip_source_paths(model: onnx.ModelProto) -> int:
    """Remove every node's stack-trace metadata (subgraphs included); returns how many."""
    removed = 0
    for graph in _graphs(model.graph):
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
            removed += len(node.metadata_props) - len(keep)
            if len(keep) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(keep)
    return removed


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def make_reproducible(path: str | Path) -> int:
    """``strip_source_paths`` on the ONNX file at ``path``, saved in place; returns the count."""
    model = onnx.load(str(path))
    removed = strip_source_paths(model)
    if removed:
        onnx.save(model, str(path))
    return removed
