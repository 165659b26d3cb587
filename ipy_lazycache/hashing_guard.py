"""Hashing leaves the user's objects as it found them (DESIGN §11): what a
reduce may change while pickle's protocol looks attributes up is put back."""

from __future__ import annotations

import types


class State:
    """An object's slots and ``__dict__`` entries, put back after a reduce:
    a class's ``__getattr__`` may fill them in while pickle looks attributes
    up (xarray's Dataset sets ``_attrs`` from None to {}), and hashing leaves
    the user's objects as it found them."""

    _UNSET = object()

    def __init__(self, obj):
        self.obj = obj
        self.slots = {}
        for klass in type(obj).__mro__:
            for name in getattr(klass, "__slots__", ()) if isinstance(getattr(klass, "__slots__", ()), tuple) else ():
                desc = klass.__dict__.get(name)
                if isinstance(desc, types.MemberDescriptorType):
                    try:
                        self.slots[desc] = desc.__get__(obj, klass)
                    except AttributeError:
                        self.slots[desc] = self._UNSET
        d = own_dict(obj)
        self.dict = dict(d) if type(d) is dict else None

    def put_back(self):
        for desc, value in self.slots.items():
            try:
                now = desc.__get__(self.obj, None)
            except AttributeError:
                now = self._UNSET
            if now is not value:
                desc.__delete__(self.obj) if value is self._UNSET else desc.__set__(self.obj, value)
        d = own_dict(self.obj)
        if self.dict is not None and type(d) is dict and _changed(d, self.dict):
            d.clear()
            d.update(self.dict)


def unslot(cls) -> None:
    try:
        delattr(cls, "__slotnames__")
    except (AttributeError, TypeError):
        pass


def _changed(now: dict, was: dict) -> bool:
    """By identity: values may be arrays, whose ``==`` is no answer."""
    return len(now) != len(was) or any(now.get(k, _changed) is not v for k, v in was.items())


def own_dict(obj):
    """``obj.__dict__`` without falling back to the class's ``__getattr__``."""
    try:
        return object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None


def peek(obj, name: str, default=None):
    """``getattr(obj, name, default)`` without falling back to the class's
    ``__getattr__``: the tool's own look at a user's object (is it a method,
    what is its name) must not run code that fills it in (xarray's Dataset
    sets ``_attrs``) or warns (numpy's module ``__getattr__``)."""
    try:
        return type(obj).__getattribute__(obj, name)
    except AttributeError:
        return default


def guarded_reduce(obj, protocol: int):
    """``obj.__reduce_ex__(protocol)`` for pickling an object whose class has
    a ``__getattr__`` (which the reduce may reach, reading unset slots): the
    object is put back as found, and so is its slots' state in what the
    reduce returned, so the store neither changes it nor records the change."""
    found = State(obj)
    try:
        rv = obj.__reduce_ex__(protocol)
    finally:
        found.put_back()
    state = rv[2] if isinstance(rv, tuple) and len(rv) > 2 else None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        slots = dict(state[1])
        for desc, value in found.slots.items():
            if desc.__name__ not in slots or getattr(type(obj), desc.__name__, None) is not desc:
                continue  # a base's slot of the same name, shadowed: not the one the state holds
            if value is State._UNSET:
                del slots[desc.__name__]
            else:
                slots[desc.__name__] = value
        rv = (*rv[:2], (state[0], slots), *rv[3:])
    return rv
