"""Ambient state of the process: environment variables (only those read),
the working directory, ``sys.path``."""

from __future__ import annotations

import os
import sys

from .ambient_cell import Provider, _digest


class _Environ(Provider):
    """Environment variables: keyed by the names the cell reads, never the
    whole environment; changes (``os.environ[...] =``, ``%env``) are effects."""

    name = "environ"

    def snapshot(self):
        return dict(os.environ)

    def observes(self, cell):
        return bool(cell.environ_names())

    def key(self, cell, state):
        return _digest(sorted((name, state.get(name)) for name in cell.environ_names()))

    def effect(self, before, after):
        if before == after:
            return None
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        removed = sorted(k for k in before if k not in after)
        return {"set": changed, "unset": removed}

    def apply(self, effect):
        os.environ.update(effect.get("set", {}))
        for name in effect.get("unset", ()):
            os.environ.pop(name, None)


class EnvironReads:
    """Environment variables notebook code reads while a cell runs, however
    indirectly (a function the cell calls reads ``os.environ["MODE"]`` or
    ``os.getenv``), which the walk of the cell's own text cannot see. The
    entry then requires their values (:meth:`Registry.satisfied`). Reads by
    installed code (a library's import reading ``HOME``) are left out: they
    are not the notebook's, and would make a shipped entry miss wherever
    the environment differs (a browser). ``os._Environ.__getitem__`` is
    wrapped only while a run is recorded; ``get``, ``in`` and ``getenv`` go
    through it."""

    active: list = []  # one set of names per recorded run (nested cells)
    original = None

    @classmethod
    def start(cls) -> set:
        names: set = set()
        if cls.original is None:
            environ = type(os.environ)
            cls.original = original = environ.__getitem__

            def __getitem__(self, key):
                if cls.active and _read_by_notebook():
                    for reads in cls.active:
                        reads.add(key)
                return original(self, key)

            environ.__getitem__ = __getitem__
        cls.active.append(names)
        return names

    @classmethod
    def stop(cls, names: set) -> set:
        if any(r is names for r in cls.active):
            cls.active[:] = [r for r in cls.active if r is not names]
        if not cls.active and cls.original is not None:
            type(os.environ).__getitem__, cls.original = cls.original, None
        return names


def _read_by_notebook() -> bool:
    """Whether the code reading the environment is the notebook's: past the
    mapping's own methods and the stdlib helpers that read it for a caller
    (``getenv``, ``Mapping.get``, ``expanduser``), the frame's module is
    ``__main__`` or a local module (not a library's import, not importlib)."""
    from .sources import is_notebook_module_name

    f = sys._getframe(1)
    while f is not None and f.f_globals.get("__name__") in _ENVIRON_PLUMBING:
        f = f.f_back
    return f is not None and is_notebook_module_name(f.f_globals.get("__name__"))


#: Modules whose frames read the environment on their caller's behalf.
_ENVIRON_PLUMBING = frozenset({"os", "_collections_abc", "collections.abc", "posixpath", "ntpath", "genericpath",
                               __name__})


class _Cwd(Provider):
    """The working directory, relative to where the session started: it joins
    every key once a cell has moved it (files are read relative to it), never
    as an absolute path."""

    name = "cwd"

    def __init__(self):
        self.start = os.getcwd()

    def snapshot(self):
        try:
            return os.getcwd()
        except OSError:
            return None

    def observes(self, cell):
        return True

    def key(self, cell, state):
        if state is None or state == self.start:
            return None
        return os.path.relpath(state, self.start).replace(os.sep, "/")

    def effect(self, before, after):
        if after is None or before == after:
            return None
        return {"to": os.path.relpath(after, before).replace(os.sep, "/")}

    def apply(self, effect):
        os.chdir(effect["to"])


class _SysPath(Provider):
    """``sys.path`` edits a cell makes (so later imports find the same
    modules), as a difference: a cache from another machine must never
    replace this interpreter's own path."""

    name = "sys.path"

    def snapshot(self):
        return list(sys.path)

    def effect(self, before, after):
        if before == after:
            return None
        added = [p for p in after if p not in before]
        first_kept = next((i for i, p in enumerate(after) if p in before), len(after))
        return {
            "prepend": [p for p in after[:first_kept] if p in added],
            "append": [p for p in after[first_kept:] if p in added],
            "remove": [p for p in before if p not in after],
        }

    def apply(self, effect):
        for p in effect.get("remove", ()):
            while p in sys.path:
                sys.path.remove(p)
        for p in reversed(effect.get("prepend", ())):
            if p not in sys.path:
                sys.path.insert(0, p)
        for p in effect.get("append", ()):
            if p not in sys.path:
                sys.path.append(p)
