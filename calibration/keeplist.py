"""Per-model precision keep-lists: ``models/<name>/precision.json`` (a data file beside the model).

Schema (``format: visdeploy.precision/1``)::

    {"model": "tevit", "block_depth": 3,
     "fp16": {"data_max": 512,
              "groups": [{"name": "layer_norm", "op_types": ["LayerNormalization"],
                          "keep_fp32": true, "why": "measured: ..."}, ...]},
     "int8": {"quantize_op_types": ["Conv", "Gemm", "MatMul"],
              "exclude": [{"name": "box_geometry", "module": "^roi_head\\\\..*_head\\\\.\\\\d+$",
                           "why": "..."}]}}

A group or exclude rule selects nodes by ``op_types`` and/or a ``module`` regex, optionally
narrowed by ``feeds`` (op types the node's output reaches, e.g. ``["Softmax"]`` for attention
logits; see ``calibration.graph.Selector``). FP16 groups with ``keep_fp32: false`` were
measured and found harmless; they stay listed so the sensitivity run re-measures them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from calibration.errors import KeepListError
from calibration.graph import Selector

FORMAT = "visdeploy.precision/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
QUANTIZABLE_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Fp16Group:
    """A named node group measured for FP16 sensitivity; ``keep_fp32`` is the decision."""

    selector: Selector
    keep_fp32: bool


@dataclass(frozen=True)
class KeepList:
    """Parsed keep-list. ``path`` is where it was read from (for reports)."""

    model: str
    path: Path
    block_depth: int
    fp16_data_max: float
    fp16_groups: tuple[Fp16Group, ...]
    int8_op_types: tuple[str, ...]
    int8_exclude: tuple[Selector, ...]

    @property
    def fp16_keep(self) -> list[Selector]:
        return [g.selector for g in self.fp16_groups if g.keep_fp32]


def default_path(model: str) -> Path:
    """``models/<model>/precision.json`` in this repository."""
    return REPO_ROOT / "models" / model / "precision.json"


def _selector(raw: dict, where: str) -> Selector:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise KeepListError(f"{where}: each rule needs a 'name' string, got {raw!r}")
    op_types = raw.get("op_types", [])
    module = raw.get("module")
    if not isinstance(op_types, list) or not all(isinstance(o, str) for o in op_types):
        raise KeepListError(f"{where}.{raw['name']}: op_types must be a list of op names")
    if module is not None and not isinstance(module, str):
        raise KeepListError(f"{where}.{raw['name']}: module must be a regex string")
    if not op_types and module is None:
        raise KeepListError(f"{where}.{raw['name']}: give op_types and/or module")
    feeds = raw.get("feeds", [])
    if not isinstance(feeds, list) or not all(isinstance(o, str) for o in feeds):
        raise KeepListError(f"{where}.{raw['name']}: feeds must be a list of op names")
    return Selector(raw["name"], tuple(op_types), module, raw.get("why", ""), tuple(feeds))


def parse_keep_list(data: dict, path: Path) -> KeepList:
    """Validate the JSON of a keep-list; ``KeepListError`` names the first faulty field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeepListError(f"{path}: format must be {FORMAT!r}")
    fp16, int8 = data.get("fp16"), data.get("int8")
    if not isinstance(fp16, dict) or not isinstance(int8, dict):
        raise KeepListError(f"{path}: needs 'fp16' and 'int8' sections")
    groups = []
    for raw in fp16.get("groups", []):
        if not isinstance(raw.get("keep_fp32"), bool):
            raise KeepListError(f"{path}: fp16 group {raw.get('name')!r} needs keep_fp32 true/false")
        groups.append(Fp16Group(_selector(raw, f"{path}: fp16"), raw["keep_fp32"]))
    op_types = tuple(int8.get("quantize_op_types", QUANTIZABLE_OP_TYPES))
    unknown = sorted(set(op_types) - set(QUANTIZABLE_OP_TYPES))
    if unknown:
        raise KeepListError(f"{path}: int8.quantize_op_types {unknown} are not supported; "
                            f"choose from {QUANTIZABLE_OP_TYPES}")
    depth = data.get("block_depth", 3)
    if not isinstance(depth, int) or depth < 1:
        raise KeepListError(f"{path}: block_depth must be a positive integer")
    return KeepList(
        model=str(data.get("model", "")), path=path, block_depth=depth,
        fp16_data_max=float(fp16.get("data_max", 512)), fp16_groups=tuple(groups),
        int8_op_types=op_types,
        int8_exclude=tuple(_selector(r, f"{path}: int8.exclude") for r in int8.get("exclude", [])),
    )


def load_keep_list(model: str, path: str | Path | None = None) -> KeepList:
    """The keep-list of ``model`` (or the file ``path``)."""
    path = Path(path) if path else default_path(model)
    if not path.is_file():
        raise KeepListError(f"no precision keep-list at {path}; write one beside the model "
                            f"(see models/tevit/precision.json) or pass --keep-list PATH")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise KeepListError(f"cannot read {path}: {err}") from err
    return parse_keep_list(data, path)
