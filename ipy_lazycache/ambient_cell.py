"""What ambient providers look at and share: the :class:`Provider`
interface, a keyed :class:`Cell` (its tree's attribute chains and
environment reads), and small helpers."""

from __future__ import annotations

import ast
import os
import sys

import xxhash


class Provider:
    """A piece of ambient state. Every method is optional and inert."""

    name = ""

    def snapshot(self):
        """The state now, in any form :meth:`effect` and :meth:`key` accept."""
        return None

    def observes(self, cell: Cell) -> bool:
        """Whether the cell can read this state, seen statically."""
        return False

    def key(self, cell: Cell, state) -> str | None:
        """What joins the key of a cell that observes this state (None: nothing)."""
        return None

    def effect(self, before, after):
        """What a run changed, JSON-able, or None if nothing."""
        return None

    def apply(self, effect) -> None:
        """Make a hit change the state as the run did."""


class Cell:
    """What providers look at: the cell's tree and the objects its names
    resolve to. Built once per keyed cell. ``source``, when given, is the
    exact text ``tree`` was parsed from: the tree's walks are then reused
    from an earlier cell with that text (every hit)."""

    def __init__(self, tree, ns: dict, refs, source: str | None = None):
        self.tree, self.ns, self.refs = tree, ns, list(refs)
        self._shape = _shape_of(tree, source)
        self._env = None

    def chains(self) -> list[tuple]:
        """Attribute chains read by the cell, as (object of the base name, attrs...)."""
        return [(self.ns[base], *attrs) for base, *attrs in self._shape[0] if base in self.ns]

    def ref_objects(self):
        return [self.ns[n] for n in self.refs if n in self.ns]

    def environ_names(self) -> set[str]:
        """Environment variables the cell reads by a constant name."""
        if self._env is None:
            ns, names = self.ns, set()
            for kind, base, name in self._shape[1]:
                if kind == "magic" or (kind == "getenv" and _is_module(base, ns, "os")) or (
                        kind == "environ" and _is_environ(base, ns)):
                    names.add(name)
            self._env = names
        return self._env


#: ``source -> (chains by name, environment reads)``: what :class:`Cell`
#: finds by walking a tree, which depends on the text alone.
_SHAPES: dict = {}


def _shape_of(tree, source):
    known = _SHAPES.get(source) if source is not None else None
    if known is None:
        known = _walk(tree)
        if source is not None:
            if len(_SHAPES) >= 256:
                _SHAPES.clear()
            _SHAPES[source] = known
    return known


def _walk(tree):
    """Attribute chains ``(base name, attrs...)`` and environment reads
    ``(kind, base node, constant name)``: ``environ[...]`` and its
    get/setdefault/pop, ``os.getenv``, and ``%env``/``%set_env``."""
    chains, env = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attrs, base = [], node
            while isinstance(base, ast.Attribute):
                attrs.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                chains.append((base.id, *reversed(attrs)))
        key = kind = base = None
        if isinstance(node, ast.Subscript):
            kind, base, key = "environ", node.value, node.slice
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop"):
                kind, base, key = "environ", func.value, node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                kind, base, key = "getenv", func.value, node.args[0]
            elif _is_env_magic(node):
                words = node.args[1].value.replace("=", " ").split()
                env.extend(("magic", None, w) for w in words[:1])
        if kind and isinstance(key, ast.Constant) and isinstance(key.value, str):
            env.append((kind, base, key.value))
    return chains, env


def _digest(data) -> str:
    return xxhash.xxh3_128_hexdigest(repr(data).encode("utf-8", "surrogatepass"))


def _is_module(node, ns, name) -> bool:
    obj = ns.get(node.id) if isinstance(node, ast.Name) else None
    return type(obj).__name__ == "module" and getattr(obj, "__name__", None) == name


def _is_environ(node, ns) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return _is_module(node.value, ns, "os")
    return isinstance(node, ast.Name) and ns.get(node.id) is os.environ


def _is_env_magic(node) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "run_line_magic"
        and len(node.args) >= 2
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2])
        and node.args[0].value in ("env", "set_env")
    )


def _class_named(path: str):
    import importlib

    module, _, qualname = path.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _changed(before: dict | None, after: dict | None) -> dict | None:
    """The items of ``after`` that differ from ``before`` (options a run set), or None."""
    if after is None or before == after:
        return None
    before = before or {}
    return {k: v for k, v in after.items() if before.get(k) != v} or None


def _available(module: str) -> bool:
    import importlib.util

    return module in sys.modules or importlib.util.find_spec(module) is not None


def _shell():
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None
