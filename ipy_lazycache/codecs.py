"""Values to bytes and back.

Codecs are chosen by the value's type *name*, so choosing one never imports
numpy or pandas for a value that does not use them. Everything without a
special codec goes through pickle protocol 5 (cloudpickle, so functions and
classes defined in the notebook are stored by value).
"""

from __future__ import annotations

import collections
import copy
import gc
import io
import itertools
import mmap
import operator
import pickle
import sys
import types


def _type_path(value) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


class Codec:
    """One way of storing a top-level def. ``modules`` must import to decode."""

    name = ""
    ext = ""
    modules: tuple[str, ...] = ()
    #: Whether ``decode`` may be given a local file path to memory-map.
    mmap = False

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def encode(self, value) -> list:
        """Bytes-like chunks; the store writes them without joining."""
        raise NotImplementedError

    def decode(self, data, mapped=None):
        """From ``data`` (bytes), or from ``mapped``: a copy-on-write
        ``mmap`` of the very file the cache checked (or, for tests, a path)."""
        raise NotImplementedError


def as_mapping(mapped):
    """``mapped`` as a copy-on-write mmap; a path is opened and mapped here."""
    if mapped is None or isinstance(mapped, mmap.mmap):
        return mapped
    with open(mapped, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)


class NumpyCodec(Codec):
    """``.npy``; from a local file it is memory-mapped copy-on-write, so a
    restore is O(1) in size and the user can still write to the array."""

    name, ext, modules = "npy", "npy", ("numpy",)
    mmap = True

    def accepts(self, value):
        return _type_path(value) == "numpy.ndarray" and not value.dtype.hasobject

    def encode(self, value):
        import numpy as np

        fmt = np.lib.format
        meta = fmt.header_data_from_array_1_0(value)
        header = io.BytesIO()
        try:
            fmt.write_array_header_1_0(header, meta)
        except ValueError:  # very large structured dtypes need format 2.0
            header = io.BytesIO()
            fmt.write_array_header_2_0(header, meta)
        if value.flags.c_contiguous or value.flags.f_contiguous:
            body = value.reshape(-1, order="A").view(np.uint8) if value.size else b""
        else:
            body = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        return [header.getvalue(), body]

    def decode(self, data, mapped=None):
        import numpy as np

        mapped = as_mapping(mapped)
        if mapped is None:
            return np.load(io.BytesIO(data), allow_pickle=False)
        # The array is a view of the mapping the cache checked (the mmap
        # stays alive as its base): a plain ndarray, as the cell made it,
        # writable, its writes private (ACCESS_COPY), pages read on touch.
        shape, fortran, dtype, offset = _npy_header(mapped)
        if dtype.hasobject:
            raise ValueError("object arrays are not stored as .npy")
        return np.ndarray(shape, dtype, buffer=mapped, offset=offset, order="F" if fortran else "C")


#: Parsed ``.npy`` headers by their bytes: numpy parses one with
#: ``ast.literal_eval`` (a compile), the largest cost of a warm array hit.
_HEADERS: dict = {}


def _npy_header(mapped):
    """``(shape, fortran, dtype, data offset)`` of a mapped ``.npy`` file."""
    import numpy as np

    # magic (6 bytes), version (2), header length (2 bytes in 1.0, 4 after), header
    width = 2 if mapped[6:7] == b"\x01" else 4
    end = 8 + width + int.from_bytes(mapped[8:8 + width], "little")
    prefix = bytes(mapped[:end]) if end <= 65536 else None
    known = _HEADERS.get(prefix)
    if known is not None:
        return known
    fmt = np.lib.format
    mapped.seek(0)
    version = fmt.read_magic(mapped)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(mapped)
    parsed = (shape, fortran, dtype, mapped.tell())
    if prefix is not None and parsed[3] == end:  # numpy read just these bytes: they are the key
        if len(_HEADERS) >= 256:
            _HEADERS.clear()
        _HEADERS[prefix] = parsed
    return parsed


#: Codecs tried in order for each top-level def; pickle is the fallback.
CODECS: list[Codec] = [NumpyCodec()]


def register(codec: Codec, first=True):
    """Add a codec (e.g. Arrow for data frames) ahead of the built-ins."""
    CODECS.insert(0 if first else len(CODECS), codec)


def codec_for(value) -> Codec | None:
    for codec in CODECS:
        try:
            if codec.accepts(value):
                return codec
        except Exception:
            continue
    return None


def codec_named(name: str) -> Codec | None:
    return next((c for c in CODECS if c.name == name), None)


# ----------------------------------------------------------------------------
# Pickle with persistent references


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
        known = locate.known if locate is not None else None
        was = locate.was if locate is not None else {}
        # Objects already written with their content (an old item's state, a
        # module object's stand-in): later mentions, cycles among them, are
        # plain references. Never emptied during a dump: the content is
        # written after persistent_id returns.
        once = set()
        sets: dict[int, object] = {}  # id(set) -> its pid, or None: pickled as is

        def set_order(obj, i):
            if i not in sets:
                sets[i] = _set_order(obj, i)
            elif sets[i] is not None:
                return ("lc-same", i)  # the same set again: one object
            return sets[i]
        label = min(me) if me else None
        # ids a relation may be found for; grows with ``known`` (a bound
        # method's module is indexed when first met)
        watch = (pids.keys() - set(root_ids)) | was.keys() | (known.keys() if known is not None else set())
        seen_known = [len(known) if known is not None else 0]
        slow_types: dict[type, bool] = {}  # whether a type's objects need the full path anyway

        def needs_full(t) -> bool:
            if t is set or t is frozenset:
                return True
            if known is not None and (t is types.MethodType or (t.__name__ == "ndarray" and t.__module__ == "numpy")):
                return True
            return shared is not None and (t in _CONTAINERS or _has_dict(t))

        def full(self, obj, t, i):
            if i not in root_ids:
                pid = pids.get(i)
                if pid is not None and pid[1] is obj:
                    self.used.add(pid[0])
                    return pid[0]
            found = None
            if was:
                item = was.get(i)
                if item is not None and item[2] is obj:
                    # an old item of a ref the run changed in place: the
                    # hit's own item at that place, given the run's state
                    self.used.add(("ref", item[0]))
                    if i in once:
                        return ("lc-at", ("ref", item[0]), (item[1],))
                    once.add(i)
                    return ("lc-was", ("ref", item[0]), item[1], _state_of(obj))
            if known is not None:
                hit = known.get(i)
                if hit is not None and hit[1] is obj:
                    found = hit[0]
                elif t is types.MethodType:
                    found = locate.method(obj)
                    if len(known) != seen_known[0]:
                        seen_known[0] = len(known)
                        watch.update(known.keys())
                elif t.__name__ == "ndarray" and t.__module__ == "numpy":
                    found = locate.view(obj)
            if found is None:
                if shared is not None and (t in _CONTAINERS or _has_dict(t)):
                    prev = shared.get(i)
                    if prev is None:
                        shared[i] = (label, obj)  # holds obj: its id stays unique while encoding
                    elif prev[0] not in me and prev[1] is obj:
                        raise Shared(prev[0])
                if t is set or t is frozenset:
                    return set_order(obj, i)
                return None
            kind, base, arg = found[:3]
            if kind == "attr":
                self.modules.add(base.split(".")[0])
                if i in once:
                    return ("lc-attr", base, arg)
                once.add(i)
                return ("lc-attr", base, arg, *_stand_in(obj, found))
            pid = pids.get(id(base))
            if pid is None or pid[1] is not base:
                return None
            self.used.add(pid[0])
            if kind == "view":
                self.modules.add("numpy")
            return (f"lc-{kind}", pid[0], arg)

        class Pickler(_base_pickler()):
            def persistent_id(self, obj):
                t = type(obj)
                if t in _ATOMIC:
                    return None
                i = id(obj)
                slow = slow_types.get(t)
                if slow is None:
                    slow = slow_types[t] = needs_full(t)
                if slow or i in watch:
                    return full(self, obj, t, i)
                return None

        p = Pickler(file, protocol=5)
        p.used = set()
        return p


_BASE: list = []


def _base_pickler():
    """cloudpickle's Pickler recording the modules a load will import, and
    pickling notebook ``lru_cache`` functions by value (made once: cloudpickle
    is imported only when something is pickled)."""
    if _BASE:
        return _BASE[0]
    import cloudpickle

    table = cloudpickle.Pickler.dispatch_table
    # cloudpickle's own reducer_override reduces classes and functions only
    # (versions 1 to 3): other objects need not call it.
    only_code = cloudpickle.__version__.split(".")[0] in ("1", "2", "3")

    class Pickler(cloudpickle.Pickler):
        def __init__(self, file, protocol=5):
            super().__init__(file, protocol=protocol)
            self.modules = set()
            self.types = set()  # their modules are needed: collected once per type, by :func:`_modules`

        @property
        def dispatch_table(self):
            """cloudpickle's reducers over copyreg's as one dict, read once by
            pickle as it starts: each object's lookup is then C's, not a
            ChainMap's (a tenth of a figure's pickling)."""
            return dict(table)

        def reducer_override(self, obj):
            t = type(obj)
            self.types.add(t)
            if t is type or t is types.FunctionType or isinstance(obj, type):
                mod = getattr(obj, "__module__", None)
                # Only a module this process has: a name no module has (a namedtuple's
                # methods say "namedtuple_K3") is pickled by value and never imported.
                if isinstance(mod, str) and mod in sys.modules:
                    self.modules.add(mod.split(".")[0])
                if t is not types.FunctionType:
                    return _dynamic_class(obj, super().reducer_override(obj))
            elif t.__name__ == "_lru_cache_wrapper" and _is_notebook_lru(obj):
                # by value around the wrapped function; pickle's default
                # looks ``__main__.f`` up by name, which a new kernel lacks
                info = obj.cache_parameters()
                return _lru, (obj.__wrapped__, info["maxsize"], info["typed"], dict(vars(obj)))
            elif only_code:
                return NotImplemented
            return super().reducer_override(obj)

    _BASE.append(Pickler)
    return Pickler


def _dynamic_class(cls, rv):
    """cloudpickle's reduction of a notebook class, made to rebuild the class
    as the run had it: with its ``__slots__`` (cloudpickle sets them only
    after making the class, which then had no slot descriptors and gave
    instances a ``__dict__``), and its attributes in their order (cloudpickle
    sorts them; ``vars(Config)`` of a class of constants lists them in order)."""
    if not (isinstance(rv, tuple) and getattr(rv[0], "__name__", "") == "_make_skeleton_class"):
        return rv
    type_kwargs, state = rv[1][3], rv[2]
    if "__slots__" in cls.__dict__ and isinstance(type_kwargs, dict):
        type_kwargs["__slots__"] = cls.__dict__["__slots__"]
    if isinstance(state, tuple) and isinstance(state[0], dict):
        attrs = state[0]
        order = {k: i for i, k in enumerate(cls.__dict__)}
        ordered = dict(sorted(attrs.items(), key=lambda kv: order.get(kv[0], len(order))))
        rv = (rv[0], rv[1], (ordered, *state[1:]), *rv[3:])
    return rv


def _modules(p) -> set:
    """The top-level modules a load of what ``p`` pickled imports."""
    for t in p.types:
        mod = getattr(t, "__module__", None)
        if mod and isinstance(mod, str):
            p.modules.add(mod.split(".")[0])
    return {m for m in p.modules if m not in ("builtins", "__main__", "copyreg", "cloudpickle", "ipy_lazycache")}


class paused_gc:  # noqa: N801 - used as a context manager, like contextlib's
    """No cyclic garbage collection inside: pickling or unpickling a large
    graph allocates all the way through, and each collection it triggers
    walks every object of the process (the figure's, the pickler's memo's)
    without freeing any (all are still reachable): 60% of the time of a
    figure's pickle. Collection resumes after, unless it was off before."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


class Shared(Exception):
    """The value holds an object another def's pickle holds (``owner``):
    the two must be pickled together to stay one object."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner


def dumps(value, pids: dict, root_ids=(), locate=None, shared=None, me=frozenset()) -> tuple[bytes, set, set]:
    """Pickle ``value``; ``pids`` maps ``id(obj) -> (pid, obj)``; ``locate``
    (see :class:`_Pickler`) keeps relations to objects outside the blob.

    ``shared`` maps ``id(obj) -> (def name, obj)`` for the mutable objects
    pickled so far, across calls: an object first seen under a name outside
    ``me`` (the names being pickled) raises :class:`Shared` at once.

    Returns the bytes, the pids used and the top-level modules needed.
    """
    root_ids = set(root_ids)
    if shared is None:
        done = _dumps_plain(value, pids, root_ids, locate)
        if done is not None:
            return done
    buf = io.BytesIO()
    p = _Pickler(buf, pids, root_ids, locate, shared, frozenset(me))
    with paused_gc():
        p.dump(value)
    return buf.getvalue(), p.used, _modules(p)


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
    known = locate.known if locate is not None else None
    was = locate.was if locate is not None else {}
    watch = {}  # id -> object: what the full pickler's ``watch`` holds
    if known:
        watch.update((i, hit[1]) for i, hit in known.items())
    watch.update((i, item[2]) for i, item in was.items())
    watch.update((i, pid[1]) for i, pid in pids.items() if i not in root_ids)
    if id(()) in watch:
        return None
    seen_known = [len(known) if known is not None else 0]
    as_attr = set()  # ids written as module attributes

    def attr(obj, found):
        """The reduction of a module's object, as the full pickler's ``lc-attr``."""
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

    buf = io.BytesIO()
    p = Pickler(buf)
    try:
        with paused_gc():
            p.dump(value)
            memo = p.memo.copy()  # id -> (index, object); C loops below, not Python ones
            for i in (watch.keys() & memo.keys()) - as_attr:
                if memo[i][1] is watch[i]:
                    return None
            objs = list(map(operator.itemgetter(1), memo.values()))
            del memo
            for obj in itertools.compress(objs, map(_SETS.__contains__, map(type, objs))):
                if _set_order(obj, id(obj)) is not None:
                    return None
    except Exception:  # noqa: BLE001 - _NotPlain, or what a persistent id would have avoided: the full pickle says
        return None
    return buf.getvalue(), set(), _modules(p)


_CONTAINERS = frozenset({list, dict, set, bytearray})
_CODE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)
_HAS_DICT: dict[type, bool] = {}


def _has_dict(t) -> bool:
    """Whether instances of ``t`` are objects with their own state (that
    another def may share), cached per type."""
    known = _HAS_DICT.get(t)
    if known is None:
        known = _HAS_DICT[t] = bool(getattr(t, "__dictoffset__", 0)) and not issubclass(t, _CODE)
    return known


def loads(data, resolve):
    """Unpickle, resolving persistent references with ``resolve(pid)``
    (relations written by ``locate`` are rebuilt on top of it)."""

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            kind = pid[0]
            if kind == "lc-attr":
                attrs = self.__dict__.setdefault("attrs", {})
                if pid[1:3] not in attrs:  # one import per module object, not per mention
                    attrs[pid[1:3]] = _module_attr(*pid[1:])
                return attrs[pid[1:3]]
            if kind == "lc-view":
                return _view(resolve(tuple(pid[1])), *pid[2])
            if kind == "lc-at":
                return _at(resolve(tuple(pid[1])), pid[2])
            if kind == "lc-was":
                return _was(resolve(tuple(pid[1])), pid[2], pid[3], resolve)
            if kind == "lc-set":
                made = self.__dict__.setdefault("sets", {})
                made[pid[1]] = (frozenset if pid[3] else set)(pid[2])
                return made[pid[1]]
            if kind == "lc-same":
                return self.sets[pid[1]]
            return resolve(tuple(pid))

    with paused_gc():
        return Unpickler(io.BytesIO(data)).load()


def _set_order(obj, token):
    """A set whose iteration order pickle would not keep (pickle adds the
    items in iteration order, which reorders colliding hashes: ``{3, 11}``
    comes back as ``{11, 3}``), as ``("lc-set", token, items, frozen)`` with
    the items in an order that rebuilds it; None where pickle keeps it.
    Raises ValueError where no order is found."""
    items = list(obj)
    if len(items) < 2 or _same_order(type(obj)(items), items):
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


# Reconstructors: blobs name them; keep their names and arguments stable.


def _module_attr(module: str, attr: str, *fallback):
    """An object a module owns, taken from the module, never a copy; the
    stored copy only where the module no longer has it."""
    import importlib

    try:
        return getattr(sys.modules.get(module) or importlib.import_module(module), attr)
    except AttributeError:
        if fallback:
            return fallback[0]
        raise


def _view(base, offset: int, shape, strides, dtype, base_strides=None, stand_in=None, writeable=True, path=()):
    """A numpy view into ``base``'s memory (or that of the array at ``path``
    inside it), as the run made it (read-only where the run's was: ``writeable``).

    ``offset`` is from ``base``'s first element. The key holds the base's
    content, shape and C or Fortran order, not its strides: a base that was
    contiguous may come back strided (the values are the run's: a view of a
    contiguous copy), and a strided base (``base_strides``) is used only with
    the run's strides, else the stored copy ``stand_in`` takes its place."""
    import numpy as np

    if path:
        base = _at(base, path)
    if base_strides is None:
        try:
            view = np.ndarray(shape, dtype=dtype, buffer=base, offset=offset, strides=strides)
        except (TypeError, ValueError):
            view = np.ndarray(shape, dtype=dtype, buffer=np.ascontiguousarray(base), offset=offset, strides=strides)
    else:
        view = _strided_view(np, base, offset, shape, strides, dtype, base_strides)
        if view is None:
            view = stand_in
    if not writeable:
        view.flags.writeable = False
    return view


def _strided_view(np, base, offset, shape, strides, dtype, base_strides):
    """A view into the memory a strided ``base`` is itself a view of (it has
    no buffer of its own; numpy checks the bounds against that memory), or
    None where ``base`` is not laid out as in the run."""
    if base.strides != tuple(base_strides):
        return None
    root = base
    while isinstance(root.base, np.ndarray):
        root = root.base
    at = base.__array_interface__["data"][0] - root.__array_interface__["data"][0] + offset
    try:
        return np.ndarray(shape, dtype=dtype, buffer=root, offset=at, strides=strides)
    except (TypeError, ValueError):
        return None


def _at(root, path):
    """The element of ``root`` at ``path`` (("i", index) / ("k", key) / ("a", attribute))."""
    for kind, step in path:
        root = getattr(root, step) if kind == "a" else root[step]
    return root


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


#: In-place updates of old items found while loading, made only once the whole
#: entry has loaded (``cache._register_source``): a restore that fails half way
#: must leave the namespace as it was, since the cell then runs on it.
#: ``(resolve, item, state)``; ``resolve`` tells which restore found it.
_pending: list = []


def _was(root, step, state, resolve=None):
    """The item at ``step`` of ``root`` (as the hit has it, before the entry is
    applied), to be given the state the run left it in; a copy of that state
    where the item could not take it in place (the value is right, only not
    shared)."""
    try:
        item = _at(root, (step,))
    except (LookupError, AttributeError):
        item = None
    if isinstance(state, tuple):  # a notebook instance: (class, attributes)
        cls, attrs = state
        if type(item) is not cls or not isinstance(getattr(item, "__dict__", None), dict):
            item = object.__new__(cls)
            vars(item).update(attrs)
            return item
    elif not _takes(item, state):
        return state
    _pending.append((resolve, item, state))
    return item


def _takes(item, state) -> bool:
    """Whether :func:`update_in_place` will give ``item`` the content ``state``."""
    t = type(item)
    if t is not type(state):
        return False
    if t in (list, dict):
        return True
    return t.__module__ == "numpy" and item.shape == state.shape and item.dtype == state.dtype and item.flags.writeable


def set_state(item, state):
    """Give an old item the state the run left it in (see :func:`_was`)."""
    if isinstance(state, tuple):
        vars(item).clear()
        vars(item).update(state[1])
    else:
        update_in_place(item, state)


def _lru(fn, maxsize, typed, attrs):
    import functools

    wrapper = functools.lru_cache(maxsize=maxsize, typed=typed)(fn)
    vars(wrapper).update(attrs)
    return wrapper


def _is_notebook_lru(obj) -> bool:
    import functools

    return (
        isinstance(obj, functools._lru_cache_wrapper)
        and isinstance(getattr(obj, "__wrapped__", None), types.FunctionType)
        and obj.__wrapped__.__globals__.get("__name__") == "__main__"
    )


_CLASS_FIXED = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__slotnames__"})


def update_in_place(target, value) -> bool:
    """Give ``target`` the content of ``value`` without replacing the object,
    so every other name bound to it sees the change (as after a run).
    False where the type does not allow it (:func:`can_update_in_place`)."""
    if target is value:  # already the run's object (an old item given its state): clearing it would empty both
        return True
    if not can_update_in_place(target, value):
        return False
    try:
        if isinstance(target, (list, bytearray)):
            target[:] = value
        elif isinstance(target, (dict, set)):
            target.clear()
            target.update(value)
        elif type(target).__module__ == "numpy" and type(target).__name__ == "ndarray":
            if target.shape != value.shape:
                _reshape_in_place(target, value.shape)
            target[...] = value
        elif type(target).__module__.startswith("pandas") and type(target).__name__ in ("DataFrame", "Series"):
            # what ``inplace=True`` does inside pandas: take over the result's data
            target._update_inplace(value.copy())
            target.attrs = dict(value.attrs)
        elif isinstance(target, types.FunctionType):  # same code (it is keyed); attributes and defaults may differ
            target.__dict__.clear()
            target.__dict__.update(value.__dict__)
            target.__defaults__, target.__kwdefaults__ = value.__defaults__, value.__kwdefaults__
            _set_closure(target, value)
        elif isinstance(target, type):
            if target is not value:
                for attr, member in vars(value).items():
                    # a slot's descriptor belongs to the class that made it
                    if attr not in _CLASS_FIXED and not isinstance(member, (types.FunctionType, *_SLOT_DESCRIPTORS)):
                        setattr(target, attr, member)
        elif _is_generator_state(target):
            _set_generator_state(target, value)
        elif isinstance(target, collections.deque):
            target.clear()
            target.extend(value)
        elif type(target).__module__ == "__main__":
            for name in _slot_names(type(target)):
                if hasattr(value, name):
                    setattr(target, name, getattr(value, name))
                elif hasattr(target, name):
                    delattr(target, name)
            if hasattr(target, "__dict__"):
                target.__dict__.clear()
                target.__dict__.update(value.__dict__)
        else:
            return False
    except Exception:
        return False
    return True


_SLOT_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _is_generator_state(obj) -> bool:
    """A random generator whose whole state can be set: ``random.Random``,
    numpy's ``Generator`` and legacy ``RandomState`` (``rng = default_rng(0)``
    held by other names too: they must draw what they would after the run)."""
    import random

    t = type(obj)
    return isinstance(obj, random.Random) or (t.__module__.startswith("numpy.random")
                                              and t.__name__ in ("Generator", "RandomState"))


def _set_generator_state(target, value):
    if type(target).__name__ == "Generator":
        target.bit_generator.state = value.bit_generator.state
    elif type(target).__name__ == "RandomState":
        target.set_state(value.get_state())
    else:
        target.setstate(value.getstate())


def _slot_names(t) -> list:
    names = []
    for klass in t.__mro__:
        slots = vars(klass).get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


def _set_closure(target, value):
    """Give a function's closure cells the run's contents (``nonlocal n; n += 1``
    in a counter the cell called). The cells stay the same objects: other
    functions made in the same call share them, as after the run."""
    for mine, theirs in zip(target.__closure__ or (), value.__closure__ or ()):
        try:
            mine.cell_contents = theirs.cell_contents
        except ValueError:  # an empty cell in the run's function
            del mine.cell_contents


def can_update_in_place(target, value) -> bool:
    """Whether :func:`update_in_place` takes ``value`` into ``target``, told
    before anything changes: a restore points other defs at ``target`` itself
    (``d = {"k": a}; a += 1``) only where ``target`` will get the run's content."""
    t = type(target)
    if t is not type(value):
        return False
    if isinstance(target, (list, bytearray, dict, set)):
        return True
    if t.__module__ == "numpy" and t.__name__ == "ndarray":
        if target.size != value.size or target.dtype != value.dtype or not target.flags.writeable:
            return False
        if target.shape != value.shape:
            try:
                _reshape_in_place(target.view(), value.shape)  # a view: target keeps its shape for now
            except AttributeError:
                return False
        return True
    if t.__module__.startswith("pandas") and t.__name__ in ("DataFrame", "Series"):
        return True
    if isinstance(target, (types.FunctionType, type)):
        return True
    if _is_generator_state(target):
        return type(getattr(target, "bit_generator", None)) is type(getattr(value, "bit_generator", None))
    if isinstance(target, collections.deque):
        return target.maxlen == value.maxlen
    return t.__module__ == "__main__" and (hasattr(target, "__dict__") or bool(_slot_names(t)))


def _reshape_in_place(arr, shape):
    """What ``arr.shape = shape`` did in the run: the same object, so views
    of it stay views (AttributeError where numpy would need a copy)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        arr.shape = shape


def missing_modules(modules) -> list[str]:
    """Modules a blob needs that cannot be imported here (e.g. in a browser)."""
    import importlib.util

    out = []
    for name in modules:
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return sorted(out)


# Arrow IPC for pandas/pyarrow/polars frames (imports none of them until a
# value is one of theirs).
from . import codecs_arrow  # noqa: E402,F401  (registers itself)
