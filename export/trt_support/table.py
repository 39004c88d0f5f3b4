"""The TensorRT ONNX-parser support tables (``onnx_ops_trt10.csv``, ``onnx_ops_trt11.csv``).

Each CSV starts with ``#`` lines naming its sources and retrieval date, then one row per operator
(or per change within a major version, told apart by ``since``). ``load_support_table(10, "10.3")``
resolves the rows that hold for one TensorRT version.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE_FILES = {10: HERE / "onnx_ops_trt10.csv", 11: HERE / "onnx_ops_trt11.csv"}
# JetPack 6 ships TensorRT 10.3 (the oldest 10.x we target); 11.4 is the newest 11.x on PyPI.
DEFAULT_TARGETS = {10: "10.3", 11: "11.4"}


class SupportTableError(ValueError):
    """A support table is missing, malformed, or asked for a version it does not describe."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.16.1.11"`` -> ``(10, 16, 1, 11)``; raises ``SupportTableError`` on junk."""
    if not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        raise SupportTableError(f"not a TensorRT version: {text!r} (expected e.g. 10.3 or 11.4.0.106)")
    return tuple(int(p) for p in text.strip().split("."))


@dataclass(frozen=True)
class OpSupport:
    """One operator as the parser documents it for the table's target version."""

    op: str
    supported: bool
    since: str
    types: tuple[str, ...]
    restriction: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class SupportTable:
    """Operator support of one TensorRT version: ``ops[op_type] -> OpSupport``."""

    major: int
    version: str
    opset_range: tuple[int, int]
    ops: dict[str, OpSupport]
    header: tuple[str, ...]
    added_later: dict[str, str]  # op -> first version with support, for ops newer than ``version``

    @property
    def name(self) -> str:
        return f"TensorRT {self.version}"

    def source_lines(self) -> list[str]:
        """The header lines that name the sources and the retrieval date."""
        return [line for line in self.header if line.startswith(("source", "retrieved"))]


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise SupportTableError(f"support table {path} is missing; restore it from git")
    lines = path.read_text().splitlines()
    header = [line[1:].strip() for line in lines if line.startswith("#")]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    expected = {"op", "supported", "since", "types", "restriction", "checks"}
    if not rows or set(rows[0]) != expected:
        raise SupportTableError(f"{path}: columns must be {sorted(expected)}")
    return header, rows


def _opset_range(header: list[str], target: tuple[int, ...], path: Path) -> tuple[int, int]:
    line = next((h for h in header if h.startswith("opset:")), None)
    pairs = re.findall(r"(\d+(?:\.\d+)*)=(\d+)-(\d+)", line or "")
    if not pairs:
        raise SupportTableError(f"{path}: header needs a line like '# opset: 10.0=9-20'")
    valid = [(parse_version(v), int(lo), int(hi)) for v, lo, hi in pairs
             if parse_version(v) <= target]
    if not valid:
        raise SupportTableError(f"{path} does not describe TensorRT {'.'.join(map(str, target))}")
    _, lo, hi = max(valid)
    return lo, hi


def load_support_table(major: int, version: str | None = None) -> SupportTable:
    """The support table of TensorRT ``version`` (default: ``DEFAULT_TARGETS[major]``)."""
    if major not in TABLE_FILES:
        raise SupportTableError(f"no support table for TensorRT {major}.x; have "
                                f"{', '.join(f'{m}.x' for m in TABLE_FILES)}")
    version = version or DEFAULT_TARGETS[major]
    target = parse_version(version)
    if target[0] != major:
        raise SupportTableError(f"version {version} is not TensorRT {major}.x")
    path = TABLE_FILES[major]
    header, rows = _read_rows(path)
    chosen: dict[str, tuple[tuple[int, ...], dict]] = {}
    later: dict[str, tuple[int, ...]] = {}
    for row in rows:
        since = parse_version(row["since"]) if row["since"] else (0,)
        if since > target:
            if row["supported"] == "Y":
                later[row["op"]] = min(since, later.get(row["op"], since))
        elif row["op"] not in chosen or since >= chosen[row["op"]][0]:
            chosen[row["op"]] = (since, row)
    ops = {op: OpSupport(op=op, supported=row["supported"] == "Y", since=row["since"],
                         types=tuple(row["types"].split()), restriction=row["restriction"],
                         checks=tuple(row["checks"].split()))
           for op, (_, row) in chosen.items()}
    added_later = {op: ".".join(map(str, v)) for op, v in later.items()
                   if op not in ops or not ops[op].supported}
    return SupportTable(major=major, version=version, opset_range=_opset_range(header, target, path),
                        ops=ops, header=tuple(header), added_later=added_later)
