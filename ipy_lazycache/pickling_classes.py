"""A notebook class as a pickle rebuilds it: cloudpickle's reduction made to
give back the class the run made (:func:`dynamic_class`), its slots, its
attributes and the order of its ``__dict__`` (``vars(C)`` lists it; so does
anything that walks a class's attributes in order)."""

from __future__ import annotations

import sys

from .unpickling import _inherited, _notebook_hooks, _quiet_class

#: Entries type() or ABCMeta make themselves, after the class body's: left to them.
_MADE_AFTER = frozenset({"__abstractmethods__", "_abc_impl"})


def dynamic_class(cls, rv):
    """cloudpickle's reduction of a notebook class, made to rebuild the class
    as the run had it: with its ``__slots__`` (cloudpickle sets them only
    after making the class, which then had no slot descriptors and gave
    instances a ``__dict__``), and its attributes in their order (cloudpickle
    sorts them, and makes the class from its module name alone, so type()
    put ``__doc__`` and the descriptors before every method)."""
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
        if isinstance(type_kwargs, dict) and _only_type_sees_the_body(cls):
            type_kwargs = _body_in_order(cls, type_kwargs, attrs)
            rv = (rv[0], (*rv[1][:3], type_kwargs, *rv[1][4:]), *rv[2:])
    if _notebook_hooks(cls.__mro__[1:]):
        rv = (_quiet_class, (rv[0], *rv[1]), *rv[2:])
    return rv


def _body_in_order(cls, type_kwargs: dict, attrs: dict) -> dict:
    """The namespace the skeleton is made from: the run's class body in its
    order, up to the first entry type() made itself (a slot's or
    ``__dict__``'s descriptor), each attribute the state sets afterwards
    held in its place (:func:`_place_holder`; setting a key a dict has keeps
    its place); ``__module__``, ``__slots__`` and a docstring as they are. What
    type() adds after the body (descriptors, a ``__doc__`` of None, the
    ``__hash__`` an ``__eq__`` implies) it then adds where it did in the run."""
    slots = cls.__dict__.get("__slots__", ())
    made = {"__dict__", "__weakref__"} | ({slots} if isinstance(slots, str) else set(slots))
    body = {}
    for k, v in cls.__dict__.items():
        if k in made:
            break
        if k in type_kwargs:
            body[k] = type_kwargs[k]
        elif k == "__doc__" and isinstance(v, (str, type(None))) or k == "__hash__" and v is None:
            body[k] = v
        elif k in attrs and k not in _MADE_AFTER and (held := _place_holder(cls, k)) is not _NONE:
            body[k] = held
    body.update((k, v) for k, v in type_kwargs.items() if k not in body)
    return body


_NONE = object()


#: Methods unpickling asks an instance for: what the class holds is loaded
#: before its state is set, and a ``__setstate__`` (or the ``__getattr__``
#: that looking one up falls back to) of None would fail to build it.
_ASKED_WHILE_LOADING = frozenset({"__setstate__", "__getattr__"})


def _place_holder(cls, name: str):
    """What holds ``name``'s place until the state sets it: what the bases
    give (an instance the class's state holds is built before that state is
    set, as it was before: as without the entry), else None; nothing
    (:data:`_NONE`) for a value with a ``__set_name__`` (type() would call
    it with the new class), nor for what unpickling asks an instance for."""
    for c in cls.__mro__[1:]:
        if name in c.__dict__:
            return _NONE if hasattr(type(c.__dict__[name]), "__set_name__") else _Inherited(c, name)
    return _NONE if name in _ASKED_WHILE_LOADING else None


class _Inherited:
    """A base's own entry, pickled as a look-up in that base (``object``'s
    ``__init_subclass__`` cannot be pickled itself)."""

    __slots__ = ("base", "name")

    def __init__(self, base, name: str):
        self.base, self.name = base, name

    def __reduce__(self):
        return _inherited, (self.base, self.name)


def _only_type_sees_the_body(cls) -> bool:
    """Whether the held places are seen by nothing but type() (and ABCMeta,
    which only asks each value whether it is abstract; the state sets
    ``__abstractmethods__`` after): no metaclass of the notebook's or a
    library's, no library ``__init_subclass__`` (``typing.Generic``'s reads
    ``__orig_bases__``); the notebook's own hooks are muted while the
    skeleton is made."""
    abc = sys.modules.get("abc")
    if type(cls) is not type and (abc is None or type(cls) is not abc.ABCMeta):
        return False
    return not any("__init_subclass__" in c.__dict__ for c in cls.__mro__[1:]
                   if c is not object and c.__module__ != "__main__")
