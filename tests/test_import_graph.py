"""The server's packages import each other in one direction only (docs/architecture.md).

The graph is read from the source with `ast`, so nothing is imported: each package
under `locara_wyoming` (and each top-level module) is a node, and any import from
one to another, at module level or inside a function, is an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import locara_wyoming

ROOT = Path(locara_wyoming.__file__).parent
PACKAGE = "locara_wyoming"


def _node(module: str) -> str:
    """`locara_wyoming.sessions.link` → `sessions`; `locara_wyoming.config` → `config`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The `locara_wyoming` modules that `path` imports, as absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def package_graph() -> dict[str, set[str]]:
    modules = {_module_name(path) for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        source = _node(_module_name(path))
        for name in _imports(path):
            # `from . import x` names a module or an attribute: keep the longest module.
            while name not in modules and "." in name:
                name = name.rpartition(".")[0]
            target = _node(name)
            if target != source and name != PACKAGE:
                graph.setdefault(source, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_packages_have_no_import_cycles() -> None:
    graph = package_graph()
    assert "connection" in graph and "sessions" in graph["connection"]  # the graph was read
    assert cycles(graph) == []


def test_a_cycle_would_be_found() -> None:
    graph = package_graph()
    graph.setdefault("stages", set()).add("connection")  # the lowest layer importing the top
    assert any({"stages", "connection"} <= set(group) for group in cycles(graph))
