"""Regenerate the TensorRT Python binding name lists (``bindings_trt<version>.txt``) without
importing TensorRT.

The ``tensorrt_cu12_bindings`` / ``tensorrt_cu13_bindings`` wheels on PyPI hold the pybind11
module ``tensorrt_bindings/tensorrt.so`` (it cannot be imported here: ``libnvinfer`` is not
installable) and a pure-Python ``tensorrt_bindings/__init__.py``. Names are read from both:

- ``.rodata`` of the ``.so``: pybind11 registers every class, method, property and enum value
  by a NUL-terminated C string. Each string's trailing identifier is kept (the linker merges a
  string into the tail of a longer one, e.g. ``INT8`` lives inside ``UINT8``, so the checker
  also accepts a name that ends one of these entries).
- ``__init__.py`` by AST: names it defines (``volume``, ``nptype``, ``__version__``) and the
  names it uses from ``from .tensorrt import *`` (``Builder``, ``Runtime``, ``Logger``).

Usage (network: ``pip download`` fetches the wheels, ~1.3 MB each)::

    python -m export.trt_support.extract_binding_names            # the default versions
    python -m export.trt_support.extract_binding_names --wheel W  # a wheel already on disk
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SPECS = (
    "tensorrt_cu12_bindings==10.3.0",       # JetPack 6.x ships TensorRT 10.3
    "tensorrt_cu12_bindings==10.16.1.11",   # newest 10.x on PyPI on the extraction date
    "tensorrt_cu13_bindings==11.4.0.106",   # newest 11.x on PyPI on the extraction date
)
IDENT_TAIL = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*$")
MANGLED = re.compile(r"^_?Z[NSt]|^Z\d")


def rodata_strings(elf: bytes) -> list[bytes]:
    """NUL-terminated byte strings of the ``.rodata`` section of a little-endian ELF64 file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("expected a little-endian ELF64 shared object")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    entsize, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", elf, shoff + i * entsize) for i in range(count)]
    names_offset = sections[names_index][4]
    for name, _type, _flags, _addr, offset, size in sections:
        end = elf.index(b"\0", names_offset + name)
        if elf[names_offset + name:end] == b".rodata":
            return elf[offset:offset + size].split(b"\0")
    raise ValueError("no .rodata section")


def so_names(elf: bytes) -> set[str]:
    """Trailing identifiers of the ``.rodata`` strings, minus C++ mangled symbols."""
    names = set()
    for raw in rodata_strings(elf):
        match = IDENT_TAIL.search(raw)
        if match:
            name = match.group().decode()
            if len(name) <= 64 and not MANGLED.match(name):
                names.add(name)
    return names


def init_names(source: str) -> set[str]:
    """Names ``__init__.py`` defines or takes from the star import (module level, by AST)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def wheel_names(wheel: Path) -> set[str]:
    """All binding names of one bindings wheel."""
    with zipfile.ZipFile(wheel) as zf:
        elf = zf.read("tensorrt_bindings/tensorrt.so")
        init = zf.read("tensorrt_bindings/__init__.py").decode()
    return so_names(elf) | init_names(init)


def wheel_version(wheel: Path) -> str:
    """``10.3.0`` from ``tensorrt_cu12_bindings-10.3.0-cp311-...whl``."""
    return wheel.name.split("-")[1]


def write_list(wheel: Path, out_dir: Path) -> Path:
    """Write ``bindings_trt<version>.txt``: a commented header, then one name per line."""
    names = sorted(wheel_names(wheel))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    header = [
        f"# TensorRT Python binding names, version {wheel_version(wheel)}",
        f"# source: {wheel.name} (PyPI), sha256 {sha}",
        f"# extracted: {dt.date.today().isoformat()} by export/trt_support/extract_binding_names.py",
        "# method: trailing identifiers of .rodata strings of tensorrt_bindings/tensorrt.so"
        " + names in tensorrt_bindings/__init__.py (AST); no import",
        f"# names: {len(names)}",
    ]
    path = out_dir / f"bindings_trt{wheel_version(wheel)}.txt"
    path.write_text("\n".join(header + names) + "\n")
    return path


def download(spec: str, dest: Path) -> Path:
    """``pip download`` one bindings wheel (no dependencies, binary only) into ``dest``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--quiet", spec, "-d", str(dest)], check=True)
    name = spec.split("==")[0]
    version = spec.split("==")[1]
    return next(dest.glob(f"{name}-{version}-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", action="append", type=Path, default=[],
                        help="a downloaded bindings wheel (repeatable); default: download "
                             + ", ".join(DEFAULT_SPECS))
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheel or [download(spec, Path(tmp)) for spec in DEFAULT_SPECS]
        for wheel in wheels:
            print(f"{wheel.name} -> {write_list(wheel, args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
