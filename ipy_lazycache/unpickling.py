"""Loading a pickled def: persistent references resolved, relations
rebuilt (module objects, numpy views, elements, old items given the run's
state), and the reconstructors that blobs name.

Blobs name the reconstructors here (``_module_attr``, ``_lru``) by module
and name: keep both stable (:mod:`.codecs` re-exports them for blobs written
when they lived there)."""

from __future__ import annotations

import gc
import io
import itertools
import pickle
import sys
import types

from .in_place import update_in_place


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


def _code_in(make, args, filename: str):
    """A code object stored by value, under its own file name again."""
    code = make(*args)
    return code.replace(co_filename=filename, co_consts=tuple(
        _code_in(lambda c: c, (c,), filename) if isinstance(c, types.CodeType) else c for c in code.co_consts))


#: Cell sources registered by loads (``<lazycache-cell-N>``), newest last:
#: a check that decodes only to compare (core.verify) removes its own.
registered: list = []
_cell_names = itertools.count(1)


def _code_of_cell(make, args, source: str):
    """A cell's code object stored by value, with the cell's text registered
    under a file name of its own (the run's cell name may be another cell's
    in this kernel; and no two restored functions share a file name)."""
    import linecache

    name = f"<lazycache-cell-{next(_cell_names)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    registered.append(name)
    return _code_in(make, args, name)


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


#: In-place updates of old items found while loading, made only once the whole
#: entry has loaded (``core.restored_sources._register_source``): a restore that fails half way
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


def _array(buffer, dtype, shape, order: str, writeable: bool):
    """A numpy array as the run had it: owning its memory (numpy's own
    reconstructor makes a view of the pickle's bytes, so ``a.resize``
    raised after a hit), in its memory order, read-only where it was."""
    import numpy as np

    out = np.empty(shape, dtype, order=order)
    if out.nbytes:
        out.reshape(-1, order="A").view(np.uint8)[:] = np.frombuffer(buffer, np.uint8, out.nbytes)
    if not writeable:
        out.flags.writeable = False
    return out


def _notebook_hooks(classes) -> list:
    """The notebook classes among ``classes`` with an ``__init_subclass__``
    of their own."""
    return [c for c in classes if c.__module__ == "__main__" and "__init_subclass__" in c.__dict__]


def _quiet_class(make, type_constructor, name, bases, *rest):
    """cloudpickle's class skeleton made without running the notebook's
    ``__init_subclass__`` hooks of its bases: what the run's hook did is
    stored (the class's own attributes are in its state, a registry it
    appended to is a changed ref the hit updates), and running it again
    appended the class to a registry twice. A library's hook still runs
    (what it did elsewhere is recorded nowhere)."""
    hooks = [(c, c.__dict__["__init_subclass__"]) for b in bases for c in _notebook_hooks(b.__mro__)]
    for c, _ in hooks:
        type.__setattr__(c, "__init_subclass__", classmethod(_no_hook))  # an existing key: its order stays
    try:
        return make(type_constructor, name, bases, *rest)
    finally:
        for c, hook in reversed(hooks):
            type.__setattr__(c, "__init_subclass__", hook)


def _no_hook(cls, **kwargs):
    pass


def _inherited(base, name: str):
    """What ``base`` itself holds under ``name`` (see :mod:`.pickling_classes`)."""
    return base.__dict__[name]


def _masked(make, args, state, kept, nomask):
    """A masked array pickled by :func:`.pickling._masked_reduce`."""
    obj = make(*args)
    obj.__setstate__(state)
    if nomask:
        obj._mask = sys.modules["numpy"].ma.nomask
    vars(obj).update(kept)
    return obj


def _self_dict(cls):
    """A dict subclass whose ``__dict__`` is itself; pickle then sets its items."""
    obj = dict.__new__(cls)
    obj.__dict__ = obj
    return obj


def _with_state(make, args, state):
    """An object whose own ``__setstate__`` does nothing, with the attributes the run left."""
    obj = make(*args)
    vars(obj).update(state)
    return obj


def _lru(fn, maxsize, typed, attrs):
    import functools

    wrapper = functools.lru_cache(maxsize=maxsize, typed=typed)(fn)
    vars(wrapper).update(attrs)
    return wrapper


def _cached_property(func, attrs):
    """A ``functools.cached_property`` with its attributes (name, doc, module):
    on Python 3.11 it holds a lock, which pickle refuses, so a notebook class
    using one could not be stored."""
    import functools

    prop = functools.cached_property(func)
    vars(prop).update(attrs)
    return prop


def _is_notebook_lru(obj) -> bool:
    import functools

    return (
        isinstance(obj, functools._lru_cache_wrapper)
        and isinstance(getattr(obj, "__wrapped__", None), types.FunctionType)
        and obj.__wrapped__.__globals__.get("__name__") == "__main__"
    )
