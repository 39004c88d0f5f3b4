"""Check that the ``tensorrt`` attributes our code uses exist in the 10.x and 11.x bindings.

The name lists (``bindings_trt<version>.txt``) are extracted from the PyPI bindings wheels by
``extract_binding_names.py`` without importing TensorRT. Uses are collected by AST:

- chains rooted at the module alias (``trt.MemoryPoolType.WORKSPACE``);
- attributes of variables that hold TensorRT objects, by naming convention (``engine``,
  ``context``, ``inspector``, ``trt_runtime``, ``trt_logger``), e.g. ``context.set_input_shape``;
- methods overridden in subclasses of ``trt.*`` classes (``IProgressMonitor.phase_start``);
- keyword argument names of calls into TensorRT (``execute_async_v3(stream_handle=...)``).

A use inside an ``if`` whose test mentions ``major`` or ``version`` is *guarded*: it may be absent
from one major version's list if another version has it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BINDING_LISTS = tuple(sorted(HERE.glob("bindings_trt*.txt")))
TRT_OBJECT_NAMES = ("engine", "context", "inspector", "trt_runtime", "trt_logger")
GUARD_WORDS = ("major", "version")


@dataclass(frozen=True)
class BindingNames:
    """The binding names of one TensorRT version."""

    version: str
    names: frozenset[str]
    source: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def has(self, name: str) -> bool:
        """True if ``name`` is a binding name. The linker stores a string that ends another
        string only once (``INT8`` inside ``UINT8``), so a suffix of a listed name counts."""
        return name in self.names or any(n.endswith(name) for n in self.names)


def load_binding_names(paths=BINDING_LISTS) -> list[BindingNames]:
    """The committed name lists, oldest version first."""
    lists = []
    for path in paths:
        lines = Path(path).read_text().splitlines()
        version = path.name.removeprefix("bindings_trt").removesuffix(".txt")
        source = next((line for line in lines if line.startswith("# source:")), "# source: ?")
        lists.append(BindingNames(version=version, source=source[2:],
                                  names=frozenset(n for n in lines if n and not n.startswith("#"))))
    return sorted(lists, key=lambda b: tuple(int(p) for p in b.version.split(".")))


@dataclass(frozen=True)
class AttributeUse:
    """One use of TensorRT names in our code: ``names`` must all exist in the bindings."""

    path: str
    line: int
    names: tuple[str, ...]
    guarded: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {'.'.join(self.names)}"


def _chain(node: ast.Attribute) -> tuple[str, list[str]]:
    """Root identifier and attribute names of ``a.b.c`` (``('a', ['b', 'c'])``)."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    root = node.id if isinstance(node, ast.Name) else ""
    return root, names[::-1]


class _Collector(ast.NodeVisitor):
    def __init__(self, path: str, aliases: tuple[str, ...]):
        self.path, self.aliases, self.uses, self.guards = path, aliases, [], []

    def _add(self, node, names):
        self.uses.append(AttributeUse(self.path, node.lineno, tuple(names), any(self.guards)))

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        self.visit(node.test)
        self.guards.append(any(word in test for word in GUARD_WORDS))
        for child in node.body + node.orelse:
            self.visit(child)
        self.guards.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root, names = _chain(node)
        if root in self.aliases:
            self._add(node, names)
            return  # the outermost attribute holds the whole chain
        if names and root in TRT_OBJECT_NAMES:
            self._add(node, names[:1])
        elif root == "self" and len(names) >= 2 and names[0] in TRT_OBJECT_NAMES:
            self._add(node, names[1:2])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """Keyword names of calls into TensorRT (``execute_async_v3(stream_handle=...)``)."""
        if isinstance(node.func, ast.Attribute):
            root, names = _chain(node.func)
            trt_call = root in self.aliases or root in TRT_OBJECT_NAMES or (
                root == "self" and len(names) >= 2 and names[0] in TRT_OBJECT_NAMES)
            keywords = [k.arg for k in node.keywords if k.arg]
            if trt_call and keywords:
                self._add(node, keywords)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        trt_base = any(isinstance(b, ast.Attribute) and _chain(b)[0] in self.aliases
                       for b in node.bases)
        if trt_base:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    self._add(item, [item.name])
        self.generic_visit(node)


def tensorrt_attribute_uses(source: str, path: str = "<string>",
                            aliases: tuple[str, ...] = ("trt",)) -> list[AttributeUse]:
    """Every use of TensorRT binding names in ``source`` (see the module docstring)."""
    collector = _Collector(path, aliases)
    collector.visit(ast.parse(source))
    return collector.uses


def missing_names(use: AttributeUse, lists: list[BindingNames]) -> list[str]:
    """Problems of one use against all lists (empty when the use is fine)."""
    problems = []
    for name in use.names:
        absent = [b for b in lists if not b.has(name)]
        if not absent:
            continue
        present_majors = {b.major for b in lists if b.has(name)}
        missing_majors = {b.major for b in absent}
        if use.guarded and present_majors and not (present_majors & missing_majors):
            continue  # version-specific and guarded by a version check
        versions = ", ".join(b.version for b in absent)
        guard = "" if use.guarded else " (not inside a version check)"
        problems.append(f"{use}: {name!r} is not in the TensorRT {versions} bindings{guard}")
    return problems
