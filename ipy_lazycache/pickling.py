"""Pickling a def: cloudpickle with persistent references to other names'
objects, relations instead of copies (:class:`.relations.Locator`), set
orders kept, and the modules a load will import recorded."""

from __future__ import annotations

import copy
import functools
import itertools
import operator
import sys
import types

from .hashing_guard import guarded_reduce
from .pickling_classes import dynamic_class
from .pickling_code import code_reducer
from .pickling_library import Views, dump_keeping_views, library_reduce
from .pickling_objects import owned, reduce_array, shared_cells
from .seeded_sets import seeded
from .unpickling import _cached_property, _is_notebook_lru, _lru, _module_attr

_ATOMIC = (type(None), bool, int, float, complex, str, bytes)


class _Pickler:
    """cloudpickle's pickler, with three additions:

    - objects that are other top-level names (defs stored elsewhere, refs
      already in the namespace) become persistent references, so identities
      between names survive a restore and a ref is not copied into the blob;
    - ``locate`` (a :class:`.relations.Locator`) may name an object as a relation instead of a copy:
      ``("attr", module, attribute)`` (a module's own object),
      ``("view", array, (offset, shape, strides, dtype))`` (a numpy view into
      a named array) or ``("at", obj, path)`` (an element of a named object);
      written as persistent ids that :func:`loads` rebuilds;
    - the top-level modules of every reduced object are recorded, so a
      restore can tell, before fetching, whether the blob can load here.

    pickle calls ``persistent_id`` for every object it meets, memoised ones
    and strings included (650,000 calls for a figure with 64 subplots, most
    of the cost of a store): its common path is one type check, one set and
    one dict lookup. Only objects that may be relations (``watch``: other
    names' objects, old items, located objects) and types that need more
    (sets, bound methods, arrays, and with ``shared`` the mutable ones) take
    the full path, :func:`full`.
    """

    def __new__(cls, file, pids, root_ids, locate=None, shared=None, me=frozenset()):
        rel = _Relations(pids, root_ids, locate, shared, me)
        watch, slow_types, needs_full, full = rel.watch, {}, rel.needs_full, rel.full  # locals: the hot path

        class Pickler(_base_pickler()):
            def persistent_id(self, obj):
                t = type(obj)
                if t in _ATOMIC:
                    return None
                i = id(obj)
                slow = slow_types.get(t)  # whether a type's objects need the full path anyway
                if slow is None:
                    slow = slow_types[t] = needs_full(t)
                if slow or i in watch:
                    return full(self, obj, t, i)
                return None

        p = Pickler(file, protocol=5)
        p.used = set()
        return p


class _Relations:
    """What :class:`_Pickler`'s full path knows while one dump runs: which
    objects are other names' (``pids``), old items (``locate.was``), located
    objects (``locate.known``), and the sets and shared objects met so far."""

    def __init__(self, pids, root_ids, locate, shared, me):
        self.pids, self.root_ids, self.locate, self.shared, self.me = pids, root_ids, locate, shared, me
        self.known = locate.known if locate is not None else None
        self.was = locate.was if locate is not None else {}
        # Objects already written with their content (an old item's state, a
        # module object's stand-in): later mentions, cycles among them, are
        # plain references. Never emptied during a dump: the content is
        # written after persistent_id returns.
        self.once = set()
        self.sets: dict[int, object] = {}  # id(set) -> its pid, or None: pickled as is
        self.label = min(me) if me else None
        # ids a relation may be found for; grows with ``known`` (a bound
        # method's module is indexed when first met)
        known = self.known
        self.watch = (pids.keys() - set(root_ids)) | self.was.keys() | (known.keys() if known is not None else set())
        self.seen_known = len(known) if known is not None else 0

    def needs_full(self, t) -> bool:
        if t is set or t is frozenset:
            return True
        if self.known is not None and (t is types.MethodType or (t.__name__ == "ndarray" and t.__module__ == "numpy")):
            return True
        return self.shared is not None and (t in _CONTAINERS or _has_dict(t))

    def full(self, p, obj, t, i):
        if i not in self.root_ids:
            pid = self.pids.get(i)
            if pid is not None and pid[1] is obj:
                p.used.add(pid[0])
                return pid[0]
        if self.was:
            item = self.was.get(i)
            if item is not None and item[2] is obj:
                return self._old_item(p, obj, i, item)
        found = self._locate(obj, t, i) if self.known is not None else None
        if found is None:
            self._check_shared(obj, t, i)
            if t is set or t is frozenset:
                return self._set_order(obj, i)
            return None
        return self._relation(p, obj, i, found)

    def _old_item(self, p, obj, i, item):
        """An old item of a ref the run changed in place: the hit's own item
        at that place, given the run's state."""
        p.used.add(("ref", item[0]))
        if i in self.once:
            return ("lc-at", ("ref", item[0]), (item[1],))
        self.once.add(i)
        return ("lc-was", ("ref", item[0]), item[1], _state_of(obj))

    def _locate(self, obj, t, i):
        known = self.known
        hit = known.get(i)
        if hit is not None and hit[1] is obj:
            return hit[0]
        if t is types.MethodType:
            found = self.locate.method(obj)
            if len(known) != self.seen_known:
                self.seen_known = len(known)
                self.watch.update(known.keys())
            return found
        if t.__name__ == "ndarray" and t.__module__ == "numpy":
            return self.locate.view(obj)
        return None

    def _check_shared(self, obj, t, i):
        """Raise :class:`Shared` for a mutable object another def's pickle holds."""
        if self.shared is not None and (t in _CONTAINERS or _has_dict(t)):
            prev = self.shared.get(i)
            if prev is None:
                self.shared[i] = (self.label, obj)  # holds obj: its id stays unique while encoding
            elif prev[0] not in self.me and prev[1] is obj:
                raise Shared(prev[0])

    def _set_order(self, obj, i):
        sets = self.sets
        if i not in sets:
            sets[i] = _set_order(obj, i)
        elif sets[i] is not None:
            return ("lc-same", i)  # the same set again: one object
        return sets[i]

    def _relation(self, p, obj, i, found):
        kind, base, arg = found[:3]
        if kind == "attr":
            p.modules.add(base.split(".")[0])
            if i in self.once:
                return ("lc-attr", base, arg)
            self.once.add(i)
            return ("lc-attr", base, arg, *_stand_in(obj, found))
        pid = self.pids.get(id(base))
        if pid is None or pid[1] is not base:
            return None
        p.used.add(pid[0])
        if kind == "view":
            p.modules.add("numpy")
        return (f"lc-{kind}", pid[0], arg)


_BASE: list = []


def _base_pickler():
    """cloudpickle's Pickler recording the modules a load will import, and
    pickling notebook ``lru_cache`` functions by value (made once: cloudpickle
    is imported only when something is pickled)."""
    if _BASE:
        return _BASE[0]
    import cloudpickle

    table = dict(cloudpickle.Pickler.dispatch_table)
    table[types.CodeType] = code_reducer(table[types.CodeType])
    table[functools.cached_property] = _reduce_cached_property
    # cloudpickle's own reducer_override reduces classes and functions only
    # (versions 1 to 3): other objects need not call it.
    only_code = cloudpickle.__version__.split(".")[0] in ("1", "2", "3")

    class Pickler(cloudpickle.Pickler):
        def __init__(self, file, protocol=5):
            super().__init__(file, protocol=protocol)
            self.modules = set()
            self.types = set()  # their modules are needed: collected once per type, by :func:`_modules`
            self.unslotted = []
            self.cells = {}  # id(a closure cell) -> (the empty cell pickled for it, the cell: its id stays unique)
            self.views = Views()  # set again by :func:`_dump` for a second dump

        @property
        def dispatch_table(self):
            """cloudpickle's reducers over copyreg's as one dict, read once by
            pickle as it starts: each object's lookup is then C's, not a
            ChainMap's (a tenth of a figure's pickling)."""
            return dict(table)

        def reducer_override(self, obj):
            t = type(obj)
            if t not in self.types:
                self.types.add(t)
                if "__slotnames__" not in t.__dict__:
                    self.unslotted.append(t)  # copyreg may cache it there now: taken off after
            if t is type or t is types.FunctionType or isinstance(obj, type):
                mod = getattr(obj, "__module__", None)
                # Only a module this process has: a name no module has (a namedtuple's
                # methods say "namedtuple_K3") is pickled by value and never imported.
                if isinstance(mod, str) and mod in sys.modules:
                    self.modules.add(mod.split(".")[0])
                if t is not types.FunctionType:
                    return dynamic_class(obj, super().reducer_override(obj))
                return shared_cells(obj, super().reducer_override(obj), self.cells)
            elif t.__name__ == "_lru_cache_wrapper" and _is_notebook_lru(obj):
                return _reduce_lru(obj)
            elif (reduced := library_reduce(obj, t, self.modules, self.views)) is not None:
                return reduced  # first: a view of an array stays a view of it
            elif t.__name__ == "ndarray" and t.__module__ == "numpy" and owned(obj):
                return reduce_array(obj)
            elif hasattr(t, "__getattr__") and t.__reduce_ex__ is object.__reduce_ex__:
                return guarded_reduce(obj, self.proto)  # xarray's fills attributes when pickle asks
            elif only_code:
                return NotImplemented
            return super().reducer_override(obj)

    _BASE.append(Pickler)
    return Pickler


def _reduce_lru(obj):
    """A notebook ``lru_cache`` function by value around the wrapped function:
    pickle's default looks ``__main__.f`` up by name, which a new kernel lacks."""
    info = obj.cache_parameters()
    return _lru, (obj.__wrapped__, info["maxsize"], info["typed"], dict(vars(obj)))


def _reduce_cached_property(prop):
    """By its function and attributes, without the lock Python 3.11 gives it."""
    return _cached_property, (prop.func, {k: v for k, v in vars(prop).items() if k not in ("func", "lock")})


def _modules(p) -> set:
    """The top-level modules a load of what ``p`` pickled imports: those of
    the pickled objects' types, where a module of that name can be imported
    (Cython names its function type's module ``_cython_3_2_4``, which exists
    only in ``sys.modules`` and never needs importing)."""
    for t in p.types:
        mod = getattr(t, "__module__", None)
        if mod and isinstance(mod, str) and getattr(sys.modules.get(mod), "__spec__", None) is not None:
            p.modules.add(mod.split(".")[0])
    return {m for m in p.modules if m not in ("builtins", "__main__", "copyreg", "cloudpickle", "ipy_lazycache")}


class Shared(Exception):
    """The value holds an object another def's pickle holds (``owner``):
    the two must be pickled together to stay one object."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner


def dumps(value, pids: dict, root_ids=(), locate=None, shared=None, me=frozenset()) -> tuple[bytes, set, set, bool]:
    """Pickle ``value``; ``pids`` maps ``id(obj) -> (pid, obj)``; ``locate``
    (see :class:`_Pickler`) keeps relations to objects outside the blob.

    ``shared`` maps ``id(obj) -> (def name, obj)`` for the mutable objects
    pickled so far, across calls: an object first seen under a name outside
    ``me`` (the names being pickled) raises :class:`Shared` at once.

    Returns the bytes, the pids used, the top-level modules needed, and
    whether the pickle is exact by construction (:data:`_EXACT`).
    """
    root_ids = set(root_ids)
    if shared is None:
        done = _dumps_plain(value, pids, root_ids, locate)
        if done is not None:
            return done
    buf, p = dump_keeping_views(value, lambda buf: _Pickler(buf, pids, root_ids, locate, shared, frozenset(me)))
    return buf.getvalue(), p.used, _modules(p), False


def _stand_in(obj, found) -> tuple:
    """``(copy,)`` of data a cell put on a local module (``mymod.cache =
    data``, ``found[3]``): a new kernel's module lacks it, and the copy
    stands in (:func:`_module_attr`); ``()`` for code, and for an object
    that does not copy."""
    if not found[3] or isinstance(obj, _CODE) or callable(obj):
        return ()
    try:
        return (copy.copy(obj),)
    except Exception:  # noqa: BLE001 - an object that does not copy: no stand-in
        return ()


_SETS = frozenset({set, frozenset})

#: Builtin types whose pickle is their value. A plain pickle (no relation, every set in its order) whose memo holds
#: only these (numbers and None are not memoised; a bytearray or complex would put its class there) loads back equal,
#: of the same types, sharing the same objects: the store's round trip need not decode it.
_EXACT = frozenset({dict, list, tuple, set, frozenset, str, bytes})


class _NotPlain(Exception):
    """An object a persistent id would stand for: pickle with them."""


def _dumps_plain(value, pids, root_ids, locate):
    """Pickle ``value`` without ``persistent_id`` (pickle calls it for every
    object, a string or a memoised object again included: 650,000 calls for
    a figure with 64 subplots, two thirds of the time), then check that it
    would have returned None for every object, as it does for most big
    values; None where it might not have (the caller pickles again, with it).

    Why the check is complete: pickle memoises every object it pickles
    except None, booleans, numbers and the empty tuple (none of which
    ``persistent_id`` names), and holds each in its memo until the end, so
    the memo's ids are the objects' own. An object that may be a relation
    (``watch``) is refused when the reducer meets it, or found in the memo
    after (builtin containers never reach the reducer); bound methods and
    arrays, which ``locate`` judges by type, reach the reducer; sets are
    judged by :func:`_set_order`, from the memo.

    A module's own object (``("attr", ...)`` from ``locate``), the one
    relation figures hold (``matplotlib.markers._empty_path``), needs no
    persistent id: it is reduced to a call of :func:`_module_attr`, which
    is what loading its persistent id does."""
    watch = _plain_watch(pids, root_ids, locate)
    if id(()) in watch:
        return None
    as_attr = set()  # ids written as module attributes
    pickler = _plain_pickler(pids, root_ids, locate, watch, as_attr)

    kinds = []

    def check(p):
        kinds[:] = [_memo_types(p, watch, as_attr)]
        if kinds[0] is None:
            raise _NotPlain

    try:
        buf, p = dump_keeping_views(value, pickler, check)
    except Exception:  # noqa: BLE001 - _NotPlain, or what a persistent id would have avoided: the full pickle says
        return None
    return buf.getvalue(), set(), _modules(p), kinds[0] <= _EXACT


def _plain_watch(pids, root_ids, locate) -> dict:
    """id -> object: what the full pickler's ``watch`` holds."""
    known = locate.known if locate is not None else None
    was = locate.was if locate is not None else {}
    watch = {}
    if known:
        watch.update((i, hit[1]) for i, hit in known.items())
    watch.update((i, item[2]) for i, item in was.items())
    watch.update((i, pid[1]) for i, pid in pids.items() if i not in root_ids)
    return watch


def _plain_pickler(pids, root_ids, locate, watch, as_attr):
    """The pickler class of :func:`_dumps_plain`: it refuses (``_NotPlain``)
    what a persistent id would name, and reduces a module's own object to
    :func:`_module_attr` (as the full pickler's ``lc-attr``)."""
    known = locate.known if locate is not None else None
    was = locate.was if locate is not None else {}
    seen_known = [len(known) if known is not None else 0]

    def attr(obj, found):
        kind, module, name = found[:3]
        if kind != "attr":
            raise _NotPlain
        as_attr.add(id(obj))
        return _module_attr, (module, name, *_stand_in(obj, found)), module.split(".")[0]

    class Pickler(_base_pickler()):
        def reducer_override(self, obj):
            i = id(obj)
            found = None
            if i in watch and watch[i] is obj:
                pid = pids.get(i)
                item = was.get(i)
                hit = known.get(i) if known is not None else None
                if (i not in root_ids and pid is not None and pid[1] is obj) or (item is not None and item[2] is obj):
                    raise _NotPlain
                if hit is not None and hit[1] is obj:
                    found = hit[0]
            if found is None and known is not None:
                t = type(obj)
                if t is types.MethodType:
                    found = locate.method(obj)
                    if len(known) != seen_known[0]:  # a module newly indexed: its objects too
                        seen_known[0] = len(known)
                        watch.update((j, hit[1]) for j, hit in known.items())
                elif t.__name__ == "ndarray" and t.__module__ == "numpy" and locate.view(obj) is not None:
                    raise _NotPlain
            if found is not None:
                fn, args, top = attr(obj, found)
                self.modules.add(top)
                return fn, args
            return super().reducer_override(obj)

    return Pickler


def _memo_types(p, watch, as_attr) -> set | None:
    """The types of the objects pickled (the pickler's memo), or None where
    one is an object a persistent id names, or a set that would not keep
    its order."""
    memo = p.memo.copy()  # id -> (index, object); C loops below, not Python ones
    for i in (watch.keys() & memo.keys()) - as_attr:
        if memo[i][1] is watch[i]:
            return None
    objs = list(map(operator.itemgetter(1), memo.values()))
    del memo
    kinds = list(map(type, objs))
    for obj in itertools.compress(objs, map(_SETS.__contains__, kinds)):
        if _set_order(obj, id(obj)) is not None:
            return None
    return set(kinds)


#: Mutable objects without a ``__dict__`` that two defs may share (a closure
#: cell: ``inc, get = counter()`` share the counter's cell).
_CONTAINERS = frozenset({list, dict, set, bytearray, types.CellType})


_CODE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)


_HAS_DICT: dict[type, bool] = {}


def _has_dict(t) -> bool:
    """Whether instances of ``t`` are objects with their own state (that
    another def may share), cached per type."""
    known = _HAS_DICT.get(t)
    if known is None:
        known = _HAS_DICT[t] = bool(getattr(t, "__dictoffset__", 0)) and not issubclass(t, _CODE)
    return known


def _set_order(obj, token):
    """A set whose iteration order pickle would not keep (pickle adds the
    items in iteration order, which reorders colliding hashes: ``{3, 11}``
    comes back as ``{11, 3}``), as ``("lc-set", token, items, frozen)`` with
    the items in an order that rebuilds it; None where pickle keeps it.
    Raises ValueError where no order is found."""
    items = list(obj)
    if len(items) < 2 or seeded(obj) or _same_order(type(obj)(items), items):
        return None
    backwards = items[::-1]
    if _same_order(type(obj)(backwards), items):
        return ("lc-set", token, backwards, type(obj) is frozenset)
    if len(items) <= 7:  # colliding hashes probe in insertion order: search it (at most 5040 tries)
        for order in itertools.permutations(items):
            if _same_order(type(obj)(order), items):
                return ("lc-set", token, list(order), type(obj) is frozenset)
    # No order found: a hit would give another iteration order than the run
    # (observable), so the value is not stored at all (a stand-in, or in auto
    # mode the cell simply runs).
    raise ValueError(f"a {type(obj).__name__} whose iteration order cannot be rebuilt")


def _same_order(built, items) -> bool:
    return all(a is b for a, b in zip(built, items))


def _state_of(obj):
    """What the run left in an item, to set on the hit's item in place."""
    t = type(obj)
    if t is list:
        return list(obj)
    if t is dict:
        return dict(obj)
    if t.__module__ == "numpy" and t.__name__ == "ndarray":
        return obj.copy()
    return t, dict(vars(obj))
