"""Which ONNX ops need a TensorRT plugin, which plugin and version, and where each fact is from.

Standard ONNX ops: the TensorRT ONNX parser (onnx-tensorrt) builds a few ops as plugins from the
registry instead of native layers. Read from its importer sources (onnx/onnx-tensorrt):

- ``RoiAlign`` -> ``ROIAlign_TRT``: version "1" in the 10.0 GA parser, "2" (the IPluginV3 form)
  from the 10.1 GA parser on (``onnxOpImporters.cpp``, RoiAlign importer, ``pluginVersion``).
  NVIDIA/TensorRT ``plugin/roiAlignPlugin/README.md``: version 1 deprecated since TensorRT 10.12.
- ``DeformConv`` (opset 19) -> ``ModulatedDeformConv2d``: supported from the 10.1 GA parser
  (``docs/Changelog.md``: "Added support for DeformConv operation"), version "1"
  (``importerUtils.cpp`` ``modulatedDeformableConvPluginHelper``; no mask input -> a mask of
  ones). Later parsers ask for version "2" (the IPluginV3 form; NVIDIA/TensorRT
  ``plugin/modulatedDeformConvPlugin/README.md``: added April 2025, version 1 deprecated since
  TensorRT 10.11). The 10.11 boundary is read from that README, not from a parser release note:
  unverified.
- ``ScatterElements`` with a ``reduction`` other than ``none`` -> ``ScatterElements`` "1"
  (``onnxOpImporters.cpp`` ``scatterPluginHelper``). None of our graphs uses it.

Custom-domain ops: the parser's ``FallbackPluginImporter`` looks up plugin ``<op type>``, version
= the node's ``plugin_version`` attribute (default "1"), namespace = ``plugin_namespace`` (default
""). They are accepted only when ``custom.json`` declares them with the library that registers
the plugin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
CUSTOM_DECLARATIONS = HERE / "custom.json"
DECLARATIONS_FORMAT = "visdeploy.plugins/1"
STANDARD_DOMAINS = ("", "ai.onnx")


class PluginDeclarationError(ValueError):
    """``custom.json`` is unreadable or an entry lacks a field."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text).split(".") if p.isdigit())


@dataclass(frozen=True)
class StandardPlugin:
    """A standard ONNX op that the parser builds as a registry plugin.

    ``versions``: ``(first TensorRT version, plugin version)`` pairs, oldest first.
    ``when``: a predicate on the node's attributes (None = always).
    """

    op: str
    plugin: str
    versions: tuple[tuple[str, str], ...]
    source: str
    when: Callable[[dict], bool] | None = None

    def version_for(self, tensorrt: str) -> str | None:
        """The plugin version the parser of TensorRT ``tensorrt`` asks for (None: op unsupported)."""
        chosen = None
        for since, version in self.versions:
            if _version(since) <= _version(tensorrt):
                chosen = version
        return chosen


def _has_reduction(attrs: dict) -> bool:
    return attrs.get("reduction", "none") not in ("none", b"none")


STANDARD_PLUGINS = (
    StandardPlugin("RoiAlign", "ROIAlign_TRT", (("10.0", "1"), ("10.1", "2")),
                   "onnx-tensorrt onnxOpImporters.cpp RoiAlign importer (10.0 GA: 1, 10.1 GA: 2)"),
    StandardPlugin("DeformConv", "ModulatedDeformConv2d", (("10.1", "1"), ("10.11", "2")),
                   "onnx-tensorrt importerUtils.cpp modulatedDeformableConvPluginHelper (10.1 GA: "
                   "1); version 2 boundary from plugin/modulatedDeformConvPlugin/README.md"),
    StandardPlugin("ScatterElements", "ScatterElements", (("10.0", "1"),),
                   "onnx-tensorrt onnxOpImporters.cpp scatterPluginHelper", when=_has_reduction),
)


@dataclass(frozen=True)
class CustomPlugin:
    """A custom-domain op and the plugin library that registers ``op`` (version, namespace)."""

    domain: str
    op: str
    version: str
    namespace: str
    library: str

    def library_path(self) -> Path:
        return library_path(self.library)


def library_path(text: str) -> Path:
    """A declared library path: absolute, or relative to the repository root."""
    path = Path(text)
    return path if path.is_absolute() else REPO_ROOT / path


def libraries_of(plugins: list[dict]) -> list[Path]:
    """The custom plugin libraries named by manifest plugin entries (standard ones need none)."""
    return sorted({library_path(e["library"]) for e in plugins if e.get("library")})


def load_custom_plugins(path: str | Path = CUSTOM_DECLARATIONS) -> list[CustomPlugin]:
    """The custom-domain ops declared in ``path`` (``plugins/custom.json``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PluginDeclarationError(f"cannot read plugin declarations {path}: {err}") from err
    if data.get("format") != DECLARATIONS_FORMAT or not isinstance(data.get("plugins"), list):
        raise PluginDeclarationError(f"{path}: needs format {DECLARATIONS_FORMAT!r} and a "
                                     "'plugins' list")
    plugins = []
    for i, entry in enumerate(data["plugins"]):
        missing = [k for k in ("domain", "op", "library") if not entry.get(k)]
        if missing:
            raise PluginDeclarationError(f"{path}: plugins[{i}] lacks {missing}")
        plugins.append(CustomPlugin(entry["domain"], entry["op"], str(entry.get("version", "1")),
                                    entry.get("namespace", ""), entry["library"]))
    return plugins


def _custom_for(domain: str, op: str, custom: Iterable[CustomPlugin]) -> CustomPlugin | None:
    return next((c for c in custom if c.domain == domain and c.op == op), None)


def plugins_for_ops(nodes: Iterable[tuple[str, str, dict]],
                    custom: Iterable[CustomPlugin] = ()) -> list[dict]:
    """Plugins the parser needs for ``nodes`` = ``(domain, op_type, attributes)``, one entry per
    plugin, sorted: ``{"op", "plugin"}`` for standard ops, plus ``domain``, ``version``,
    ``namespace`` and ``library`` for declared custom ops. Undeclared custom ops are left out (the
    TensorRT lint reports them)."""
    custom = list(custom)
    found: dict[str, dict] = {}
    for domain, op, attrs in nodes:
        if domain in STANDARD_DOMAINS:
            for std in STANDARD_PLUGINS:
                if std.op == op and (std.when is None or std.when(attrs)):
                    found[std.plugin] = {"op": op, "plugin": std.plugin}
            continue
        declared = _custom_for(domain, op, custom)
        if declared is not None:
            version = str(attrs.get("plugin_version", declared.version))
            namespace = str(attrs.get("plugin_namespace", declared.namespace))
            found[f"{namespace}::{op}"] = {"op": op, "domain": domain, "plugin": op,
                                           "version": version, "namespace": namespace,
                                           "library": declared.library}
    return [found[k] for k in sorted(found)]


def resolve_versions(plugins: list[dict], tensorrt: str) -> list[dict]:
    """``plugins`` with the plugin ``version`` (and ``namespace``) that TensorRT ``tensorrt``'s
    parser asks for; standard entries the table lacks a version for keep none."""
    resolved = []
    for entry in plugins:
        std = next((s for s in STANDARD_PLUGINS if s.plugin == entry["plugin"]
                    and "library" not in entry), None)
        extra = {"version": std.version_for(tensorrt), "namespace": ""} if std else {}
        resolved.append({**entry, **{k: v for k, v in extra.items() if v is not None}})
    return resolved


def _node_tuples(graph) -> list[tuple[str, str, dict]]:
    import onnx

    out = []
    for node in graph.node:
        attrs = {}
        for attr in node.attribute:
            value = onnx.helper.get_attribute_value(attr)
            if attr.type == onnx.AttributeProto.GRAPH:
                out += _node_tuples(value)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in value:
                    out += _node_tuples(sub)
            else:
                attrs[attr.name] = value.decode() if isinstance(value, bytes) else value
        out.append((node.domain, node.op_type, attrs))
    return out


def plugins_of_onnx(model, custom: Iterable[CustomPlugin] | None = None) -> list[dict]:
    """``plugins_for_ops`` of every node (subgraphs included) of an ONNX model or file path;
    ``custom`` defaults to ``plugins/custom.json``. Needs the ``onnx`` package."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    custom = load_custom_plugins() if custom is None else custom
    return plugins_for_ops(_node_tuples(model.graph), custom)
