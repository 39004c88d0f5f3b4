"""Regenerate ``bindings_members_trt<version>.txt``: which class has which member, and the keyword
names of every method, from the TensorRT OSS Python binding sources (pybind11 C++), no import.

The wheels' ``.so`` (``bindings_trt*.txt``) only lists names; it cannot say that ``FP16`` is a
``BuilderFlag`` value or that ``set_input_shape`` takes ``name`` and ``shape``. Those facts are in
NVIDIA/TensorRT ``python/src/**/*.cpp`` at the release tag (``py::class_<T, Bases...>(m, "Name")``
/ ``py::enum_<T>(m, "Name")`` chains of ``.def("member", ..., "kw"_a)``, ``.def_property*``,
``.def_readwrite``, ``.value("MEMBER", ...)``; ``m.def("function", ..., "kw"_a)``) plus the
names ``python/packaging/bindings_wheel/tensorrt/__init__.py`` adds. Output lines::

    class ICudaEngine                               # a bound class (or enum)
    base IConvolutionLayer ILayer                   # inheritance (members are inherited)
    member IExecutionContext.set_input_shape name shape   # member and its keyword names
    function init_libnvinfer_plugins logger namespace

Usage (a git checkout of NVIDIA/TensorRT; tags v10.3.0, v10.16, v11.1 were used)::

    python -m export.trt_support.extract_binding_members --git DIR --tag v10.3.0 --version 10.3.0
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import re
import subprocess
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASS_DECL = re.compile(r"py::(class_|enum_)<")
MEMBER_CALL = re.compile(r"\.(def|def_static|def_property|def_property_readonly|def_readwrite|"
                         r"def_readonly|def_property_static|value)\(\s*(\"(\w+)\"|py::init)")
KEYWORD = re.compile(r"\"(\w+)\"_a|py::arg\(\"(\w+)\"\)")
MODULE_DEF = re.compile(r"\b(\w+)\.def\(\s*\"(\w+)\"")


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _split_top(text: str) -> list[str]:
    """Split template arguments at top-level commas."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "<(" and 1 or (-1 if ch in ">)" else 0)
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return parts + [current.strip()] if current.strip() else parts


def _statement_end(text: str, start: int) -> int:
    """Index of the ``;`` that ends the statement starting at ``start`` (outside brackets)."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = text.index('"', i + 1) if '"' in text[i + 1:] else len(text)
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ";" and depth == 0:
            return i
        i += 1
    return len(text)


def _members(chain: str) -> list[tuple[str, list[str]]]:
    """``(member, keyword names)`` of each registration call in a ``.def(...)`` chain."""
    found = []
    for match in MEMBER_CALL.finditer(chain):
        paren = chain.index("(", match.start())
        args = chain[paren:_matching(chain, paren, "(", ")")]
        name = match.group(3) or "__init__"
        keywords = [a or b for a, b in KEYWORD.findall(args)] if match.group(1) != "value" else []
        found.append((name, keywords))
    return found


def parse_bindings(sources: dict[str, str]) -> dict:
    """Classes (C++ type -> Python name), bases, members with keywords and module functions."""
    cpp_to_py, var_names, bases = {}, {}, defaultdict(list)
    members: dict[str, dict[str, list[str]]] = defaultdict(dict)
    functions: dict[str, list[str]] = {}
    for text in sources.values():
        for decl in CLASS_DECL.finditer(text):
            lt = text.index("<", decl.start())
            gt = _matching(text, lt, "<", ">")
            types = _split_top(text[lt + 1:gt - 1])
            head = re.match(r"\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*\"(\w+)\"", text[gt:])
            if not head or not types:
                continue
            var, parent, name = head.groups()
            cpp_to_py[types[0].split("::")[-1]] = name
            if var:
                var_names[var] = name
            bases[name] += [t.split("::")[-1] for t in types[1:] if re.fullmatch(r"[\w:]+", t)]
            end = _statement_end(text, gt)
            chains = [text[gt:end]]
            if var:  # py::class_<T> var(m, "Name"); var.def(...);
                for use in re.finditer(rf"\b{var}\s*\.", text):
                    if use.start() > end:
                        chains.append(text[use.start():_statement_end(text, use.start())])
            for chain in chains:
                for member, keywords in _members(chain):
                    members[name].setdefault(member, keywords)
            if parent in var_names and ".export_values()" in chains[0]:  # trt.ILogger.WARNING
                for member, _ in _members(chains[0]):
                    members[var_names[parent]].setdefault(member, [])
        for match in MODULE_DEF.finditer(text):
            if match.group(1) == "m":
                paren = text.index("(", match.start())
                args = text[paren:_matching(text, paren, "(", ")")]
                functions[match.group(2)] = [a or b for a, b in KEYWORD.findall(args)]
    resolved = {name: sorted({cpp_to_py[b] for b in bs if b in cpp_to_py} - {name})
                for name, bs in bases.items()}
    return {"classes": set(cpp_to_py.values()), "bases": resolved, "members": members,
            "functions": functions}


def init_additions(source: str) -> tuple[set[str], dict[str, set[str]]]:
    """Module-level functions and ``Class.attr = ...`` members that ``__init__.py`` adds."""
    functions, members = set(), defaultdict(set)
    source = re.sub(r"##\w+##", "tensorrt", source)  # CMake template placeholders
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            functions.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    members[target.value.id].add(target.attr)
    return functions, members


def format_table(parsed: dict, init: tuple[set[str], dict], version: str, source: str) -> str:
    """The committed text form (see the module docstring)."""
    lines = [f"# TensorRT Python binding members, version {version}",
             f"# source: {source}",
             f"# extracted: {dt.date.today().isoformat()} by "
             "export/trt_support/extract_binding_members.py (pybind11 sources, no import)"]
    for name in sorted(parsed["classes"]):
        lines.append(f"class {name}")
        lines += [f"base {name} {b}" for b in parsed["bases"].get(name, [])]
        members = dict(parsed["members"].get(name, {}))
        members.update({m: [] for m in init[1].get(name, ()) if m not in members})
        lines += [" ".join(["member", f"{name}.{m}", *kw]) for m, kw in sorted(members.items())]
    functions = dict(parsed["functions"]) | {f: [] for f in init[0] if f not in parsed["functions"]}
    lines += [" ".join(["function", f, *kw]) for f, kw in sorted(functions.items())]
    return "\n".join(lines) + "\n"


def git_sources(git_dir: Path, tag: str) -> tuple[dict[str, str], str]:
    """The binding C++ sources and the wheel's ``__init__.py`` at ``tag`` of a git checkout."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(git_dir), "show", f"{tag}:{path}"], check=True,
                              capture_output=True, text=True).stdout

    names = subprocess.run(["git", "-C", str(git_dir), "ls-tree", "-r", "--name-only", tag,
                            "python/src"], check=True, capture_output=True, text=True).stdout
    sources = {n: show(n) for n in names.split() if n.endswith(".cpp")}
    return sources, show("python/packaging/bindings_wheel/tensorrt/__init__.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--git", type=Path, required=True, help="NVIDIA/TensorRT git checkout")
    parser.add_argument("--tag", required=True, help="release tag, e.g. v10.3.0")
    parser.add_argument("--version", required=True, help="version in the file name, e.g. 10.3.0")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    sources, init = git_sources(args.git, args.tag)
    text = format_table(parse_bindings(sources), init_additions(init), args.version,
                        f"NVIDIA/TensorRT python/src at tag {args.tag}")
    path = args.out_dir / f"bindings_members_trt{args.version}.txt"
    path.write_text(text)
    print(f"{path}: {text.count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
