"""Attributes a cell sets on what an installed library owns (DESIGN §11).

``pd.DataFrame.total = ...``, ``json.default = 3``, ``np.helper = f``,
``setattr(mod, "x", v)``: the run changed a library's module or class, which a
new kernel imports without the change and a hit does not make, so a later
cell would fail or differ. Such a run is not stored. Found in the cell's own
code, resolved after the run; a library changing its own globals while it
runs (pyplot's backend) is its business and not counted.

``builtins`` is left out: tests and users count runs with ``builtins.x``, a
trace no cache restores (docs/how-it-works.md says so).
"""

from __future__ import annotations

import ast
import sys
import types

from . import sources
from .hashing_guard import peek


def set_on_installed(source: str, ns: dict) -> list[str]:
    """``owner.attr`` for each attribute the code of ``source`` sets or
    deletes on an installed module, or a class or function one defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for base, attr in _attribute_targets(tree):
        owner = _resolve(base, ns)
        name = _installed_name(owner)
        if name is not None:
            out.append(f"{name}.{attr}")
    return sorted(set(out))


def _attribute_targets(tree):
    """(base expression, attribute name) of every ``base.attr = / += / del``
    and ``setattr(base, "attr", v)`` / ``delattr(base, "attr")``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            yield node.value, node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            name = node.args[1] if len(node.args) >= 2 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                yield node.args[0], name.value


def _resolve(expr, ns):
    """The object a ``name.attr.attr`` expression names now, looked up
    without running any ``__getattr__``; None for anything else."""
    if isinstance(expr, ast.Name):
        return ns.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, ns)
        return None if base is None else peek(base, expr.attr)
    return None


def _installed_name(obj) -> str | None:
    if isinstance(obj, types.ModuleType):
        module, label = obj, obj.__name__
    elif isinstance(obj, (type, types.FunctionType)):
        module = sys.modules.get(peek(obj, "__module__") or "")
        label = f"{peek(obj, '__module__')}.{peek(obj, '__qualname__')}"
    else:
        return None
    if not isinstance(module, types.ModuleType) or module.__name__ in ("__main__", "builtins"):
        return None
    return None if sources.is_local_module(module) or sources.is_notebook_module_name(module.__name__) else label
