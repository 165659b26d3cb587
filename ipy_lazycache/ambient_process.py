"""Ambient state of the process: environment variables (only those read),
the working directory, ``sys.path``."""

from __future__ import annotations

import os
import sys

from .ambient_cell import Baselined, Unreplayable, _digest, by_notebook, list_change


class _Environ(Baselined):
    """Environment variables: keyed by the names the cell reads, never the
    whole environment; changes (``os.environ[...] =``, ``%env``) are effects.

    The delta: variables notebook code (not a library at its import, not the
    kernel before the extension loaded) set or removed since the extension
    loaded, by their value now. The environment the kernel started with is
    the machine's, so it never joins a key by itself."""

    name = "environ"

    def __init__(self):
        super().__init__()
        EnvironWrites.install()

    def rebase(self):
        super().rebase()
        # Written *since the session started*, like ``start``: names noted
        # before a reload (or a site kernel's set-up) would compare later
        # writes by the kernel itself (pytest's PYTEST_CURRENT_TEST) with a
        # baseline the notebook never saw.
        EnvironWrites.names.clear()

    def delta(self):
        written = EnvironWrites.names
        if not written:
            return None
        changed = sorted((n, os.environ.get(n)) for n in written if os.environ.get(n) != self.start.get(n))
        return changed or None

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
        # Which of them the notebook's code wrote: a hit notes the same, so
        # later cells' deltas are as after the run.
        noted = sorted(n for n in (*changed, *removed) if n in EnvironWrites.names)
        return {"set": changed, "unset": removed, "noted": noted}

    def apply(self, effect):
        os.environ.update(effect.get("set", {}))
        for name in effect.get("unset", ()):
            os.environ.pop(name, None)
        EnvironWrites.names.update(effect.get("noted", [*effect.get("set", {}), *effect.get("unset", ())]))


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
    return by_notebook(_ENVIRON_PLUMBING)


class EnvironWrites:
    """Names of the variables notebook code set or removed (``os.environ[...] =``,
    ``update``, ``pop``, ``%env``): what :meth:`_Environ.delta` compares.
    ``os._Environ.__setitem__``/``__delitem__`` are wrapped once, for the
    life of the process (writes are rare; reads are not wrapped here)."""

    names: set = set()
    installed = False

    @classmethod
    def install(cls):
        if cls.installed:
            return
        environ = type(os.environ)
        set_item, del_item = environ.__setitem__, environ.__delitem__

        def __setitem__(self, key, value):
            set_item(self, key, value)
            if self is os.environ and by_notebook(_ENVIRON_PLUMBING):
                cls.names.add(key)

        def __delitem__(self, key):
            del_item(self, key)
            if self is os.environ and by_notebook(_ENVIRON_PLUMBING):
                cls.names.add(key)

        environ.__setitem__, environ.__delitem__ = __setitem__, __delitem__
        cls.installed = True


#: Modules whose frames read the environment on their caller's behalf.
_ENVIRON_PLUMBING = frozenset({"os", "_collections_abc", "collections.abc", "posixpath", "ntpath", "genericpath",
                               __name__})


class _Cwd(Baselined):
    """The working directory, relative to where the session started: it joins
    every key once a cell has moved it (files are read relative to it), never
    as an absolute path."""

    name = "cwd"

    def snapshot(self):
        try:
            return os.getcwd()
        except OSError:
            return None

    def delta(self):
        state = self.snapshot()
        if state == self.start:
            return None
        return os.path.relpath(state, self.start).replace(os.sep, "/") if state is not None else "<gone>"

    def effect(self, before, after):
        if after is None or before == after:
            return None
        return {"to": os.path.relpath(after, before).replace(os.sep, "/")}

    def apply(self, effect):
        os.chdir(effect["to"])


class _SysPath(Baselined):
    """``sys.path`` edits a cell makes (so later imports find the same
    modules), as a difference: a cache from another machine must never
    replace this interpreter's own path. The delta is the difference from
    the path the extension found, with paths under the starting folder
    relative to it (the same notebook on another machine)."""

    name = "sys.path"

    def rebase(self):
        self.start, self.folder = list(sys.path), os.getcwd()

    def delta(self):
        if sys.path == self.start:
            return None
        change = list_change(self.start, sys.path)
        rel = self._relative
        if change is None:
            return {"path": [rel(p) for p in sys.path]}
        return {"front": [rel(p) for p in change[0]], "back": [rel(p) for p in change[1]]}

    def _relative(self, p):
        if isinstance(p, str) and os.path.isabs(p) and (p + os.sep).startswith(self.folder + os.sep):
            return os.path.relpath(p, self.folder).replace(os.sep, "/")
        return p

    def snapshot(self):
        return list(sys.path)

    def effect(self, before, after):
        if before == after:
            return None
        change = list_change(before, after)
        if change is not None:
            return {"prepend": change[0], "append": change[1]}
        removed = _removed_only(before, after)
        if removed is None:
            raise Unreplayable("sys.path was reordered")
        return {"remove": removed}

    def apply(self, effect):
        for p in effect.get("remove", ()):
            if p in sys.path:
                sys.path.remove(p)
        sys.path[:0] = effect.get("prepend", ())
        sys.path.extend(effect.get("append", ()))


def _removed_only(before: list, after: list):
    """The items removed when ``after`` is ``before`` with some taken out
    (each once, first occurrences), else None."""
    removed, i = [], 0
    for item in before:
        if i < len(after) and after[i] == item:
            i += 1
        else:
            removed.append(item)
    return removed if i == len(after) else None
