"""Rebinding restored functions to this kernel's namespace.

A function restored from a blob carries the globals it was pickled with;
:func:`_rebind` points it (and functions inside containers, closures and
wrappers) at the notebook's globals or its module's, as after a real run.
"""

from __future__ import annotations

import itertools
import types

from .. import codecs
from .run import _cell_full

#: How many objects the walks through restored containers visit at most.
_WALK_BUDGET = 10_000


def _inside(obj):
    """``(key, value)`` pairs of a list, dict or notebook instance (whose
    functions a restore must fix up), else None."""
    t = type(obj)
    if t is list:
        return itertools.islice(enumerate(obj), _WALK_BUDGET)  # lazily: a long list costs the budget, no more
    if t is dict:
        return itertools.islice(obj.items(), _WALK_BUDGET)
    if t.__module__ == "__main__" and not isinstance(obj, type) and isinstance(getattr(obj, "__dict__", None), dict):
        return itertools.islice(vars(obj).items(), _WALK_BUDGET)
    return None


def _rebind_inside(value, ns, done):
    """Rebind functions held in restored lists, dicts and notebook instances
    (``handlers = {"a": lambda x: x + k}``), in place, within a budget."""
    todo, seen, budget = [value], set(), _WALK_BUDGET
    while todo and budget > 0:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for key, child in list(_inside(obj) or ()):  # a list: entries may be replaced below
            budget -= 1
            if budget <= 0:
                break
            if type(child) in codecs._ATOMIC:
                continue
            if _rebindable(child):
                new = _rebind(child, ns, done)
                if new is not child:
                    if type(obj) in (list, dict):
                        obj[key] = new
                    else:
                        setattr(obj, key, new)
            elif _inside(child) is not None:
                todo.append(child)


def _rebind(value, ns, _done=None):
    """Give functions restored by value the globals of their own module.

    cloudpickle gives an unpickled function a private globals dict. A
    function the notebook defined must see later changes to notebook globals,
    as after a real run, so it gets ``ns``; one defined in a module (the
    wrapper a local decorator returns) gets that module's globals, never the
    notebook's. Closures, ``__wrapped__`` and ``lru_cache`` wrappers are
    followed, so a decorated function's inner function is rebound too.
    """
    done = {} if _done is None else _done
    if id(value) in done:
        return done[id(value)]
    if _done is None and _inside(value) is not None:
        _rebind_inside(value, ns, done)
        return value
    if isinstance(value, types.FunctionType):
        done[id(value)] = value  # cycles (a closure holding its own function) end here
        target = _globals_for(value, ns)
        fn = value
        if target is not None and target is not value.__globals__:
            fn = types.FunctionType(value.__code__, target, value.__name__, value.__defaults__, value.__closure__)
            fn.__dict__.update(value.__dict__)
            fn.__qualname__ = value.__qualname__
            fn.__kwdefaults__ = value.__kwdefaults__
            fn.__annotations__ = value.__annotations__
            fn.__doc__ = value.__doc__
            fn.__module__ = value.__module__
            done[id(value)] = fn
        for cell in value.__closure__ or ():
            if _cell_full(cell) and _rebindable(cell.cell_contents):
                cell.cell_contents = _rebind(cell.cell_contents, ns, done)
        if "__wrapped__" in vars(fn) and _rebindable(fn.__wrapped__):
            fn.__wrapped__ = _rebind(fn.__wrapped__, ns, done)
        return fn
    if codecs._is_notebook_lru(value):
        import functools

        inner = _rebind(value.__wrapped__, ns, done)
        if inner is value.__wrapped__:
            return value
        info = value.cache_parameters()
        wrapper = functools.lru_cache(maxsize=info["maxsize"], typed=info["typed"])(inner)
        vars(wrapper).update({k: v for k, v in vars(value).items() if k != "__wrapped__"})
        done[id(value)] = wrapper
        return wrapper
    if isinstance(value, type) and value.__module__ == "__main__":
        done[id(value)] = value
        for attr, member in list(vars(value).items()):
            _rebind_member(value, attr, member, ns, done)
    return value


def _rebind_member(cls, attr, member, ns, done):
    """A notebook class's functions: methods, static and class methods, a
    property's accessors and a ``cached_property``'s function."""
    import functools

    if isinstance(member, (staticmethod, classmethod)):
        if _rebindable(member.__func__) and (new := _rebind(member.__func__, ns, done)) is not member.__func__:
            setattr(cls, attr, type(member)(new))
    elif type(member) is property:
        parts = (member.fget, member.fset, member.fdel)
        new = tuple(_rebind(f, ns, done) if _rebindable(f) else f for f in parts)
        if any(a is not b for a, b in zip(new, parts)):
            setattr(cls, attr, property(*new, member.__doc__))
    elif isinstance(member, functools.cached_property):
        if _rebindable(member.func):
            member.func = _rebind(member.func, ns, done)
    elif _rebindable(member) and (new := _rebind(member, ns, done)) is not member:
        setattr(cls, attr, new)


def _rebindable(obj) -> bool:
    return isinstance(obj, types.FunctionType) or codecs._is_notebook_lru(obj)


def _globals_for(fn, ns):
    """The globals ``fn`` had in the run: the notebook's for ``__main__``
    functions, else its module's (None: leave it as unpickled)."""
    name = fn.__globals__.get("__name__")
    if name == "__main__":
        return ns
    if not isinstance(name, str) or name.startswith("ipy_lazycache"):
        return None
    import importlib
    import sys

    try:
        module = sys.modules.get(name) or importlib.import_module(name)
    except Exception:
        return None
    return vars(module)
