"""Giving an object already in the namespace the content the run left in
another (a restore that keeps identities: other names bound to the object
see the change, as after a run)."""

from __future__ import annotations

import collections
import types

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
