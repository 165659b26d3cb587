"""Keying objects whose pickle does not carry what they hold.

:mod:`.hashing` keys an object by what pickling it records. Two kinds of
object record less than code can observe: an instance of a notebook class
whose ``__reduce__``/``__getstate__`` leaves attributes out (its attributes
are keyed too), and a ``logging.Logger``, which pickles as
``getLogger(name)`` while its level and handlers decide what the cell does.
Library objects are otherwise trusted to pickle their state: their
attributes can hold per-process caches (``pathlib``'s ``_hash``). One kind
of object records more: a field that only says whether a cache is current
(:data:`CACHE_FLAGS`), which the library's own unpickling resets.
"""

from __future__ import annotations

import sys

import xxhash

from . import sources
from .hashing_base import Unhashable, _tag
from .in_place import _slot_names

_MISSING = object()


def feed_unpickled_state(h, obj, state, hasher) -> None:
    """What ``obj`` holds beyond the ``state`` its reduce gave, if anything."""
    t = type(obj)
    kind = _KINDS.get(t)
    if kind is None:
        kind = _kind_of(t)
    if kind is _LIBRARY:
        return
    if kind is _LOGGER:
        _feed_logger(h, obj)
        return
    if state is not None and state is getattr(obj, "__dict__", _MISSING) and not kind:
        return  # the default reduce of a class without slots: the state is the attributes
    extra = _uncovered(obj, kind, state)
    if not extra:
        return
    _tag(h, b"AT", len(extra).to_bytes(8, "little"))
    for name in sorted(extra):
        _tag(h, b"a", name.encode())
        sub = xxhash.xxh3_128()
        try:
            hasher(sub, extra[name])
            digest = sub.hexdigest()
        except (Unhashable, TypeError, ValueError):  # a lock, a connection: what it is, at least
            digest = _kind(extra[name])
        _tag(h, b"h", digest.encode())


#: type -> _LIBRARY, _LOGGER, or (for notebook classes) its slot names.
_KINDS: dict = {}
_LIBRARY, _LOGGER = object(), object()


def _kind_of(t):
    """How a type's instances are keyed beyond their reduce (cached: every object asks)."""
    logging = sys.modules.get("logging")
    if logging is not None and issubclass(t, logging.Logger):
        kind = _LOGGER
    elif sources.is_notebook_module_name(t.__module__):
        kind = tuple(_slot_names(t))
    else:
        kind = _LIBRARY
    if len(_KINDS) > 4096:  # classes redefined cell after cell: bounded
        _KINDS.clear()
    _KINDS[t] = kind
    return kind


def _uncovered(obj, slots, state) -> dict:
    """Attributes (``__dict__`` and slots) the reduce's state does not hold as the same objects."""
    attrs = dict(getattr(obj, "__dict__", None) or {})
    for slot in slots:
        value = getattr(obj, slot, _MISSING)
        if value is not _MISSING:
            attrs[slot] = value
    covered: dict = {}
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    for part in parts:
        if isinstance(part, dict):
            covered.update(part)
    return {k: v for k, v in attrs.items() if covered.get(k, _MISSING) is not v}


#: (module, class) -> fields of its instances that only say whether something
#: derived from what is keyed is current: what a caller gets is the same
#: either way (a stale value is recomputed), and the library's own unpickling
#: resets them. A matplotlib transform's ``_invalid`` (its cached matrix) and
#: an artist's ``_stale`` (its rendering on its canvas): drawing a figure (the
#: inline backend does after the cell; ``savefig``, ``canvas.draw``) makes
#: both current, ``Figure.__setstate__`` rescales ``dpi_scale_trans`` (every
#: transform above it turns stale) and marks the figure and its Axes stale
#: (the canvas, which pickle does not carry, has drawn nothing), so a
#: restored figure would never hash like the one the run drew.
CACHE_FLAGS = {("matplotlib.transforms", "TransformNode"): frozenset({"_invalid"}),
               ("matplotlib.artist", "Artist"): frozenset({"_stale"})}
_FLAGS_OF: dict = {}


def without_cache_flags(obj, state):
    """``state`` without the fields of :data:`CACHE_FLAGS` for ``obj``'s class."""
    t = type(obj)
    flags = _FLAGS_OF.get(t)
    if flags is None:
        flags = frozenset()
        for (module, name), fields in CACHE_FLAGS.items():
            base = getattr(sys.modules.get(module), name, None)
            if isinstance(base, type) and issubclass(t, base):
                flags |= fields
        if len(_FLAGS_OF) > 4096:  # classes redefined cell after cell: bounded
            _FLAGS_OF.clear()
        _FLAGS_OF[t] = flags
    if not flags or type(state) is not dict:
        return state
    return {k: v for k, v in state.items() if k not in flags}


def _feed_logger(h, log) -> None:
    """A logger by what decides what it does: its level and the effective
    one, whether it is disabled or propagates, and the handlers a record
    reaches (kind, level, format). Not the manager's registry of every
    logger, nor the cache ``isEnabledFor`` fills as it is called."""
    _tag(h, b"LG", log.name.encode())
    handlers = []
    node = log
    while node is not None:
        handlers += [_handler(x) for x in node.handlers]
        node = node.parent if node.propagate else None
    desc = (log.level, log.getEffectiveLevel(), bool(log.disabled), bool(log.propagate),
            log.manager.disable, [_kind(f) for f in log.filters], handlers)
    _tag(h, b"ls", repr(desc).encode())


def _handler(handler) -> tuple:
    fmt = handler.formatter
    stream = getattr(handler, "stream", None)
    where = next((n for n in ("stdout", "stderr") if stream is getattr(sys, n, _MISSING)), _kind(stream))
    return (_kind(handler), handler.level, getattr(fmt, "_fmt", None), getattr(fmt, "datefmt", None), where,
            [_kind(f) for f in handler.filters])


def _kind(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
