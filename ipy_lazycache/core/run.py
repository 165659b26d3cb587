"""What the run changed: the before/after bookkeeping of a cell's body.

:func:`take_before` records the namespace (and local modules the cell
reaches) before the body runs; :func:`changed_names` compares after it,
giving the names the cell defined, changed in place and deleted.
"""

from __future__ import annotations

import ast
import types

from .. import codecs, relations
from ..analysis import is_ipython_name
from ..hashing import Unhashable, module_values_digest, value_hash
from .plan import Plan


class NotStored(Exception):
    """The run cannot be stored as a hit that does what it did (its outputs
    hold live widgets); nothing was written, and the message says why."""


#: Line magics that configure the session: a hit runs them again, as the
#: run did (``%matplotlib inline`` also hooks figure drawing into IPython).
CONFIG_MAGICS = frozenset({"matplotlib", "config", "load_ext", "reload_ext", "precision", "autoreload", "aimport",
                           "xmode", "colors", "autocall", "pdb"})


def config_magics(tree) -> list:
    """``[name, line]`` of the configuring line magics at the cell's top level,
    in order (only constant lines: no ``{expr}`` expansion to redo)."""
    out = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run_line_magic"
                and len(call.args) >= 2 and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                                for a in call.args[:2])
                and call.args[0].value in CONFIG_MAGICS and "ipy_lazycache" not in call.args[1].value):
            out.append([call.args[0].value, call.args[1].value])
    return out


def result_name(tree):
    """The name the cell's last line shows, if it is a bare name."""
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Name):
        return last.value.id
    return None


class Outcome:
    """What a cell run produced, in the namespace and on screen."""

    def __init__(self, outputs: list, result: dict | None, result_name: str | None = None, duration: float = 0.0,
                 value=None, effects: dict | None = None, requires: dict | None = None, files=None):
        self.outputs = outputs  # nbformat-like output dicts
        self.result = result  # the last expression's mime bundle, or None
        self.result_name = result_name  # when the last expression was a def
        self.duration = duration
        self.value = value  # the last expression's value, kept for Out[n] and _
        self.effects = effects or {}  # JSON-able process state the run changed (ambient.py)
        self.requires = requires or {}  # provider -> digest a hit needs (state used but not keyed)
        self.files = files  # the paths the run wrote in its folder (a file_watch.Watch), or None


def module_snapshot(plan: Plan, ns: dict) -> dict:
    """The attributes of the notebook's own modules, which a run could change
    and a hit could not redo (``cfg.CONST = 2``, ``import m; m.X = 1``, or a
    helper doing it). Installed modules are left out: their state is
    configuration the ambient providers cover, or a trace no cache restores
    (``builtins.x = 1``, which the tests use to count runs)."""
    import sys

    from .. import sources

    modules = [m for m in list(sys.modules.values())
               if isinstance(m, types.ModuleType) and m.__name__ != "__main__" and sources.is_local_module(m)]
    return {id(m): (m, dict(vars(m))) for m in modules}


def changed_modules(snapshot: dict, plan: Plan | None = None, ns: dict | None = None) -> list[str]:
    """``module.attribute`` names a run rebound, added or removed (see
    :func:`module_snapshot`), local modules the cell imported for the
    first time whose values differ from what their import left, and what the
    cell's code sets on an installed library (:mod:`.installed_attrs`)."""
    import sys

    from .. import import_watch, sources
    from ..hashing import Unhashable, module_values_digest
    from ..installed_attrs import set_on_installed

    out = set_on_installed(plan.source, ns) if plan is not None and ns is not None else []
    for name in sorted(plan.analysis.imports if plan is not None else ()):
        module = sys.modules.get(name)
        if module is None or id(module) in snapshot or not sources.is_local_module(module):
            continue
        recorded = import_watch.snapshots.get(name)
        try:
            now = module_values_digest(module)
        except (Unhashable, RecursionError):
            now = None
        if recorded is None or recorded[0] is not module.__spec__ or now is None or recorded[1] != now:
            out.append(f"{name}'s values")
    for module, before in snapshot.values():
        now = vars(module)
        for name in sorted(set(before) | set(now)):
            if name.startswith("__") or before.get(name, _GONE) is now.get(name, _GONE):
                continue
            out.append(f"{module.__name__}.{name}")
    return out


_GONE = object()


def take_before(plan: Plan, ns: dict):
    """Snapshot ``ns`` into ``plan.before`` just before the body runs, and
    note where the direct items of container refs are, so that a ref the
    run changes in place (``rows.insert(0, x)``) keeps its old items as the
    same objects on a hit (``first = rows[0]`` elsewhere stays one of them)."""
    plan.before = {n: v for n, v in ns.items() if _user_name(n)}
    annotations = ns.get("__annotations__")
    plan.annotations = dict(annotations) if isinstance(annotations, dict) else {}
    plan.items = relations.direct_items({n: ns[n] for n in plan.refs if n in ns})
    plan.modules = {}
    for module in _local_modules_reached(plan, ns):
        try:
            plan.modules[module.__name__] = (module, module_values_digest(module))
        except (Unhashable, RecursionError):
            plan.modules[module.__name__] = (module, None)


def _local_modules_reached(plan: Plan, ns: dict) -> list:
    """The notebook's own modules (not installed ones) whose values the cell
    can change: read through (``cfg.REG``, ``import cfg``), or the globals of
    their functions the cell calls, directly or through notebook functions."""
    import sys

    from .. import sources
    from ..analysis import _through_modules

    names = set()
    for label, value in _through_modules(plan.analysis, ns).items():
        if label.startswith("import "):
            names.add(value[1] if isinstance(value, tuple) and value[:1] == ("file",) else "")
        elif getattr(value, "local", False):
            names.add(value.module)
    todo, seen = [ns[n] for n in plan.refs if n in ns], set()
    while todo and len(seen) < 2000:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            obj = obj.__func__  # never getattr on other objects: a __getattr__ may change them
        if isinstance(obj, type) and obj.__module__ == "__main__":
            todo.extend(getattr(v, "__func__", v) for v in vars(obj).values())
        elif isinstance(obj, types.FunctionType):
            g = obj.__globals__
            if g is not ns:
                names.add(g.get("__name__") or "")
            codes = [obj.__code__]
            while codes:
                code = codes.pop()
                read = [g[n] for n in code.co_names if n in g]
                for module in [v for v in read if isinstance(v, types.ModuleType)]:  # regmod.register(1)
                    names.add(module.__name__)
                    # The module's own dict, never getattr: a module __getattr__
                    # warns (numpy's np.str) or imports into the user's cell.
                    attrs = vars(module)
                    read += [attrs.get(n) for n in code.co_names]
                todo.extend(v for v in read if isinstance(v, (types.FunctionType, type)))
                codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    modules = (sys.modules.get(n) for n in sorted(names - {"", "__main__"}))
    return [m for m in modules if m is not None and sources.is_local_module(m)]


def _changed_module_values(plan: Plan) -> list[str]:
    """Modules of :attr:`Plan.modules` whose values the run changed."""
    out = []
    for name, (module, digest) in sorted(plan.modules.items()):
        try:
            now = module_values_digest(module)
        except (Unhashable, RecursionError):
            now = None
        if now is None or now != digest:
            out.append(name)
    return out


def _user_name(name: str) -> bool:
    """A name the user's code owns: not IPython's bookkeeping, not a dunder."""
    return not is_ipython_name(name) and not (name.startswith("__") and name.endswith("__"))


def changed_names(plan: Plan, ns: dict):
    """What the run changed in ``ns``: ``(values, deleted, mutated, after)``.

    Found by comparing the namespace with ``plan.before`` (identity), so
    bindings analysis cannot see count too (``exec``, ``from m import *``, a
    called function's ``global`` statement). A name bound to a new object is
    a def; a def the analysis says is surely bound is stored even when it is
    the same object again (``x = 5`` twice), unless it is a ref (``a += 1``
    on an array); a conditional def left alone is not. Refs are re-hashed:
    one whose content changed is stored as mutated (updated in place on a
    hit). A ref whose hash changed may have changed other names' objects
    that its hash covered (a global list its code appends to, a bound
    method's object, a nested item): those are stored as mutated too.
    ``after`` holds the refs' content hashes after the run, so nothing is
    hashed twice.
    """
    changed = _changed_module_values(plan)
    if changed:
        raise NotStored(f"it changed what {', '.join(changed)} holds, which a hit could not do again")
    values, mutated, after = _bound(plan, ns), [], {}
    gone = {n for n in plan.before if n not in ns} | {n for n in plan.analysis.deletes if n not in ns}
    deleted = sorted(n for n in gone if _user_name(n))  # replayed on a hit, whether or not it exists then
    reaches = _refs_changed(plan, ns, values, mutated, after)
    _reached_changed(plan, ns, reaches, values, mutated, after)
    return values, deleted, sorted(mutated), after


def annotations_set(plan: Plan, ns: dict) -> dict:
    """The ``__annotations__`` entries the run set (``n: int = 5`` at top
    level): a hit sets them again, as it binds ``n``."""
    now = ns.get("__annotations__")
    if not isinstance(now, dict):
        return {}
    before = plan.annotations
    return {k: v for k, v in now.items() if before.get(k, _GONE) is not v}


def _bound(plan: Plan, ns: dict) -> dict:
    """The names the run bound (by identity against ``plan.before``)."""
    before = plan.before
    surely = getattr(plan.analysis, "surely", set())
    values = {}
    for name in sorted(ns):
        if not _user_name(name):
            continue
        value = ns[name]
        if name in before:
            # A ref surely bound to the same object again (``a += 1`` on an
            # array, ``a = np.asarray(a)``) is checked by hash below like any
            # ref: stored as a def it would be rebound to a copy on a hit,
            # and views of it made by earlier cells would stop seeing it.
            if before[name] is not value or (name in surely and name not in plan.refs):
                values[name] = value
        elif name not in plan.refs:
            values[name] = value  # new (a ref without a snapshot is checked by hash below)
    return values


def _refs_changed(plan: Plan, ns: dict, values: dict, mutated: list, after: dict) -> list:
    """Re-hash the refs (into ``after``); those changed in place join
    ``values`` and ``mutated``. Returns the objects of every changed ref."""
    reaches = []
    for name, old_hash in plan.refs.items():
        if name in values or name not in ns:
            continue
        try:
            after[name] = value_hash(ns[name])
        except (Unhashable, RecursionError):
            after[name] = None
        if after[name] == old_hash:
            continue
        obj = ns[name]
        if not isinstance(obj, (types.MethodType, types.ModuleType)):
            values[name] = obj  # updated in place on a hit (a function's or class's attributes too)
            mutated.append(name)
        reaches.append(obj)
    return reaches


def _reached_changed(plan: Plan, ns: dict, reaches: list, values: dict, mutated: list, after: dict) -> None:
    """What changed may be another name's object, reached through the ref:
    a function's code cannot change in place, so what it reaches did
    (``log.append`` inside it); a bound method's object (``push =
    lst.append``), a partial's arguments, a container's nested items
    (``outer["a"]["b"].append(1)`` changes ``inner`` too)."""
    for name in sorted(_reached_names(reaches, ns)):
        if name in values or (name in plan.refs and after.get(name, plan.refs[name]) == plan.refs[name]):
            continue  # stored already, or a ref the run provably left alone
        try:
            after[name] = value_hash(ns[name])
        except (Unhashable, RecursionError):
            continue  # it could not be stored either: left as the hit finds it
        values[name] = ns[name]
        mutated.append(name)


def _is_code(value) -> bool:
    return isinstance(value, (types.FunctionType, types.MethodType, type, types.ModuleType))


def _reached_names(roots, ns, budget: int = relations.INDEX_BUDGET) -> set:
    """Names of ``ns`` whose objects a run could have changed through
    ``roots`` (refs whose content changed): what the refs' hashes covered,
    walked the same way (up to ``budget`` objects). Names bound to atoms and
    modules are left out, and functions and classes with no state of their
    own (attributes, closure cells, defaults): those cannot change in place."""
    if not roots:
        return set()
    by_id: dict[int, list] = {}
    for name, value in ns.items():
        if _user_name(name) and type(value) not in codecs._ATOMIC and (not _is_code(value) or _holds_state(value)):
            by_id.setdefault(id(value), []).append(name)
    seen, names, todo = set(), set(), list(roots)
    while todo and budget > 0:
        obj = todo.pop()
        if id(obj) in seen or type(obj) in codecs._ATOMIC:
            continue
        seen.add(id(obj))
        budget -= 1
        names.update(by_id.get(id(obj), ()))
        todo.extend(_referents(obj, ns))
    return names


def _holds_state(code) -> bool:
    """A notebook function or class with state a run could change in place
    (``f.calls += 1``, ``Registry.items.append(x)``, a mutable default)."""
    if isinstance(code, types.FunctionType):
        defaults = [*(code.__defaults__ or ()), *(code.__kwdefaults__ or {}).values()]
        return bool(vars(code) or code.__closure__ or any(type(d) not in codecs._ATOMIC for d in defaults))
    if isinstance(code, type) and code.__module__ == "__main__":  # a class attribute (``type(self).count += 1``)
        code_like = (staticmethod, classmethod, property, types.MemberDescriptorType, types.GetSetDescriptorType)
        return any(not k.startswith("__") and not callable(v) and not isinstance(v, code_like)
                   for k, v in vars(code).items())
    return False


def _referents(obj, ns) -> list:
    """What :func:`value_hash` reads of ``obj`` that may be other names' objects."""
    import functools

    t = type(obj)
    if isinstance(obj, types.ModuleType) or t.__module__.split(".")[0] in ("numpy", "pandas"):
        return []
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, (dict, types.MappingProxyType)):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, types.MethodType):
        return [obj.__func__, obj.__self__]
    if isinstance(obj, types.BuiltinMethodType):  # ``lst.append``; a module's functions have it as __self__
        return [obj.__self__]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, types.FunctionType):
        out = [*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values(), *vars(obj).values()]
        out += [cell.cell_contents for cell in obj.__closure__ or () if _cell_full(cell)]
        if obj.__globals__ is ns:  # the notebook's globals its code names
            codes = [obj.__code__]
            while codes:
                code = codes.pop()
                out += [ns[n] for n in code.co_names if n in ns]
                codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        return out
    if isinstance(obj, type):
        if obj.__module__ != "__main__":
            return []
        out = []
        for v in vars(obj).values():
            out += [v.fget, v.fset, v.fdel] if isinstance(v, property) else [getattr(v, "__func__", v)]
        return out
    out = [t] if t.__module__ == "__main__" else []  # an instance's methods may change what they reach
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        out += d.values()
    out += [getattr(obj, slot, None) for slot in codecs._slot_names(t)]
    return out


def _cell_full(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell (a name not yet bound)
        return False
    return True
