"""Check that the ``tensorrt`` attributes our code uses exist in the 10.x and 11.x bindings.

Two kinds of tables, both extracted without importing TensorRT:

- name lists (``bindings_trt<version>.txt``) from the PyPI bindings wheels
  (``extract_binding_names.py``): every identifier the ``.so`` registers, without owners;
- member tables (``bindings_members_trt<version>.txt``) from the pybind11 sources at the release
  tag (``extract_binding_members.py``): which class (or enum) has which member, with each
  method's keyword names. ``trt.BuilderFlag.STRONGLY_TYPED`` fails there (the flag belongs to
  ``NetworkDefinitionCreationFlag``), and so does ``trt.BuilderFlag.INT8`` on 11.x, which the
  name list accepts only as the tail of ``UINT8``.

Uses are collected by AST:

- chains rooted at the module alias (``trt.MemoryPoolType.WORKSPACE``): the names exist, and a
  ``Class.MEMBER`` pair exists in the member table;
- attributes of variables that hold TensorRT objects, by naming convention (``engine`` ->
  ``ICudaEngine``, ``context`` -> ``IExecutionContext``, ``inspector`` -> ``EngineInspector``,
  ``trt_runtime`` -> ``Runtime``, ``trt_logger`` -> ``ILogger``, ``registry`` ->
  ``IPluginRegistry``, ``onnx_parser`` -> ``OnnxParser``, ``builder`` -> ``Builder``,
  ``network`` -> ``INetworkDefinition``), e.g. ``context.set_input_shape``;
- methods overridden in subclasses of ``trt.*`` classes (``IProgressMonitor.phase_start``);
- keyword argument names of calls into TensorRT (``execute_async_v3(stream_handle=...)``), checked
  against the method's (or function's, or constructor's) keyword names.

A use inside an ``if`` whose test mentions ``major`` or ``version`` is *guarded*: it may be absent
from one major version's tables if another version has it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BINDING_LISTS = tuple(sorted(HERE.glob("bindings_trt*.txt")))
MEMBER_TABLES = tuple(sorted(HERE.glob("bindings_members_trt*.txt")))
# variable name -> the TensorRT class it holds (naming convention of our code)
TRT_OBJECT_CLASSES = {"engine": "ICudaEngine", "context": "IExecutionContext",
                      "inspector": "EngineInspector", "trt_runtime": "Runtime",
                      "trt_logger": "ILogger", "registry": "IPluginRegistry",
                      "onnx_parser": "OnnxParser", "builder": "Builder",
                      "network": "INetworkDefinition"}
TRT_OBJECT_NAMES = tuple(TRT_OBJECT_CLASSES)
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


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True)
class BindingMembers:
    """Classes, their bases and members (with keyword names) and module functions of one
    TensorRT version's Python bindings."""

    version: str
    members: dict[str, dict[str, tuple[str, ...]]]
    bases: dict[str, tuple[str, ...]]
    functions: dict[str, tuple[str, ...]]
    source: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def is_class(self, name: str) -> bool:
        return name in self.members

    def lookup(self, cls: str, member: str) -> tuple[str, ...] | None:
        """Keyword names of ``cls.member`` (searching base classes), None when absent."""
        seen, todo = set(), [cls]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if member in self.members.get(current, {}):
                return self.members[current][member]
            todo += self.bases.get(current, ())
        return None


def load_binding_members(paths=MEMBER_TABLES) -> list[BindingMembers]:
    """The committed member tables, oldest version first."""
    tables = []
    for path in paths:
        members, bases, functions, source = {}, {}, {}, "?"
        for line in Path(path).read_text().splitlines():
            kind, _, rest = line.partition(" ")
            words = rest.split()
            if kind == "#" and rest.startswith("source:"):
                source = rest[len("source:"):].strip()
            elif kind == "class":
                members.setdefault(words[0], {})
            elif kind == "base":
                bases[words[0]] = bases.get(words[0], ()) + (words[1],)
            elif kind == "member":
                cls, _, member = words[0].partition(".")
                members.setdefault(cls, {})[member] = tuple(words[1:])
            elif kind == "function":
                functions[words[0]] = tuple(words[1:])
        version = Path(path).name.removeprefix("bindings_members_trt").removesuffix(".txt")
        tables.append(BindingMembers(version, members, bases, functions, source))
    return sorted(tables, key=lambda t: _version_key(t.version))


def load_binding_names(paths=BINDING_LISTS) -> list[BindingNames]:
    """The committed name lists, oldest version first."""
    lists = []
    for path in paths:
        lines = Path(path).read_text().splitlines()
        version = path.name.removeprefix("bindings_trt").removesuffix(".txt")
        source = next((line for line in lines if line.startswith("# source:")), "# source: ?")
        lists.append(BindingNames(version=version, source=source[2:],
                                  names=frozenset(n for n in lines if n and not n.startswith("#"))))
    return sorted(lists, key=lambda b: _version_key(b.version))


@dataclass(frozen=True)
class AttributeUse:
    """One use of TensorRT names in our code: ``names`` must all exist in the bindings;
    ``owner`` (a class) must have ``names[0]`` when given; ``keywords`` are a call's keyword
    names, which the called method/function/constructor must take."""

    path: str
    line: int
    names: tuple[str, ...]
    guarded: bool
    owner: str | None = None
    keywords: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.owner}." if self.owner else ""
        call = f"({', '.join(k + '=' for k in self.keywords)})" if self.keywords else ""
        return f"{self.path}:{self.line} {where}{'.'.join(self.names)}{call}"


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

    def _add(self, node, names, owner=None, keywords=()):
        self.uses.append(AttributeUse(self.path, node.lineno, tuple(names), any(self.guards),
                                      owner, tuple(keywords)))

    def _target(self, node: ast.Attribute) -> tuple[str | None, list[str]] | None:
        """``(owner class, names)`` of a TensorRT attribute use, or None."""
        root, names = _chain(node)
        if root in self.aliases:
            return None, names
        if names and root in TRT_OBJECT_CLASSES:
            return TRT_OBJECT_CLASSES[root], names[:1]
        if root == "self" and len(names) >= 2 and names[0] in TRT_OBJECT_CLASSES:
            return TRT_OBJECT_CLASSES[names[0]], names[1:2]
        return None

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        self.visit(node.test)
        self.guards.append(any(word in test for word in GUARD_WORDS))
        for child in node.body + node.orelse:
            self.visit(child)
        self.guards.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        target = self._target(node)
        if target is not None:
            self._add(node, target[1], owner=target[0])
            if _chain(node)[0] in self.aliases:
                return  # the outermost attribute holds the whole chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """Keyword names of calls into TensorRT (``execute_async_v3(stream_handle=...)``)."""
        keywords = [k.arg for k in node.keywords if k.arg]
        if isinstance(node.func, ast.Attribute) and keywords:
            target = self._target(node.func)
            if target is not None:
                self._add(node, target[1], owner=target[0], keywords=keywords)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if isinstance(base, ast.Attribute) and _chain(base)[0] in self.aliases:
                owner = _chain(base)[1][-1]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                        self._add(item, [item.name], owner=owner)
        self.generic_visit(node)


def tensorrt_attribute_uses(source: str, path: str = "<string>",
                            aliases: tuple[str, ...] = ("trt",)) -> list[AttributeUse]:
    """Every use of TensorRT binding names in ``source`` (see the module docstring)."""
    collector = _Collector(path, aliases)
    collector.visit(ast.parse(source))
    return collector.uses


def _member_problem(use: AttributeUse, table: BindingMembers) -> str | None:
    """Why ``use`` fails against one member table (None when it passes or says nothing)."""
    names, owner = use.names, use.owner
    if owner is None and len(names) >= 2 and table.is_class(names[0]):
        owner, names = names[0], names[1:]
    if owner is not None:
        if not table.is_class(owner):
            return f"class {owner!r} is not bound"
        keywords = table.lookup(owner, names[0])
        if keywords is None:
            return f"{owner!r} has no member {names[0]!r}"
        target = f"{owner}.{names[0]}"
    elif len(names) == 1 and use.keywords:
        keywords = (table.lookup(names[0], "__init__") if table.is_class(names[0])
                    else table.functions.get(names[0]))
        if keywords is None:
            return None  # the name check reports unknown names
        target = names[0]
    else:
        return None
    unknown = [k for k in use.keywords if k not in keywords]
    if unknown:
        return f"{target} takes no keyword {unknown} (takes {list(keywords)})"
    return None


def _report(use: AttributeUse, missing: dict[str, list[str]], fine: set[int], what: str) -> list[str]:
    """Problem lines of ``use``: ``missing`` maps a problem to the versions where it occurs,
    ``fine`` holds the majors where the use passes. A guarded use may fail in a major version
    where it never passes, if another major version has it."""
    problems = []
    for problem, versions in missing.items():
        absent = {int(v.split(".")[0]) for v in versions}
        if use.guarded and fine and not (fine & absent):
            continue  # version-specific and guarded by a version check
        guard = "" if use.guarded else " (not inside a version check)"
        problems.append(f"{use}: {problem} in the TensorRT {', '.join(versions)} {what}{guard}")
    return problems


def missing_names(use: AttributeUse, lists: list[BindingNames],
                  tables: list[BindingMembers] = ()) -> list[str]:
    """Problems of one use against all name lists and member tables (empty when fine)."""
    problems = []
    for name in use.names:
        absent = [b.version for b in lists if not b.has(name)]
        if absent:
            fine = {b.major for b in lists if b.has(name)}
            problems += _report(use, {f"{name!r} is not a binding name": absent}, fine, "bindings")
    missing: dict[str, list[str]] = {}
    for table in tables:
        problem = _member_problem(use, table)
        if problem is not None:
            missing.setdefault(problem, []).append(table.version)
    fine = {t.major for t in tables if _member_problem(use, t) is None}
    return problems + _report(use, missing, fine, "member tables")
