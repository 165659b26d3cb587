"""What ambient providers look at and share: the :class:`Provider`
interface, a keyed :class:`Cell` (its tree's attribute chains and
environment reads), and small helpers."""

from __future__ import annotations

import ast
import os
import sys

import xxhash


class Unreplayable(Exception):
    """A change a run made to process state that a hit cannot make exactly:
    the cell is not stored (DESIGN §11), and the message says what."""


class Provider:
    """A piece of ambient state. Every method is optional and inert.

    A provider is made when the extension loads: what it records then is
    the start-up state :meth:`delta` compares with (see :mod:`.ambient`)."""

    name = ""

    def delta(self):
        """What this process changed here since a fresh kernel, JSON-able,
        or None if nothing: it joins the key of every cell. Runs on every
        lookup, so it must be cheap when nothing changed."""
        return None

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
        """What a run changed, JSON-able, or None if nothing; raises
        :class:`Unreplayable` for a change :meth:`apply` cannot make exactly."""
        return None

    def apply(self, effect) -> None:
        """Make a hit change the state as the run did."""


class Baselined(Provider):
    """A provider whose fresh kernel is the state it finds when the session
    starts: :meth:`rebase` at load, and again at the first cell
    (:meth:`.ambient.Registry.start_here`); its delta is the state now
    (:meth:`current`) where it differs from that."""

    def __init__(self):
        self.rebase()

    def rebase(self) -> None:
        """The session starts here: the state now is a fresh kernel's."""
        self.start = self.current()

    def current(self):
        """The state the delta compares with the start: the snapshot."""
        return self.snapshot()

    def delta(self):
        now = self.current()
        return now if now != self.start else None


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

    def imported(self) -> dict:
        """``{name: "module"}`` or ``{name: "module.attr"}`` for what the
        cell's own import statements bind (the key is made before they run)."""
        return self._shape[2]

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
    chains, env, imports = [], [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports[alias.asname or alias.name.partition(".")[0]] = alias.name if alias.asname else \
                    alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
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
    return chains, env, imports


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


def by_notebook(plumbing: frozenset, depth: int = 2) -> bool:
    """Whether the code calling (``depth`` frames up) is the notebook's: past
    frames of the ``plumbing`` modules (a mapping's own methods, the stdlib
    helpers acting for a caller), the frame's module is ``__main__``, a
    local module or one of IPython's magics (``%env``, ``%config``), not an
    installed library at its import."""
    from .sources import is_notebook_module_name

    f = sys._getframe(depth)
    while f is not None and f.f_globals.get("__name__") in plumbing:
        f = f.f_back
    name = f.f_globals.get("__name__") if f is not None else None
    return is_notebook_module_name(name) or (isinstance(name, str) and name.startswith("IPython.core.magics"))


def named(obj) -> str:
    """A function, class or other callable by what it is, the same in every
    process: ``module:qualname``, with a closure's plain values (sympy's
    printers close over their settings), never an address."""
    target = getattr(obj, "func", obj)  # functools.partial: the function, then its arguments
    mod = getattr(target, "__module__", None) or getattr(type(target), "__module__", "?")
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    extra = []
    if target is not obj:
        extra += [_atom(a) for a in getattr(obj, "args", ())]
        extra += [f"{k}={_atom(v)}" for k, v in sorted((getattr(obj, "keywords", None) or {}).items())]
    for cell in getattr(target, "__closure__", None) or ():
        try:
            extra.append(_atom(cell.cell_contents))
        except ValueError:
            extra.append("<empty>")
    return f"{mod}:{qual}" + (f"({', '.join(extra)})" if extra else "")


def _atom(value) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return repr(list(value))
    if isinstance(value, dict) and all(isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
                                       for k, v in value.items()):
        return repr(sorted(value.items()))
    t = value if isinstance(value, type) else type(value)
    return f"<{getattr(t, '__module__', '?')}:{getattr(t, '__qualname__', '?')}>"


def list_change(before: list, after: list):
    """``(front, back)`` with ``after == front + before + back``, or None
    when the run removed or reordered items (no exact replay as a change)."""
    n = len(before)
    for i in range(len(after) - n + 1):
        if after[i:i + n] == before:
            return after[:i], after[i + n:]
    return None


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
