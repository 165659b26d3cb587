"""Ambient state: the global random generators (``random``, ``numpy.random``),
keyed only once this process seeded or set them."""

from __future__ import annotations

import functools
import sys
import types

from .ambient_cell import Provider, _digest

_METHODS = (types.MethodType, types.BuiltinMethodType)


class _Seeds:
    """Which global generators this process seeded or set.

    ``random.seed``/``setstate`` and numpy's legacy ``seed``/``set_state`` are
    wrapped (once) to note it; a hit that re-applies a seeded state notes it
    too. Unseeded generators never join a key.
    """

    seeded: set[str] = set()
    wrapped: set[str] = set()

    @classmethod
    def watch(cls, provider, module, names):
        if provider in cls.wrapped or module is None:
            return
        for name in names:
            original = getattr(module, name, None)
            if original is None or getattr(original, "_lc_watch", False):
                continue

            def wrapper(*args, _original=original, **kwargs):
                cls.seeded.add(provider)
                return _original(*args, **kwargs)

            functools.update_wrapper(wrapper, original)
            # Found as the module's own attribute, so pickling (``from random
            # import seed`` in a cell) stores a reference to it, not a copy.
            wrapper.__module__, wrapper.__qualname__ = module.__name__, name
            wrapper._lc_watch = True
            setattr(module, name, wrapper)
        cls.wrapped.add(provider)


#: Generator modules whose seeding functions are watched: provider, names.
_SEEDERS = {"random": ("random", ("seed", "setstate")), "numpy.random": ("numpy.random", ("seed", "set_state"))}


class _WatchImports:
    """A meta path finder that wraps a generator module's seeding functions
    as soon as it is imported, so ``import numpy as np; np.random.seed(0)``
    in one cell is seen (numpy loads ``numpy.random`` lazily)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _SEEDERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            original = loader.exec_module
            provider, names = _SEEDERS[fullname]

            def exec_module(module):
                original(module)
                _Seeds.watch(provider, module, names)

            loader.exec_module = exec_module
        return spec


def watch_seeding(history=None):
    """Note from now on whether the global generators get seeded (idempotent).

    ``history``: the inputs of the cells that ran before the extension
    loaded. Seeding then was not watched, so unless none of them can have
    seeded a generator (no text mentioning a seed or a generator's state,
    no ``%run``, no local module imported), both count as seeded: their
    state joins the key of a cell that draws from them, and a seed set
    before ``%load_ext`` never gets another seed's draws."""
    if history is not None and _may_have_seeded(history):
        _Seeds.seeded.update(_SEEDERS)
    for fullname, (provider, names) in _SEEDERS.items():
        if fullname in sys.modules:
            _Seeds.watch(provider, sys.modules[fullname], names)
    if not any(isinstance(f, _WatchImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _WatchImports())


#: Words in a cell's text that can seed or set a global generator, directly
#: or through code it runs (``exec``, a script, a helper named so).
_SEEDING_WORDS = ("seed", "state", "run_line_magic('run'", "%run", "exec(", "import_module", "__import__")


def _may_have_seeded(history) -> bool:
    from . import sources

    earlier = [text for text in list(history) if isinstance(text, str)]
    if any(word in text.lower() for text in earlier for word in _SEEDING_WORDS):
        return True
    return any(sources.is_local_module(m) for name, m in list(sys.modules.items()) if name != "__main__")


class _Random(Provider):
    """The stdlib's global generator (``random.random`` and friends)."""

    name = "random"

    def _module(self):
        module = sys.modules.get("random")
        _Seeds.watch(self.name, module, ("seed", "setstate"))
        return module

    def snapshot(self):
        module = self._module()
        return module.getstate() if module is not None else None

    def observes(self, cell):
        module = self._module()
        if module is None:
            return False
        inst = getattr(module, "_inst", None)
        if any(chain[0] is module for chain in cell.chains()):
            return True
        # bound methods only: getattr on any other object may run its __getattr__ (which may change it)
        return any(obj is module or isinstance(obj, _METHODS) and obj.__self__ is inst for obj in cell.ref_objects())

    def key(self, cell, state):
        return _digest(state) if state is not None and self.name in _Seeds.seeded else None

    def effect(self, before, after):
        if after is None or before == after or self.name not in _Seeds.seeded:
            return None
        version, internal, gauss = after
        return {"version": version, "state": list(internal), "gauss": gauss}

    def apply(self, effect):
        import random

        _Seeds.watch(self.name, random, ("seed", "setstate"))
        random.setstate((effect["version"], tuple(effect["state"]), effect["gauss"]))
        _Seeds.seeded.add(self.name)


class _NumpyRandom(Provider):
    """numpy's legacy global generator (``np.random.seed``, ``np.random.normal``)."""

    name = "numpy.random"

    def _module(self):
        if "numpy" not in sys.modules:
            return None  # never import numpy for a cell that does not
        module = sys.modules.get("numpy.random")
        _Seeds.watch(self.name, module, ("seed", "set_state"))
        return module

    def snapshot(self):
        module = self._module()
        if module is None:
            return None
        kind, keys, pos, has_gauss, gauss = module.get_state(legacy=True)
        return (kind, keys.tobytes(), int(pos), int(has_gauss), float(gauss))

    def observes(self, cell):
        module = self._module()
        if module is None:
            return False
        numpy = sys.modules["numpy"]
        rand = getattr(getattr(module, "mtrand", None), "_rand", None)
        for chain in cell.chains():
            if chain[0] is module or (chain[0] is numpy and len(chain) > 1 and chain[1] == "random"):
                return True
        if rand is None:
            return False
        return any(obj is module or isinstance(obj, _METHODS) and obj.__self__ is rand for obj in cell.ref_objects())

    def key(self, cell, state):
        return _digest(state) if state is not None and self.name in _Seeds.seeded else None

    def effect(self, before, after):
        if after is None or before == after or self.name not in _Seeds.seeded:
            return None
        kind, keys, pos, has_gauss, gauss = after
        import base64

        return {"kind": kind, "keys": base64.b64encode(keys).decode(), "pos": pos, "has_gauss": has_gauss,
                "gauss": gauss}

    def apply(self, effect):
        import base64

        import numpy as np

        _Seeds.watch(self.name, np.random, ("seed", "set_state"))
        keys = np.frombuffer(base64.b64decode(effect["keys"]), dtype=np.uint32).copy()
        np.random.set_state((effect["kind"], keys, effect["pos"], effect["has_gauss"], effect["gauss"]))
        _Seeds.seeded.add(self.name)
