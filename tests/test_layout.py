"""The package's shape: no import circles, small modules, short functions.

Read from the source with ``ast`` (nothing is imported), so it runs in the
fast lane. Every ``import``/``from`` of a package module counts, at module
level and inside functions alike: a lazy import that closes a circle is still
a circle (the two modules cannot be understood, or tested, one without the
other).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ipy_lazycache"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _targets(name: str, is_package: bool, node, modules) -> list[str]:
    """The package modules an import statement in module ``name`` loads."""
    if isinstance(node, ast.Import):
        found = [alias.name for alias in node.names]
    else:
        if node.level:
            base = name if is_package else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        # ``from pkg import sub`` loads pkg.sub when sub is a module, else pkg
        found = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
    out = []
    for target in found:
        while target not in modules and "." in target:  # ``import pkg.mod.attr``: the nearest module
            target = target.rpartition(".")[0]
        if target in modules and target != name:
            out.append(target)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in _targets(name, is_package, node, modules)
        }
    return graph


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle (its modules, the first repeated at the end), or []."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return []


def test_the_checker_sees_lazy_and_relative_imports():
    """The graph is not trivially empty: known edges, function-level ones too."""
    graph = import_graph()
    assert "ipy_lazycache.stores.base" in graph["ipy_lazycache.stores.file"]  # from .base import ...
    assert "ipy_lazycache.magics" in graph["ipy_lazycache"]  # inside load_ipython_extension
    assert "ipy_lazycache.codecs_arrow" in graph["ipy_lazycache.codecs"]  # from . import codecs_arrow
    assert sorted(set(circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == ["a", "b", "c"]


def test_no_import_circles():
    assert circle(import_graph()) == []


def _long_modules() -> dict[str, int]:
    out = {}
    for name, (path, _) in _modules().items():
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            out[name] = n
    return out


def _long_functions() -> dict[str, int]:
    out = {}
    for name, (path, _) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out[f"{name}:{node.lineno} {node.name}"] = n
    return out


def test_no_module_over_500_lines():
    assert _long_modules() == {}


def test_no_function_over_60_lines():
    assert _long_functions() == {}
