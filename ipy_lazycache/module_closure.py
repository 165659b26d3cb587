"""The notebook's own modules a local module imports, transitively: its import closure.

A cell that calls ``mylib.f()`` runs ``myutil``'s code too when ``mylib``
imports ``myutil``; keyed by ``mylib.py`` alone, an edit of ``myutil.py``
(or of ``pkg/core.py`` under ``pkg/__init__.py``) would be a wrong hit. So a
local module is keyed with the files of every local module its source
imports (``import``, ``from ... import``, relative or not, at any depth of
the source: an import inside a function counts), found by parsing, not by
running. Installed modules end the walk: they are keyed by version elsewhere.
"""

from __future__ import annotations

import ast
import os
import sys

from . import sources

#: (path, cwd) -> ((mtime_ns, size), ((module name, path), ...)): the local modules a file imports.
_imports: dict[tuple, tuple] = {}


def closure(name: str, path: str) -> dict:
    """``{module: file}`` of the local modules module ``name`` (file
    ``path``) imports, transitively, itself excluded."""
    members = {}
    todo = [(name, path)]
    while todo:
        mod, where = todo.pop()
        for dep, dep_path in _local_imports(mod, where):
            if dep != name and dep not in members:
                members[dep] = dep_path
                todo.append((dep, dep_path))
    return members


def _local_imports(name: str, path: str) -> tuple:
    """``((module, path), ...)``: the local modules ``path``'s source imports."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    stamp, where = (st.st_mtime_ns, st.st_size), (path, os.getcwd())
    known = _imports.get(where)
    if known is not None and known[0] == stamp:
        return known[1]
    found = []
    for candidate in sorted(_imported_names(name, path)):
        dep_path = _where(candidate)
        if dep_path is not None and sources.is_local_file(dep_path) and dep_path.endswith(".py"):
            found.append((candidate, dep_path))
    _imports[where] = (stamp, tuple(found))
    return _imports[where][1]


def _where(name: str) -> str | None:
    loaded = sys.modules.get(name)
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    return module_file(name)


def _imported_names(name: str, path: str) -> set:
    """Every module name the source may import (with its parent packages;
    ``from m import x`` names ``m.x`` too, which may be a submodule)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return ""
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def module_file(name: str) -> str | None:
    """The file ``import name`` would execute, found without importing."""
    import importlib.util

    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except Exception:  # noqa: BLE001 - ImportError, ValueError, or a broken finder: the import will say
        return None
    if spec is None:
        return None
    path = spec.origin if spec.has_location else None
    locations = list(spec.submodule_search_locations or [])
    for part in rest:
        path = None
        for folder in locations:
            for candidate in (os.path.join(folder, part, "__init__.py"), os.path.join(folder, part + ".py")):
                if os.path.isfile(candidate):
                    path = candidate
                    break
            if path:
                break
        if path is None:
            return None
        locations = [os.path.dirname(path)] if path.endswith("__init__.py") else []
    return path
