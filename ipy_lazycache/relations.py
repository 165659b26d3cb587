"""Relations between a cell's defs and objects outside their blobs.

A run leaves ``b = a[::2]`` a view of ``a``, ``first = rows[0]`` the very
element of ``rows`` and ``from random import uniform`` the method of
``random``'s own generator. A copy of any of them restores the values but
not the relation, and later cells notice (a write through the view, an
``is`` check, ``random.seed``). :class:`Locator` finds, while a def is
pickled, which objects are such relations, and gives pickle a small
description of each instead of a copy (see :class:`.pickling._Pickler`).
"""

from __future__ import annotations

import ast
import sys
import types

from .hashing_guard import own_dict

_ATOMIC = (type(None), bool, int, float, complex, str, bytes)
_BY_NAME = (type, types.FunctionType, types.BuiltinFunctionType)
#: How many objects inside unchanged refs are indexed for ``first = rows[0]``.
INDEX_BUDGET = 20_000


def _is_array(obj) -> bool:
    t = type(obj)
    return t.__module__ == "numpy" and t.__name__ == "ndarray" and not obj.dtype.hasobject


def _trimmed(where: tuple) -> tuple:
    """``where`` without its trailing defaults (no strides and copy, writeable,
    no path): the common view keeps the four items entries always had."""
    n = len(where)
    while n > 4 and _default(where[n - 1]):
        n -= 1
    return where[:n]


def _default(item) -> bool:
    return item is None or item is True or (type(item) is tuple and not item)  # never ==: a copy is an array


def _contiguous(arr) -> bool:
    return arr.flags.c_contiguous or arr.flags.f_contiguous


def _bounds(arr):
    """First and one-past-last byte an array's elements occupy."""
    lo = hi = arr.__array_interface__["data"][0]
    if arr.size == 0:
        return lo, lo
    for n, s in zip(arr.shape, arr.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + arr.itemsize


def imported_modules(source: str) -> set[str]:
    """Modules the cell imports (``import m``, ``from m import x``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


class Locator:
    """Relations for :func:`.codecs.dumps`: ``known`` maps ``id(obj)`` to
    ``(("attr", module, attribute, stand_in) | ("at", base, path), obj)``, prebuilt so
    the pickler pays one dict lookup per object; :meth:`method` and
    :meth:`view` handle the two types whose relation is found on demand.

    ``kept`` are the refs the run left unchanged (pickled as references to
    the namespace), ``values`` the defs being stored, ``modules`` the names
    of modules whose attributes may be defs (those the cell imports),
    ``keyed`` what the key covered of objects keyed by their reduce
    (:attr:`.hashing_graph.Graph.reduced`): the parts of library instances
    a relation may pass through.
    """

    def __init__(self, kept: dict, values: dict, modules=(), keyed=None):
        self.known: dict[int, tuple] = {}
        self.was: dict[int, tuple] = {}  # items of mutated refs before the run (see cache.take_before)
        self._scanned: set[str] = set()
        self._index(kept, keyed or {})  # elements first: a module's own object wins below
        for name in sorted(set(modules) | {v.__name__ for v in kept.values() if isinstance(v, types.ModuleType)}):
            self._own(name)
        # Arrays a view may be rebuilt on: the refs' objects, and new arrays
        # that own their memory (stored whole, so no two views point at each
        # other). Contiguous ones first: their layout is in the key. A strided
        # ref (``b = a[::2]``, then ``c = b[1:]``) comes last: its strides are
        # not in the key, so such a view also carries a copy to stand in.
        refs = [v for v in kept.values() if _is_array(v)]
        self._arrays = [v for v in refs if _contiguous(v)]
        self._arrays += [v for v in values.values() if _is_array(v) and v.base is None and _contiguous(v)]
        self._arrays += [v for v in refs if not _contiguous(v)]
        # Arrays inside the refs (``rows[0]``, ``box.data``): a view of one is
        # rebuilt on the hit's array at that place, reached from its ref.
        self._inside: dict[int, tuple] = {}
        for hit, obj in self.known.values():
            if type(obj).__name__ == "ndarray" and hit[0] == "at" and _is_array(obj):  # the name first: cheap
                self._inside[id(obj)] = hit[1:]
                self._arrays.append(obj)
        # A new array that is a view of a temporary (``m = np.arange(12).reshape(3, 4)``)
        # is stored whole too, and its views (``row = m[0]``) rebuilt on it,
        # where no array above holds it; the largest first, and never one on
        # a later one (``x = t[:]`` and ``y = t[:]``: y on x, not both ways).
        self._rank: dict[int, int] = {}
        for v in sorted((v for v in values.values() if _is_array(v) and v.base is not None and _contiguous(v)),
                        key=lambda v: -v.nbytes):
            if id(v) not in self._rank and self.view(v) is None:
                self._rank[id(v)] = len(self._arrays)
                self._arrays.append(v)

    def _own(self, name):
        """Index what module ``name`` holds. Its objects are taken as the
        module has them at the hit: carrying the run's content along could
        undo later changes the cell never saw."""
        if name in self._scanned:
            return
        self._scanned.add(name)
        module = sys.modules.get(name)
        if module is None or name == "__main__" or name.startswith("ipy_lazycache") or not _importable(name):
            return
        # A local module's attribute its source never binds was put there at
        # run time (``mymod.cache = data``): a new kernel lacks it, so the
        # stored reference carries a copy to stand in. Never for installed
        # modules (``os.environ`` is theirs, and a copy could leak secrets).
        runtime = _runtime_attrs(module)
        for attr, value in list(vars(module).items()):
            if type(value) in _ATOMIC or isinstance(value, types.ModuleType) or attr.startswith("__"):
                continue
            if isinstance(value, _BY_NAME) and attr not in runtime:
                continue  # pickle stores classes and functions by reference already, memoised
            self.known[id(value)] = (("attr", name, attr, attr in runtime), value)

    def method(self, obj):
        """A bound method of an object a module owns (``random.uniform``)."""
        if isinstance(obj.__self__, (type, types.ModuleType)):
            return None
        owner = getattr(obj.__func__, "__module__", None)
        if isinstance(owner, str) and owner not in self._scanned:
            self._own(owner)
            hit = self.known.get(id(obj))
            if hit is not None and hit[1] is obj:
                return hit[0]
        return None

    def view(self, obj):
        """A numpy view into one of the named arrays' memory: ``("view", base,
        (offset, shape, strides, dtype))``, then where needed the base's
        strides and a copy (a strided base), ``False`` (a read-only view) and
        the path from the ref to the base (an array inside a ref); see
        :func:`.unpickling._view`."""
        if obj.base is None or obj.dtype.hasobject:
            return None
        lo, hi = _bounds(obj)
        for base in self._arrays[:self._rank.get(id(obj))]:
            if base is obj:
                continue
            start, end = _bounds(base)
            if start <= lo and hi <= end:
                offset = obj.__array_interface__["data"][0] - base.__array_interface__["data"][0]
                strided = (base.strides, obj.copy(order="K")) if not _contiguous(base) else (None, None)
                root, path = self._inside.get(id(base), (base, ()))
                # read-only: sliding_window_view, diagonal(), flags.writeable = False
                where = (offset, obj.shape, obj.strides, obj.dtype, *strided, obj.flags.writeable, path)
                return ("view", root, _trimmed(where))
        return None

    def locate(self, obj):
        """The relation of one object, or None (for callers outside pickling)."""
        hit = self.known.get(id(obj))
        if hit is not None and hit[1] is obj:
            return hit[0]
        if isinstance(obj, types.MethodType):
            return self.method(obj)
        if _is_array(obj):
            return self.view(obj)
        return None

    def _index(self, kept, keyed):
        """Where each object inside an unchanged ref sits (shortest path),
        through lists, tuples, dicts with plain keys, notebook instances and
        the parts of library instances the key covered (``keyed``), up to
        :data:`INDEX_BUDGET` objects."""
        todo = [(kept[name], (), name) for name in sorted(kept)]
        roots = {id(v) for v in kept.values()}
        budget = INDEX_BUDGET
        while todo and budget > 0:
            layer = []
            for obj, path, root in todo:
                for step, child in _children(obj, keyed):
                    budget -= 1
                    if budget < 0:
                        break
                    if type(child) in _ATOMIC or id(child) in self.known or id(child) in roots:
                        continue
                    self.known[id(child)] = (("at", kept[root], path + (step,)), child)
                    layer.append((child, path + (step,), root))
            todo = layer


def _runtime_attrs(module) -> set:
    """Attributes of a local module that its own source does not bind."""
    from .sources import is_local_module

    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py") or not is_local_module(module):
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Global):
            bound.update(node.names)
    return set(vars(module)) - bound


def direct_items(refs: dict) -> dict:
    """``id(item) -> (name, step, item)`` for the direct items of list, dict
    and notebook-instance refs whose state :func:`.in_place.update_in_place`
    can set (up to :data:`INDEX_BUDGET` items)."""
    out, budget = {}, INDEX_BUDGET
    for name in sorted(refs):
        for step, item in _children(refs[name]):
            budget -= 1
            if budget < 0:
                return out
            if _settable(item):
                out.setdefault(id(item), (name, step, item))
    return out


def _settable(obj) -> bool:
    t = type(obj)
    if t in (list, dict) or _is_array(obj):
        return True
    if t is types.FunctionType:  # a notebook function held by a ref (a callback in a dict): its attributes
        return obj.__module__ == "__main__"
    return t.__module__ == "__main__" and isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, type)


def _children(obj, keyed=None):
    """``(step, child)`` pairs, lazily (a big list is cut by the budget).
    With ``keyed`` (see :class:`Locator`): also the items of notebook dict
    subclasses and the keyed parts of library instances (:func:`_keyed_parts`)."""
    t = type(obj)
    if t in (list, tuple):
        return ((("i", i), v) for i, v in enumerate(obj))
    if t is dict or (keyed is not None and isinstance(obj, dict) and t.__module__ == "__main__"):
        return ((("k", k), v) for k, v in dict.items(obj) if type(k) in _ATOMIC)
    if t is types.FunctionType:  # before library instances: a function's type is builtins'
        # functools.wraps gives a wrapper the wrapped function's own
        # annotations dict: shared with this ref, not a copy, after a hit
        return ((("a", "__annotations__"), obj.__annotations__),)
    if t.__module__ == "__main__" and isinstance(getattr(obj, "__dict__", None), dict) and not isinstance(obj, type):
        return ((("a", k), v) for k, v in vars(obj).items())
    if keyed is not None:
        return _keyed_parts(obj, keyed)
    return ()


def _keyed_parts(obj, keyed):
    """The items and attributes of a library instance that its key hashed by
    content: its dict items where the reduce gave them, and the attributes
    that are the very objects of the reduce's state (a ``SimpleNamespace``'s,
    a statsmodels ``Dataset``'s ``endog``). An equal key then proves the path
    leads to an equal object in another kernel. Nothing else of a library's
    internals: a logger keys as its name and handlers' kinds, and a path
    through its manager or a handler's stream need not exist elsewhere."""
    entry = keyed.get(id(obj))
    if entry is None or entry[0] is not obj:
        return ()
    _, state, items = entry
    own = own_dict(obj)
    parts = []
    if items and isinstance(obj, dict):
        parts += [(("k", k), v) for k, v in dict.items(obj) if type(k) in _ATOMIC]
    if isinstance(own, dict):
        for part in state if type(state) is tuple and len(state) == 2 else (state,):  # (dict, slots)
            if isinstance(part, dict):
                parts += [(("a", k), v) for k, v in dict.items(part)
                          if type(k) is str and dict.get(own, k, _ABSENT) is v and not _on_class(type(obj), k)]
    return parts


_ABSENT = object()


def _on_class(t, name) -> bool:
    """The class defines ``name`` (a property, a method): ``getattr`` may not read the instance's own entry."""
    return any(name in vars(c) for c in t.__mro__)


def _importable(name) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
