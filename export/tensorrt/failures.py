"""What a failed parse or build tells the user: the parser's node and reason, then an exit code.

Polygraphy reports a parser failure by logging every ``IParserError`` and raising
``PolygraphyException("Could not parse ONNX correctly")`` (Polygraphy 0.53.6
``backend/trt/util.py`` ``check_onnx_parser_errors``); a failed build raises
``PolygraphyException`` from ``EngineBytesFromNetwork`` ("Invalid Engine"). Neither names the
node in its exception, so on a parser failure the graph is parsed once more with a plain
``trt.OnnxParser`` and each ``IParserError`` is read back: ``node_name()``, ``node_operator()``,
``node()`` (index), ``code()`` and ``desc()`` (NVIDIA/TensorRT ``python/src/parsers/pyOnnx.cpp``
at v10.3.0 and v11.1; ``num_errors`` is a property there).
"""

from __future__ import annotations

from pathlib import Path


class EngineParseError(RuntimeError):
    """The TensorRT ONNX parser refused the graph (exit code 2: nothing was built)."""


class EngineBuildError(RuntimeError):
    """The TensorRT builder failed after the graph parsed (exit code 1)."""


def parser_errors(onnx_parser) -> list[str]:
    """One line per ``IParserError``: ``node N 'name' (Op): reason [code]``."""
    lines = []
    for index in range(onnx_parser.num_errors):
        error = onnx_parser.get_error(index)
        lines.append(f"node {error.node()} {error.node_name()!r} ({error.node_operator()}): "
                     f"{error.desc()} [{error.code()}]")
    return lines


def reparse_for_errors(trt, onnx_path: Path, strongly_typed: bool) -> list[str]:
    """Parse ``onnx_path`` with a plain ``trt.OnnxParser`` (plugins already registered) and
    return its errors; nothing is built."""
    trt_logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(trt_logger)
    flags = 0
    if strongly_typed:  # TensorRT 10.x only (TrtFlavor.network_options); 11.x is always typed
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    onnx_parser = trt.OnnxParser(network, trt_logger)
    if onnx_parser.parse_from_file(str(onnx_path)):
        return []
    return parser_errors(onnx_parser) or ["the parser failed without reporting a node"]


def parse_failure(onnx_path: Path, errors: list[str], cause: Exception) -> EngineParseError:
    """The documented message: which nodes the parser refused and what to do next."""
    listed = "\n".join(f"  - {line}" for line in errors[:20]) or f"  - {cause}"
    return EngineParseError(
        f"the TensorRT ONNX parser refused {onnx_path.name}:\n{listed}\nThe CPU lint "
        "(export/trt_support) did not predict this: re-export the listed ops in a supported form "
        "(docs/tensorrt.md), declare a plugin for a custom op (plugins/custom.json), or report "
        "the node so the lint tables can learn it")


def build_failure(plan_name: str, cause: Exception) -> EngineBuildError:
    """The documented message for a build that failed after parsing."""
    return EngineBuildError(
        f"TensorRT parsed the graph but could not build {plan_name} ({cause}). Common causes: "
        "the workspace is too small (--workspace-mb), the profile is too wide for this GPU's "
        "memory (narrow it with --frames/--batch), or a layer has no implementation at this "
        "precision; TensorRT's log above names the layer")
